"""tfreg/data/load.py: get_data_loader from a DeepReg ``dataset:`` section."""

import pytest

from tests.data.helpers import write_paired
from tfreg.data import get_data_loader
from tfreg.data.errors import DataNotFoundError
from tfreg.data.loaders import PairedDataLoader


def config(root, **extra):
    cfg = {
        "train": {"dir": str(root), "format": "nifti", "labeled": False},
        "valid": {"dir": str(root), "format": "nifti", "labeled": False},
        "type": "paired",
        "moving_image_shape": [4, 4, 4],
        "fixed_image_shape": [3, 3, 3],
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def root(tmp_path):
    return write_paired(str(tmp_path / "data"), ["a", "b", "c"], num_labels=1)


def test_defaults_per_split(root):
    train = get_data_loader(config(root), "train")
    valid = get_data_loader(config(root), "valid")
    assert isinstance(train, PairedDataLoader) and train.num_samples == 3
    assert (train.sample_label, train.seed) == ("sample", None)
    assert (valid.sample_label, valid.seed) == ("all", 0)


def test_config_values_override_every_split(root):
    cfg = config(root, seed=5, sample_label="all")
    assert get_data_loader(cfg, "train").seed == 5
    assert get_data_loader(cfg, "valid").seed == 5
    assert get_data_loader(cfg, "train").sample_label == "all"


@pytest.mark.parametrize(
    "split_value",
    [None, {"dir": None, "format": "nifti", "labeled": False}, {"dir": "", "format": "nifti", "labeled": False}],
)
def test_no_loader(root, split_value):
    cfg = config(root)
    cfg["test"] = split_value
    assert get_data_loader(cfg, "test") is None
    del cfg["test"]
    assert get_data_loader(cfg, "test") is None


def test_home_expansion_and_lists(root, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = config(root)
    cfg["train"]["dir"] = ["~/data"]
    assert get_data_loader(cfg, "train").loader_moving_image.dir_paths == [str(tmp_path / "data")]


def test_errors(root, tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        get_data_loader(config(root), "training")
    cfg = config(root)
    cfg["train"]["dir"] = str(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match="dataset.train.dir: folder .*nowhere"):
        get_data_loader(cfg, "train")
    cfg = config(root)
    cfg["train"]["format"] = "nifty"
    with pytest.raises(ValueError, match=r"dataset.train.format.*'nifty'.*\[.*'h5'.*'nifti'.*\].*Did you mean 'nifti'"):
        get_data_loader(cfg, "train")
    with pytest.raises(ValueError, match=r"dataset.*'pairs'.*'grouped', 'paired', 'self_paired', 'unpaired'"):
        get_data_loader(config(root, type="pairs"), "train")
    with pytest.raises(ValueError, match="Configuration is not compatible.*image_size"):
        get_data_loader(config(root, image_size=[4, 4, 4]), "train")
    cfg = config(root)
    del cfg["train"]["labeled"]
    with pytest.raises(ValueError, match="dataset.train.labeled is missing"):
        get_data_loader(cfg, "train")
    cfg = config(root)
    cfg["train"]["label"] = True
    with pytest.raises(ValueError, match=r"dataset.train has unknown key\(s\) \['label'\]"):
        get_data_loader(cfg, "train")


def unpaired_config(root, pairs):
    split = {"dir": str(root), "format": "nifti", "labeled": True, "pairs": pairs}
    return {"train": dict(split, pairs=None), "test": split, "type": "unpaired", "image_shape": [3, 3, 3]}


@pytest.fixture
def unpaired_root(tmp_path):
    from tests.data.helpers import write_unpaired

    return write_unpaired(str(tmp_path / "unpaired"), ["a", "b", "c", "d"], shape=(4, 4, 4), num_labels=2)


def test_unpaired_all_pairs_per_split(unpaired_root):
    with get_data_loader(unpaired_config(unpaired_root, "all"), "test") as loader:
        assert loader.pairs == "all" and loader.num_samples == 12
        samples = list(loader.sample_generator())
    # every ordered pair of the 4 images once, moving index major, each with both labels (sample_label: all)
    assert samples == [([m, f], [0, 1]) for m in range(4) for f in range(4) if m != f]
    with get_data_loader(unpaired_config(unpaired_root, "all"), "train") as loader:
        assert loader.pairs == "sample" and loader.num_samples == 2  # DeepReg's neighbours where unset


def test_unpaired_pairs_errors(unpaired_root, root):
    with pytest.raises(ValueError, match=r"dataset.test.pairs='both' is not supported.*\['sample', 'all'\]"):
        get_data_loader(unpaired_config(unpaired_root, "both"), "test")
    paired = config(root, test={"dir": str(root), "format": "nifti", "labeled": False, "pairs": "all"})
    with pytest.raises(ValueError, match=r"dataset.test.pairs: 'all' is given, but the 'paired' data loader"):
        get_data_loader(paired, "test")
    paired["test"]["pairs"] = "al"
    with pytest.raises(ValueError, match=r"dataset.test.pairs='al'"):
        get_data_loader(paired, "test")

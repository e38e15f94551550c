"""Tests for tfreg/config/validate.py: a valid config passes, and each kind of mistake is reported.

Data loaders, models and backbones are registered by other modules, so these tests validate against a
copy of REGISTRY with dummy classes registered into it.
"""

import copy
import logging

import pytest

from tfreg.config import ConfigError, load_configs_with_provenance, normalize_config, validate_config
from tfreg.registry import REGISTRY


class Dummy:
    """Stands in for any registered component."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


_DUMMIES = {
    "data_loader_class": ["paired", "unpaired", "grouped", "custom"],
    "file_loader_class": ["nifti", "h5"],
    "model_class": ["ddf", "dvf", "conditional"],
    "backbone_class": ["local", "global", "unet"],
    "loss_class": ["lncc", "gmi", "ssd", "dice", "jaccard", "bending", "gradient"],
    "da_class": ["affine", "ddf"],
}


@pytest.fixture(scope="module")
def reg():
    registry = REGISTRY.copy()
    for category, names in _DUMMIES.items():
        for name in names:
            # The built-in losses may already be there; only fill the gaps.
            if not registry.contains(category, name):
                registry.register(category, name, Dummy)
    return registry


@pytest.fixture
def base(tmp_path):
    """A valid paired config whose dirs exist under tmp_path."""
    for name in ("train", "valid", "test1", "test2"):
        (tmp_path / name).mkdir()
    return {
        "dataset": {
            "train": {"dir": str(tmp_path / "train"), "format": "nifti", "labeled": True},
            "valid": {"dir": str(tmp_path / "valid"), "format": "nifti", "labeled": True},
            "test": {"dir": [str(tmp_path / "test1"), str(tmp_path / "test2")], "format": "h5", "labeled": False},
            "type": "paired",
            "moving_image_shape": [16, 16, 16],
            "fixed_image_shape": [8, 8, 8],
        },
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 4, "extract_levels": [0, 1, 2]},
            "loss": {
                "image": {"name": "lncc", "weight": 0.1},
                "label": [{"name": "dice", "weight": 1.0, "scales": [0, 1]}, {"name": "ssd", "weight": 0.5}],
                "regularization": {"name": "bending", "weight": 0.5},
            },
            "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1, "data_augmentation": {"name": "affine"}},
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-4},
            "epochs": 2,
            "save_period": 2,
            "update_freq": "epoch",
        },
    }


def errors(config, reg, **kwargs):
    """The error lines of an invalid config."""
    with pytest.raises(ConfigError) as info:
        validate_config(config, registry=reg, **kwargs)
    return info.value.errors


def one_error(config, reg, **kwargs):
    lines = errors(config, reg, **kwargs)
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------- valid configs
def test_valid_config_returns_normalised_copy(base, reg):
    before = copy.deepcopy(base)
    result = validate_config(base, registry=reg)
    assert base == before
    expected = copy.deepcopy(before)
    expected["train"]["preprocess"]["num_parallel_calls"] = -1
    assert result == expected


def test_missing_weight_becomes_one_with_warning(base, reg, caplog):
    del base["train"]["loss"]["label"][1]["weight"]
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        result = validate_config(base, registry=reg)
    assert result["train"]["loss"]["label"][1] == {"name": "ssd", "weight": 1.0}
    assert "train.loss.label[1] has no weight; using weight 1.0" in caplog.text


def test_normalize_config_alone():
    config = {"train": {"loss": {"image": {"name": "ssd"}}, "preprocess": {"num_parallel_calls": 4}}}
    assert normalize_config(config) == {
        "train": {"loss": {"image": {"name": "ssd", "weight": 1.0}}, "preprocess": {"num_parallel_calls": 4}}
    }
    assert config == {"train": {"loss": {"image": {"name": "ssd"}}, "preprocess": {"num_parallel_calls": 4}}}


@pytest.mark.parametrize("split", ["valid", "test"])
@pytest.mark.parametrize("value", ["absent", None, {"dir": ""}, {"dir": None}, {"dir": []}])
def test_optional_splits_absent_null_or_empty(base, reg, split, value):
    if value == "absent":
        del base["dataset"][split]
    else:
        base["dataset"][split] = value
    validate_config(base, registry=reg)


def test_two_dimensional_shapes(base, reg):
    base["dataset"]["moving_image_shape"] = [32, 32]
    base["dataset"]["fixed_image_shape"] = [16, 16]
    validate_config(base, registry=reg)


def test_optional_values_accepted(base, reg):
    base["dataset"]["sample_label"] = "all"
    base["dataset"]["seed"] = 3
    base["train"]["update_freq"] = 100
    base["train"]["preprocess"]["data_augmentation"] = [{"name": "affine"}, {"name": "ddf", "field_strength": 1}]
    base["train"]["backbone"]["control_points"] = [2, 2, 2]
    base["train"]["optimizer"] = {"name": "SGD", "momentum": 0.9}
    validate_config(base, registry=reg)
    base["dataset"]["seed"] = None
    base["dataset"]["sample_label"] = None
    base["train"]["preprocess"]["data_augmentation"] = None
    base["train"]["backbone"]["control_points"] = 4
    base["train"]["loss"]["label"] = None
    validate_config(base, registry=reg)


def test_grouped_valid(base, reg):
    dataset = base["dataset"]
    for key in ("moving_image_shape", "fixed_image_shape"):
        del dataset[key]
    dataset.update(
        type="grouped",
        image_shape=[8, 8, 8],
        intra_group_prob=0.5,
        intra_group_option="forward",
        sample_image_in_group=True,
    )
    validate_config(base, registry=reg)


def test_custom_loader_type_accepts_any_key(base, reg):
    base["dataset"]["type"] = "custom"
    base["dataset"]["my_option"] = 3
    validate_config(base, registry=reg)


# ---------------------------------------------------------------------- structure
def test_root_not_a_mapping(reg):
    assert one_error([1], reg) == "<root>: a config must be a mapping, got list"


@pytest.mark.parametrize("key", ["dataset", "train"])
def test_missing_top_level(base, reg, key):
    del base[key]
    assert f"<root>: missing required key {key!r}" in errors(base, reg)


@pytest.mark.parametrize("key", ["loss", "preprocess", "optimizer"])
def test_missing_train_section(base, reg, key):
    del base["train"][key]
    assert one_error(base, reg) == f"train: missing required key {key!r}"


def test_train_section_not_a_mapping(base, reg):
    base["train"]["loss"] = ["lncc"]
    assert one_error(base, reg) == "train.loss: must be a mapping, got ['lncc']"


# ---------------------------------------------------------------------- dataset
def test_dataset_type_missing(base, reg):
    del base["dataset"]["type"]
    line = one_error(base, reg)
    assert line.startswith("dataset: missing required key 'type'")
    assert "custom, grouped, paired, self_paired, unpaired" in line


def test_dataset_type_unregistered_suggests(base, reg):
    base["dataset"]["type"] = "pared"
    assert one_error(base, reg) == (
        "dataset.type: 'pared' is not registered in data_loader_class; "
        "allowed: custom, grouped, paired, self_paired, unpaired. Did you mean 'paired'?"
    )


@pytest.mark.parametrize("value", ["absent", None])
def test_train_split_required(base, reg, value):
    if value == "absent":
        del base["dataset"]["train"]
    else:
        base["dataset"]["train"] = value
    assert one_error(base, reg).startswith("dataset.train: the train split is required")


def test_train_split_empty_dir(base, reg):
    base["dataset"]["train"]["dir"] = ""
    assert one_error(base, reg) == "dataset.train.dir: the train split needs a dir, got ''"


def test_split_not_a_mapping(base, reg):
    base["dataset"]["valid"] = "some/dir"
    assert one_error(base, reg) == "dataset.valid: must be a mapping with keys dir, format, labeled, got 'some/dir'"


def test_split_unknown_key(base, reg):
    base["dataset"]["train"]["labelled"] = True
    assert one_error(base, reg) == (
        "dataset.train.labelled: unknown key 'labelled' in dataset split 'train'; "
        "allowed keys: dir, format, labeled, pairs. Did you mean 'labeled'?"
    )


def test_split_missing_dir(base, reg):
    del base["dataset"]["valid"]["dir"]
    assert one_error(base, reg) == "dataset.valid: missing required key 'dir' (a folder or a list of folders)"


def test_dir_wrong_type(base, reg):
    base["dataset"]["train"]["dir"] = 5
    assert one_error(base, reg) == "dataset.train.dir: must be a folder path or a list of folder paths, got 5"


def test_dir_list_with_non_string(base, reg):
    base["dataset"]["test"]["dir"][1] = 7
    assert one_error(base, reg) == "dataset.test.dir[1]: must be a non-empty folder path, got 7"


def test_dir_does_not_exist(base, reg, tmp_path):
    missing = str(tmp_path / "missing")
    base["dataset"]["train"]["dir"] = missing
    line = one_error(base, reg)
    assert line.startswith(f"dataset.train.dir: {missing!r} does not exist")


def test_dir_in_list_does_not_exist(base, reg, tmp_path):
    missing = str(tmp_path / "gone")
    base["dataset"]["test"]["dir"].append(missing)
    assert one_error(base, reg).startswith(f"dataset.test.dir[2]: {missing!r} does not exist")


def test_dir_is_a_file(base, reg, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    base["dataset"]["valid"]["dir"] = str(tmp_path / "file.txt")
    assert one_error(base, reg) == f"dataset.valid.dir: {str(tmp_path / 'file.txt')!r} is not a folder"


def test_check_dirs_false_skips_existence(base, reg):
    base["dataset"]["train"]["dir"] = "/no/such/folder"
    validate_config(base, registry=reg, check_dirs=False)


def test_dir_tilde_expanded_for_the_check(base, reg, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    base["dataset"]["train"]["dir"] = "~/train"
    validate_config(base, registry=reg)


def test_format_missing(base, reg):
    del base["dataset"]["train"]["format"]
    allowed = ", ".join(reg.names("file_loader_class"))
    assert one_error(base, reg) == f"dataset.train: missing required key 'format' (the file loader: {allowed})"


def test_format_unregistered(base, reg):
    base["dataset"]["valid"]["format"] = "nifty"
    allowed = ", ".join(reg.names("file_loader_class"))
    assert "h5" in allowed and "nifti" in allowed
    assert one_error(base, reg) == (
        "dataset.valid.format: 'nifty' is not registered in file_loader_class; "
        f"allowed: {allowed}. Did you mean 'nifti'?"
    )


def test_labeled_missing(base, reg):
    del base["dataset"]["train"]["labeled"]
    assert one_error(base, reg) == "dataset.train: missing required key 'labeled' (true or false)"


def test_labeled_not_bool(base, reg):
    base["dataset"]["train"]["labeled"] = "yes please"
    assert one_error(base, reg) == "dataset.train.labeled: must be true or false, got 'yes please'"


def test_unknown_dataset_key_lists_allowed(base, reg):
    base["dataset"]["image_shape"] = [8, 8, 8]
    assert one_error(base, reg) == (
        "dataset.image_shape: unknown key 'image_shape' in a paired dataset; allowed keys: train, valid, test, "
        "type, moving_image_shape, fixed_image_shape, sample_label, seed, num_labels, landmarks, "
        "max_landmarks, landmark_roi_size, landmark_units. Did you mean 'fixed_image_shape'?"
    )


def test_v011_dataset_dir_is_explained(base, reg):
    base["dataset"]["dir"] = {"train": "x"}
    assert "DeepReg v0.1.1's form" in one_error(base, reg)


@pytest.mark.parametrize("key", ["moving_image_shape", "fixed_image_shape"])
def test_paired_missing_shape(base, reg, key):
    del base["dataset"][key]
    assert one_error(base, reg) == f"dataset: missing required key {key!r} for a paired dataset"


def test_unpaired_missing_image_shape(base, reg):
    base["dataset"]["type"] = "unpaired"
    del base["dataset"]["moving_image_shape"], base["dataset"]["fixed_image_shape"]
    assert one_error(base, reg) == "dataset: missing required key 'image_shape' for a unpaired dataset"


def unpaired(base):
    base["dataset"]["type"] = "unpaired"
    del base["dataset"]["moving_image_shape"], base["dataset"]["fixed_image_shape"]
    base["dataset"]["image_shape"] = [8, 8, 8]
    return base


@pytest.mark.parametrize("value", ["all", "sample", None])
def test_split_pairs_accepted_for_unpaired(base, reg, value):
    config = unpaired(base)
    config["dataset"]["test"]["pairs"] = value
    assert validate_config(config, registry=reg)["dataset"]["test"]["pairs"] == value


def test_split_pairs_bad_value(base, reg):
    config = unpaired(base)
    config["dataset"]["test"]["pairs"] = "every"
    assert one_error(config, reg) == "dataset.test.pairs: 'every' is not allowed; allowed: sample, all."


@pytest.mark.parametrize("loader_type", ["paired", "grouped"])
def test_split_pairs_refused_for_loaders_with_their_own_pairing(base, reg, loader_type):
    if loader_type == "grouped":
        base["dataset"].update(
            type="grouped",
            image_shape=[8, 8, 8],
            intra_group_prob=1,
            intra_group_option="forward",
            sample_image_in_group=False,
        )
        del base["dataset"]["moving_image_shape"], base["dataset"]["fixed_image_shape"]
    base["dataset"]["valid"]["pairs"] = "all"
    line = one_error(base, reg)
    assert line.startswith("dataset.valid.pairs: only the unpaired data loader chooses its pairs this way")
    assert f"dataset.type is {loader_type!r}" in line


@pytest.mark.parametrize("shape", [[16, 16, 16, 1], [16], [16, 0, 16], [16, 16.0, 16], "16,16,16", [True, 2, 2]])
def test_bad_shape(base, reg, shape):
    base["dataset"]["moving_image_shape"] = shape
    lines = errors(base, reg)
    assert lines[0] == (
        f"dataset.moving_image_shape: must be a list of 3 or 2 positive integers (3-D or 2-D), got {shape!r}"
    )


def test_paired_shapes_of_different_dimension(base, reg):
    base["dataset"]["fixed_image_shape"] = [8, 8]
    assert one_error(base, reg) == (
        "dataset.fixed_image_shape: has 2 dimensions but moving_image_shape has 3; both must be 3-D or both 2-D"
    )


@pytest.fixture
def grouped(base):
    dataset = base["dataset"]
    del dataset["moving_image_shape"], dataset["fixed_image_shape"]
    dataset.update(
        type="grouped",
        image_shape=[8, 8, 8],
        intra_group_prob=1,
        intra_group_option="forward",
        sample_image_in_group=True,
    )
    return base


@pytest.mark.parametrize("key", ["image_shape", "intra_group_prob", "intra_group_option", "sample_image_in_group"])
def test_grouped_required_keys(grouped, reg, key):
    del grouped["dataset"][key]
    assert one_error(grouped, reg) == f"dataset: missing required key {key!r} for a grouped dataset"


@pytest.mark.parametrize("prob", [1.5, -0.1, "0.5", None])
def test_grouped_prob_range(grouped, reg, prob):
    grouped["dataset"]["intra_group_prob"] = prob
    line = one_error(grouped, reg)
    assert line.startswith(f"dataset.intra_group_prob: must be a number in [0, 1], got {prob!r}")
    if prob == "0.5":
        assert line.endswith("(a string; write the number without quotes)")


def test_grouped_prob_must_be_0_or_1_without_sampling(grouped, reg):
    grouped["dataset"]["sample_image_in_group"] = False
    grouped["dataset"]["intra_group_prob"] = 0.3
    assert one_error(grouped, reg) == (
        "dataset.intra_group_prob: must be 0 or 1 when sample_image_in_group is false, got 0.3"
    )


def test_grouped_option(grouped, reg):
    grouped["dataset"]["intra_group_option"] = "forwards"
    assert one_error(grouped, reg) == (
        "dataset.intra_group_option: 'forwards' is not allowed; allowed: forward, backward, unconstrained. "
        "Did you mean 'forward'?"
    )


def test_grouped_sample_image_in_group_bool(grouped, reg):
    grouped["dataset"]["sample_image_in_group"] = 1
    assert one_error(grouped, reg) == "dataset.sample_image_in_group: must be true or false, got 1"


def test_sample_label(base, reg):
    base["dataset"]["sample_label"] = "All"
    assert one_error(base, reg) == (
        "dataset.sample_label: 'All' is not allowed; allowed: sample, all, stack. Did you mean 'all'?"
    )


def test_seed(base, reg):
    base["dataset"]["seed"] = 1.5
    assert one_error(base, reg) == "dataset.seed: must be an integer or null, got 1.5"


# ---------------------------------------------------------------------- train: method, backbone
def test_method_missing(base, reg):
    del base["train"]["method"]
    assert one_error(base, reg) == "train: missing required key 'method'"


def test_method_unregistered(base, reg):
    base["train"]["method"] = "ddff"
    allowed = ", ".join(reg.names("model_class"))
    assert "ddf" in allowed and "dvf" in allowed
    assert one_error(base, reg) == (
        f"train.method: 'ddff' is not registered in model_class; allowed: {allowed}. Did you mean 'ddf'?"
    )


def test_v011_model_hint(base, reg):
    del base["train"]["method"], base["train"]["backbone"]
    base["train"]["model"] = {"method": "ddf", "backbone": "local"}
    lines = errors(base, reg)
    assert lines[0].startswith("train: missing required key 'method' (train.model is DeepReg v0.1.1's form")
    assert lines[1].startswith("train: missing required key 'backbone' (train.model")


def test_backbone_missing(base, reg):
    del base["train"]["backbone"]
    assert one_error(base, reg) == "train: missing required key 'backbone'"


def test_backbone_not_a_mapping(base, reg):
    base["train"]["backbone"] = "local"
    assert one_error(base, reg) == "train.backbone: must be a mapping, got 'local'"


def test_backbone_name_missing(base, reg):
    del base["train"]["backbone"]["name"]
    assert one_error(base, reg) == "train.backbone: missing required key 'name'"


def test_backbone_name_unregistered(base, reg):
    base["train"]["backbone"]["name"] = "Unet"
    assert one_error(base, reg) == (
        "train.backbone.name: 'Unet' is not registered in backbone_class; allowed: dfsa_unet, field, global, lapirn, "
        "local, multi_unets, swin_unetr, thesis_unet, transmorph, unet, unet_segmenter. "
        "Did you mean 'unet'?"
    )


def test_backbone_name_not_a_string(base, reg):
    base["train"]["backbone"]["name"] = ["local"]
    assert one_error(base, reg) == (
        "train.backbone.name: must be a name registered in backbone_class, got ['local']; allowed: dfsa_unet, field, "
        "global, lapirn, local, multi_unets, swin_unetr, thesis_unet, transmorph, unet, unet_segmenter"
    )


def test_control_points_only_for_models_warping_with_the_backbone_field(base, reg):
    base["train"]["method"] = "conditional"
    base["train"]["backbone"]["control_points"] = 4
    assert one_error(base, reg) == (
        "train.backbone.control_points: applies only to methods ddf, dvf, wssamnet, not 'conditional'"
    )


def test_control_points_refused_with_the_global_backbone(base, reg):
    base["train"]["backbone"] = {"name": "global", "num_channel_initial": 4, "depth": 2, "control_points": 4}
    assert one_error(base, reg) == (
        "train.backbone.control_points: does not apply to the affine backbone 'global' (its field is smooth already)"
    )


@pytest.mark.parametrize("name", ["local", "unet", "global"])
@pytest.mark.parametrize(
    "choice",
    [
        {"norm": "batch"},
        {"norm": "instance"},
        {"norm": "group"},
        {"norm": "group", "norm_groups": 2},
        {"norm": "group", "norm_groups": None},
        {"norm": "none"},
    ],
)
def test_backbone_norm_accepted(base, reg, name, choice):
    base["train"]["backbone"] = {"name": name, "num_channel_initial": 4, "extract_levels": [0, 1, 2], **choice}
    assert validate_config(base, registry=reg)["train"]["backbone"] == base["train"]["backbone"]


@pytest.mark.parametrize(
    "choice, message",
    [
        ({"norm": "layer"}, "train.backbone.norm: 'layer' is not allowed; allowed: batch, instance, group, none."),
        ({"norm": "Group"}, "train.backbone.norm: 'Group' is not allowed; allowed: batch, instance, group, none."),
        (
            {"norm_groups": 2},
            "train.backbone.norm_groups: applies only to norm: group, got norm: batch (leave norm_groups out, or set "
            "norm: group)",
        ),
        (
            {"norm": "instance", "norm_groups": 2},
            "train.backbone.norm_groups: applies only to norm: group, got norm: instance (leave norm_groups out, or "
            "set norm: group)",
        ),
        ({"norm": "group", "norm_groups": 0}, "train.backbone.norm_groups: must be a positive integer, got 0"),
        ({"norm": "group", "norm_groups": "8"}, "train.backbone.norm_groups: must be a positive integer, got '8'"),
    ],
)
def test_backbone_norm_refused(base, reg, choice, message):
    base["train"]["backbone"].update(choice)
    assert one_error(base, reg).startswith(message)


def test_misspelt_backbone_argument_is_a_config_error_with_the_accepted_ones(base, reg):
    # caught by the config check, before any model is built or any folder written
    base["train"]["backbone"]["num_chanel_initial"] = base["train"]["backbone"].pop("num_channel_initial")
    line = one_error(base, reg)
    assert line.startswith("train.backbone.num_chanel_initial: 'local' takes no argument 'num_chanel_initial'"), line
    assert "extract_levels" in line and "Did you mean 'num_channel_initial'?" in line, line


def test_backbone_keys_the_model_takes_are_not_backbone_arguments(base, reg):
    base["train"]["backbone"]["control_points"] = 4  # taken out by the model (the B-spline head)
    validate_config(base, registry=reg)
    base["train"]["segmenter"] = {"backbone": {"name": "unet_segmenter", "control_points": 4}}
    base["train"]["method"] = "wssamnet"
    assert any(
        line.startswith("train.segmenter.backbone.control_points: 'unet_segmenter' takes no argument")
        for line in errors(base, reg)
    )


def test_backbone_norm_refused_for_a_backbone_without_the_choice(base, reg):
    base["train"]["backbone"] = {"name": "field", "norm": "group", "norm_groups": 2}
    lines = [line for line in errors(base, reg) if "norm" in line]
    assert len(lines) == 2, lines
    assert lines[0].startswith("train.backbone.norm: backbone 'field' takes no 'norm' (no normalization choice); ")
    assert lines[1].startswith("train.backbone.norm_groups: backbone 'field' takes no 'norm_groups' ")
    # the backbones that take it, read from the registered constructors
    taking = lines[1].split("backbones taking it: ")[1].split(", ")
    assert {"global", "local", "unet"} <= set(taking) and "field" not in taking


@pytest.mark.parametrize("value", [0, [2, 2, 2, 2], "4", [2, -1, 2]])
def test_control_points_value(base, reg, value):
    base["train"]["backbone"]["control_points"] = value
    assert one_error(base, reg) == (
        f"train.backbone.control_points: must be a positive integer or a list of positive integers, got {value!r}"
    )


# ---------------------------------------------------------------------- train: loss
def test_loss_unknown_category(base, reg):
    base["train"]["loss"]["imag"] = {"name": "ssd", "weight": 1}
    assert one_error(base, reg) == (
        "train.loss.imag: unknown key 'imag' in train.loss; allowed keys: image, label, regularization. "
        "Did you mean 'image'?"
    )


def test_loss_category_wrong_type(base, reg):
    base["train"]["loss"]["image"] = "lncc"
    assert one_error(base, reg) == "train.loss.image: must be a loss {name, weight, ...} or a list of them, got 'lncc'"


def test_loss_entry_not_a_mapping(base, reg):
    base["train"]["loss"]["label"][0] = "dice"
    assert one_error(base, reg) == "train.loss.label[0]: must be a loss {name, weight, ...}, got 'dice'"


def test_loss_name_missing(base, reg):
    del base["train"]["loss"]["regularization"]["name"]
    assert one_error(base, reg) == "train.loss.regularization: missing required key 'name'"


def test_loss_name_unregistered_in_list(base, reg):
    base["train"]["loss"]["label"][1]["name"] = "jacard"
    line = one_error(base, reg)
    assert line.startswith("train.loss.label[1].name: 'jacard' is not registered in loss_class; allowed: ")
    assert ", ".join(reg.names("loss_class")) in line
    assert line.endswith("Did you mean 'jaccard'?")


@pytest.mark.parametrize(
    "weight, hint", [("0.5", " (a string; write the number without quotes)"), (True, ""), ([1], "")]
)
def test_loss_weight_not_a_number(base, reg, weight, hint):
    base["train"]["loss"]["image"]["weight"] = weight
    assert one_error(base, reg) == f"train.loss.image.weight: must be a number, got {weight!r}{hint}"


# ---------------------------------------------------------------------- train: preprocess
@pytest.mark.parametrize("key", ["batch_size", "shuffle_buffer_num_batch"])
def test_preprocess_required(base, reg, key):
    del base["train"]["preprocess"][key]
    assert one_error(base, reg) == f"train.preprocess: missing required key {key!r} (a positive integer)"


@pytest.mark.parametrize("value, hint", [(0, ""), ("2", " (a string; write the number without quotes)"), (2.0, "")])
def test_batch_size_positive_int(base, reg, value, hint):
    base["train"]["preprocess"]["batch_size"] = value
    assert one_error(base, reg) == f"train.preprocess.batch_size: must be a positive integer, got {value!r}{hint}"


@pytest.mark.parametrize("value", [0, -2, "auto"])
def test_num_parallel_calls(base, reg, value):
    base["train"]["preprocess"]["num_parallel_calls"] = value
    assert one_error(base, reg) == (
        f"train.preprocess.num_parallel_calls: must be -1 (autotune) or a positive integer, got {value!r}"
    )


def test_data_augmentation_wrong_type(base, reg):
    base["train"]["preprocess"]["data_augmentation"] = "affine"
    assert one_error(base, reg) == (
        "train.preprocess.data_augmentation: must be an augmentation {name, ...}, a list of them, or null, got 'affine'"
    )


def test_data_augmentation_unregistered_in_list(base, reg):
    base["train"]["preprocess"]["data_augmentation"] = [{"name": "affine"}, {"name": "elastic"}]
    assert one_error(base, reg) == (
        "train.preprocess.data_augmentation[1].name: 'elastic' is not registered in da_class; allowed: affine, ddf."
    )


def test_data_augmentation_missing_name(base, reg):
    base["train"]["preprocess"]["data_augmentation"] = {"scale": 0.1}
    assert one_error(base, reg) == "train.preprocess.data_augmentation: missing required key 'name'"


def test_data_augmentation_entry_not_mapping(base, reg):
    base["train"]["preprocess"]["data_augmentation"] = ["affine"]
    assert one_error(base, reg) == (
        "train.preprocess.data_augmentation[0]: must be an augmentation {name, ...}, got 'affine'"
    )


@pytest.mark.parametrize(
    "key, value, known", [("batchsize", 3, "batch_size"), ("data_augmentaton", None, "data_augmentation")]
)
def test_unknown_preprocess_key_is_an_error(base, reg, key, value, known):
    """A misspelt key used to be a warning: ``data_augmentaton: null`` left augmentation on."""
    base["train"]["preprocess"][key] = value
    assert one_error(base, reg) == (
        f"train.preprocess.{key}: unknown key (a misspelling would silently keep the default). Did you mean '{known}'?"
    )


# ---------------------------------------------------------------------- train: optimizer, epochs
def test_optimizer_name_missing(base, reg):
    del base["train"]["optimizer"]["name"]
    assert one_error(base, reg) == (
        "train.optimizer: missing required key 'name' (a keras.optimizers class such as Adam)"
    )


@pytest.mark.parametrize("name, match", [("adam", "Adam"), ("RMSProp", "RMSprop"), ("sgd", "SGD")])
def test_optimizer_name_suggestion(base, reg, name, match):
    base["train"]["optimizer"]["name"] = name
    line = one_error(base, reg)
    assert line.startswith(f"train.optimizer.name: {name!r} is not an optimizer class in keras.optimizers; allowed: ")
    assert "Adam, AdamW" in line
    assert line.endswith(f"Did you mean {match!r}?")


@pytest.mark.parametrize("name", ["Optimizer", "schedules", 3])
def test_optimizer_not_a_concrete_class(base, reg, name):
    base["train"]["optimizer"]["name"] = name
    assert one_error(base, reg).startswith(f"train.optimizer.name: {name!r} is not an optimizer class")


@pytest.mark.parametrize("key", ["epochs", "save_period"])
def test_epochs_required(base, reg, key):
    del base["train"][key]
    assert one_error(base, reg) == f"train: missing required key {key!r} (a positive integer)"


@pytest.mark.parametrize("key", ["epochs", "save_period"])
@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_epochs_positive(base, reg, key, value):
    base["train"][key] = value
    assert one_error(base, reg) == f"train.{key}: must be a positive integer, got {value!r}"


@pytest.mark.parametrize("value", ["step", 0, 1.5])
def test_update_freq(base, reg, value):
    base["train"]["update_freq"] = value
    assert one_error(base, reg) == (
        f"train.update_freq: must be 'epoch' or 'batch' or a positive integer (batches), got {value!r}"
    )


def test_unknown_train_key_is_an_error(base, reg):
    base["train"]["epoch"] = 3
    assert one_error(base, reg) == (
        "train.epoch: unknown key (a misspelling would silently keep the default). Did you mean 'epochs'?"
    )


def test_conditional_needs_labels(base, reg):
    base["train"]["method"] = "conditional"
    base["dataset"]["train"]["labeled"] = False
    assert one_error(base, reg) == (
        "train.method: 'conditional' predicts the fixed label and needs labeled data, "
        "but dataset.train.labeled is false"
    )


# ---------------------------------------------------------------------- reporting
def test_all_errors_reported_together(base, reg):
    base["dataset"]["type"] = "pared"
    base["train"]["epochs"] = 0
    base["train"]["loss"]["image"]["name"] = "lnc"
    with pytest.raises(ValueError) as info:
        validate_config(base, registry=reg)
    assert isinstance(info.value, ConfigError)
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0] == "3 problems in the configuration:"
    assert lines[1].startswith("  - dataset.type: 'pared'")
    assert lines[2].startswith("  - train.loss.image.name: 'lnc'") and lines[2].endswith("Did you mean 'lncc'?")
    assert lines[3] == "  - train.epochs: must be a positive integer, got 0"


def test_errors_name_the_file(base, reg, tmp_path):
    import yaml

    main = tmp_path / "main.yaml"
    main.write_text(yaml.safe_dump(base))
    override = tmp_path / "override.yaml"
    override.write_text("train:\n  loss:\n    label: [{name: dice, weight: 1}, {name: dicee, weight: 1}]\n")
    config, prov = load_configs_with_provenance([str(main), str(override)])
    with pytest.raises(ConfigError) as info:
        validate_config(config, prov, registry=reg)
    assert info.value.errors == [
        "train.loss.label[1].name: 'dicee' is not registered in loss_class; allowed: "
        + ", ".join(reg.names("loss_class"))
        + f". Did you mean 'dice'? (from {override})"
    ]
    config["train"]["epochs"] = 0
    with pytest.raises(ConfigError, match=f"train.epochs: must be a positive integer, got 0 \\(from {main}\\)"):
        validate_config(config, prov, registry=reg)


# ---------------------------------------------------------------------- keys owned by the model and trainer classes
def test_rigidity_without_a_mask_is_refused_before_training(base, reg):
    base["train"]["loss"]["regularization"] = {"name": "rigidity", "weight": 0.2}
    line = one_error(base, reg)
    assert line.startswith("train.loss.regularization.mask: 'rigidity' needs its input 'mask'"), line


def test_rigidity_with_the_moving_label_passes(base, reg):
    base["dataset"]["sample_label"] = "stack"  # channels of a label: every channel in each sample
    base["train"]["loss"]["regularization"] = [
        {"name": "rigidity", "weight": 0.2, "mask": "moving_label", "channels": [0]},
        {"name": "rigidity", "weight": 0.2, "mask": None},
    ]
    validate_config(base, registry=reg)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "multiclass-dice", "weight": 1.0},
        {"name": "multiclass-cross-entropy", "weight": 1.0, "class_weights": [1.0, 2.0]},
        {"name": "focal", "weight": 1.0, "multi_class": True},
        {"name": "contour-ce", "weight": 1.0, "multi_class": True},
    ],
)
def test_a_loss_scoring_every_label_channel_needs_stacked_labels(base, reg, entry):
    # one sampled channel (B, *S) would be read as classes along the last spatial axis: refused, not fed
    base["train"]["loss"]["label"] = entry
    line = one_error(base, reg)
    assert line.startswith(
        f"train.loss.label: '{entry['name']}' reads the last axis of its labels as classes, so it needs every label "
        "channel of a sample, but dataset.sample_label: sample (the default) gives one label channel per sample"
    ), line
    assert line.endswith("set dataset.sample_label: stack"), line
    base["dataset"]["sample_label"] = "all"
    assert "dataset.sample_label: all gives one label channel per sample" in one_error(base, reg)
    base["dataset"]["sample_label"] = "stack"
    validate_config(base, registry=reg)


def test_binary_focal_and_contour_ce_take_one_sampled_channel(base, reg):
    base["train"]["loss"]["label"] = [
        {"name": "focal", "weight": 1.0},
        {"name": "contour-ce", "weight": 1.0, "multi_class": False},
    ]
    validate_config(base, registry=reg)


def test_segmentation_losses_scoring_every_channel_need_stacked_labels(base, reg):
    import tfreg.models  # noqa: F401  (registers the segmentation and WSSAMNet models)

    base["train"].update(
        method="segmentation",
        backbone={"name": "unet_segmenter", "channels": [4, 8]},
        loss={"segmentation": {"name": "multiclass-dice", "weight": 1.0}},
    )
    base["dataset"]["sample_label"] = "all"
    assert one_error(base, reg).startswith("train.loss.segmentation: 'multiclass-dice' reads the last axis")
    base["dataset"]["sample_label"] = "stack"
    validate_config(base, registry=reg)


def test_mask_from_labels_on_unlabeled_data_names_loss_input_and_model(base, reg):
    base["dataset"]["train"]["labeled"] = False
    base["train"]["loss"]["regularization"] = {"name": "rigidity", "weight": 0.2, "mask": "warped_moving"}
    line = one_error(base, reg)
    assert line.startswith(
        "train.loss.regularization.mask: 'rigidity' takes 'mask' from 'warped_moving', which method 'ddf' does not "
        "produce for this data"
    ), line


def test_inverse_consistency_needs_a_model_with_a_backward_field(base, reg):
    class NoBackward(REGISTRY.get("model_class", "ddf")):
        optional_outputs = ()

    local = reg.copy()
    local.register("model_class", "no-backward", NoBackward)
    base["train"]["loss"]["regularization"] = {"name": "inverse-consistency", "weight": 0.1}
    validate_config(copy.deepcopy(base), registry=local)  # ddf computes ddf_backward on request
    base["train"]["method"] = "no-backward"
    line = one_error(base, local)
    assert "takes 'ddf_backward' from 'ddf_backward', which method 'no-backward' does not produce" in line


def test_composite_model_brings_its_keys_and_categories(base, reg, caplog):
    class Composite(REGISTRY.get("model_class", "ddf")):
        loss_inputs = dict(REGISTRY.get("model_class", "ddf").loss_inputs, segmentation=("moving_label", "seg"))
        config_keys = ("backbone", "loss", "segmenter")
        required_config_keys = ("backbone", "loss", "segmenter")

        @classmethod
        def output_names(cls, labeled):
            return super().output_names(labeled) + ("seg",)

        @classmethod
        def validate_train_config(cls, checker, train, labeled, method):
            super().validate_train_config(checker, train, labeled, method)
            if "segmenter" in train:
                checker.check_component(("train", "segmenter"), train["segmenter"], "backbone_class")

    local = reg.copy()
    local.register("model_class", "composite", Composite)
    base["train"]["method"] = "composite"
    base["train"]["loss"]["segmentation"] = {"name": "dice", "weight": 1.0}
    assert one_error(copy.deepcopy(base), local) == "train: missing required key 'segmenter'"
    base["train"]["segmenter"] = {"name": "unet", "num_channel_initial": 4}
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        validate_config(copy.deepcopy(base), registry=local)
    assert "segmenter" not in caplog.text  # the model reads it: not "unknown, ignored"
    base["train"]["segmenter"] = {"name": "unett"}
    assert one_error(copy.deepcopy(base), local).startswith("train.segmenter.name: 'unett' is not registered")
    base["train"]["method"] = "ddf"
    del base["train"]["segmenter"]
    assert one_error(base, local).startswith("train.loss.segmentation: unknown key 'segmentation' in train.loss")


def test_segmenter_key_of_a_plain_model_is_refused(base, reg):
    base["train"]["segmenter"] = {"name": "unet"}
    assert one_error(base, reg).startswith("train.segmenter: unknown key (a misspelling would silently keep")


def test_conditional_needs_labels_is_the_model_rule(base, reg):
    base["train"]["method"] = "conditional"
    base["dataset"]["train"]["labeled"] = False
    assert "'conditional' predicts the fixed label and needs labeled data" in one_error(base, reg)


def test_alternating_trainer_keys(base, reg):
    base["train"]["trainer"] = {"name": "alternating"}
    assert sorted(errors(copy.deepcopy(base), reg)) == sorted(
        [
            "train: missing required key 'optimizers'",
            "train.optimizer: trainer 'alternating' reads train.optimizers (one optimizer per parameter group), "
            "not train.optimizer; move it under train.optimizers.<group>",
        ]
    )
    optimizer = base["train"].pop("optimizer")
    base["train"]["optimizers"] = {"registration": optimizer, "segmentation": {"name": "Adamm"}}
    lines = errors(copy.deepcopy(base), reg)
    assert any(
        l.startswith("train.optimizers.segmentation: the model has no parameter group 'segmentation'") for l in lines
    )
    assert any(l.startswith("train.optimizers.segmentation.name: 'Adamm' is not an optimizer class") for l in lines)
    base["train"]["optimizers"] = {"registration": optimizer}
    base["train"]["trainer"]["phases"] = [{"optimizer": "registration", "losses": ["imag"]}, {"optimizer": "other"}]
    assert sorted(errors(copy.deepcopy(base), reg)) == [
        "train.trainer.phases[0].losses: the model has no loss category 'imag'; its categories: image, label, "
        "regularization",
        "train.trainer.phases[1].optimizer: 'other' is not in train.optimizers (registration)",
    ]
    base["train"]["trainer"]["phases"] = [{"optimizer": "registration", "steps": 0}]
    assert "phases[0].steps must be an integer >= 1" in one_error(base, reg)


def test_unknown_trainer(base, reg):
    base["train"]["trainer"] = {"name": "fitt"}
    assert one_error(base, reg).startswith("train.trainer.name: 'fitt' is not registered in trainer_class")


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("ckpt", "train.init_from: must be a mapping {path, parts}"),
        ({"path": "a/save/ckpt-1"}, "train.init_from.parts: must be a list of sub-network names"),
        ({"path": "", "parts": ["backbone"]}, "train.init_from.path: must be a checkpoint path"),
        ({"path": "a", "parts": ["backbone"], "strict": True}, "train.init_from.strict: unknown key 'strict'"),
    ],
)
def test_init_from_shape(base, reg, value, fragment):
    base["train"]["init_from"] = value
    assert one_error(base, reg).startswith(fragment)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("learning_rate", float("nan"), "must be a finite number, got nan"),
        ("learning_rate", -1.0e-3, "must be in [0, 1], got -0.001"),
        ("learning_rate", 1.0e6, "must be in [0, 1], got 1000000.0"),
        ("beta_1", 1.5, "must be in [0, 1), got 1.5"),
        ("epsilon", 0.0, "must be > 0, got 0.0"),
        ("weight_decay", -0.1, "must be >= 0, got -0.1"),
    ],
)
def test_optimizer_numbers_that_cannot_train_are_refused(base, reg, key, value, message):
    """NaN, negative or huge learning rates were accepted and trained to NaN checkpoints."""
    base["train"]["optimizer"][key] = value
    assert one_error(base, reg) == f"train.optimizer.{key}: {message}" + (
        " (a negative rate climbs the loss, a larger one diverges)"
        if key == "learning_rate" and "in [0" in message
        else ""
    )


def test_landmark_keys_of_a_paired_dataset(base, reg):
    base["dataset"].update(landmarks=True, max_landmarks=50, landmark_roi_size=9, landmark_units="voxel")
    validate_config(base, registry=reg)
    base["dataset"].update(landmarks="yes", max_landmarks=0, landmark_roi_size=8)
    lines = errors(base, reg)
    assert any("dataset.landmarks" in line and "must be true or false" in line for line in lines)
    assert any("dataset.max_landmarks" in line and "must be a positive integer" in line for line in lines)
    assert any("dataset.landmark_roi_size" in line and "positive odd integer" in line for line in lines)
    base["dataset"].update(landmarks=True, max_landmarks=None, landmark_roi_size=None, landmark_units="mm")
    assert errors(base, reg) == ["dataset.landmark_units: 'mm' is not allowed; allowed: physical, voxel."]
    base["dataset"].update(landmarks=False, max_landmarks=None, landmark_roi_size=9)
    assert any("landmark_roi_size" in line and "set landmarks: true" in line for line in errors(base, reg))


def test_landmark_keys_refused_for_unpaired(base, reg):
    base["dataset"].update(type="unpaired", image_shape=[8, 8, 8], landmarks=True)
    del base["dataset"]["moving_image_shape"], base["dataset"]["fixed_image_shape"]
    assert any("dataset.landmarks" in line for line in errors(base, reg))


def test_a_loss_without_a_required_argument_is_a_config_error(base):
    base["train"]["loss"]["label"] = {"name": "embedding", "weight": 0.1}
    line = one_error(base, REGISTRY)
    assert "train.loss.label" in line and "missing required key 'encoder'" in line and ".keras" in line, line


def test_learning_rate_schedule_is_built_and_its_errors_named(base, reg):
    base["train"]["optimizer"] = {
        "name": "Adam",
        "learning_rate": {"name": "PolynomialDecay", "initial_learning_rate": 1e-4, "decay_steps": 1000, "power": 0.9},
    }
    assert validate_config(base, registry=reg)["train"]["optimizer"]["learning_rate"]["power"] == 0.9
    base["train"]["optimizer"]["learning_rate"]["name"] = "PolynomialDecy"
    message = one_error(base, reg)
    assert message.startswith(
        "train.optimizer.learning_rate: name 'PolynomialDecy' is not a keras.optimizers.schedules class; allowed: "
    )
    assert "PolynomialDecay" in message
    base["train"]["optimizer"]["learning_rate"] = {"name": "PolynomialDecay", "initial_learning_rate": 1e-4, "steps": 5}
    assert one_error(base, reg).startswith("train.optimizer.learning_rate: PolynomialDecay rejects {")

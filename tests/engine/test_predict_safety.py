"""tfreg_predict never loses a user's files (issue: data-loss items 1, 3 and 5).

Each test records the SHA-256 of every file it protects before the call and compares after it.
"""

import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.conftest import data_root
from tests.engine.deepreg_configs import paired_config, write_config
from tfreg.engine.predict import predict
from tfreg.file_safety import OUTPUT_MARKER, SCRATCH_PREFIX


def digest(folder) -> dict:
    """relative path -> SHA-256 of every file under ``folder``."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture
def user_data(tmp_path):
    """A copy of the paired test split (the user's data) and a config reading it."""
    source = data_root() / "deepreg_test" / "nifti" / "paired" / "test"
    data = tmp_path / "study" / "test"
    shutil.copytree(source, data)
    config = paired_config(data_root())
    config["dataset"]["test"]["dir"] = str(data)
    return data, write_config(config, tmp_path / "predict.yaml")


def test_overwrite_refuses_an_output_folder_that_is_the_data_folder(trained, user_data):
    data, config = user_data
    before = digest(data)
    assert {"moving_images", "fixed_images"} <= {p.split(os.sep)[0] for p in before}
    ckpt = os.path.join(trained["exp"], "save", "ckpt-2")
    # <log_dir>/<exp_name>/<split> == the data folder itself
    with pytest.raises(FileExistsError, match=r"holds the input dataset\.test\.dir"):
        predict(
            ckpt_path=ckpt, config_path=config, split="test", log_dir=str(data.parent), exp_name=".", overwrite=True
        )
    assert digest(data) == before


def test_overwrite_refuses_an_output_folder_holding_the_data(trained, tmp_path):
    source = data_root() / "deepreg_test" / "nifti" / "paired" / "test"
    data = tmp_path / "logs" / "p" / "test" / "my_data"
    shutil.copytree(source, data)
    config = paired_config(data_root())
    config["dataset"]["test"]["dir"] = str(data)
    config_path = write_config(config, tmp_path / "c.yaml")
    before = digest(tmp_path / "logs")
    ckpt = os.path.join(trained["exp"], "save", "ckpt-2")
    with pytest.raises(FileExistsError, match="holds the input"):
        predict(
            ckpt_path=ckpt,
            config_path=config_path,
            split="test",
            log_dir=str(tmp_path / "logs"),
            exp_name="p",
            overwrite=True,
        )
    assert digest(tmp_path / "logs") == before


def test_overwrite_replaces_only_folders_predict_wrote(trained, tmp_path):
    ckpt = os.path.join(trained["exp"], "save", "ckpt-2")
    mine = tmp_path / "logs" / "p" / "test"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("the user's notes")
    before = digest(tmp_path / "logs")
    with pytest.raises(
        FileExistsError, match=rf"was not written by tfreg_predict \(no tfreg marker file {OUTPUT_MARKER}"
    ):
        predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path / "logs"), exp_name="p", overwrite=True)
    assert digest(tmp_path / "logs") == before
    # a folder predict wrote is replaced on request, and only then; its permissions follow the umask
    old_umask = os.umask(0o022)
    try:
        path = predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path / "logs"), exp_name="q")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755  # tempfile.mkdtemp made it 0o700
    assert stat.S_IMODE(os.stat(os.path.join(path, "metrics.csv")).st_mode) == 0o644
    assert os.path.isfile(os.path.join(path, OUTPUT_MARKER)) and os.path.isfile(os.path.join(path, "config.yaml"))
    (tmp_path / "logs" / "q" / "test" / "pair_0" / "stale.txt").write_text("from an older prediction")
    with pytest.raises(FileExistsError, match="already exists"):
        predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path / "logs"), exp_name="q")
    predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path / "logs"), exp_name="q", overwrite=True)
    assert not (tmp_path / "logs" / "q" / "test" / "pair_0" / "stale.txt").exists()
    assert not [n for n in os.listdir(tmp_path / "logs" / "q") if n.startswith(SCRATCH_PREFIX)]


def test_predicting_into_the_training_folder_keeps_its_files(trained, tmp_path):
    exp = tmp_path / "run"
    shutil.copytree(trained["exp"], exp)
    before = digest(exp)
    ckpt = str(exp / "save" / "ckpt-2")
    other = paired_config(data_root())
    other["train"]["loss"]["image"]["weight"] = 0.7  # a config that differs, but not in shapes or model
    path = predict(
        ckpt_path=ckpt,
        split="valid",
        log_dir=str(tmp_path),
        exp_name="run",
        config_path=write_config(other, tmp_path / "other.yaml"),
    )
    after = digest(exp)
    assert {k: after[k] for k in before} == before  # the run's config.yaml, checkpoints and logs unchanged
    with open(os.path.join(path, "config.yaml")) as f:
        assert yaml.safe_load(f)["train"]["loss"]["image"]["weight"] == 0.7  # the prediction's own config


def test_default_config_is_the_one_saved_beside_the_checkpoint(trained, tmp_path):
    exp = tmp_path / "run"
    shutil.copytree(trained["exp"], exp)
    assert (exp / "save" / "config.yaml").is_file()
    # <exp>/config.yaml replaced (as tfreg 0.1's predict did): the training config beside the checkpoint wins
    replaced = paired_config(data_root())
    replaced["dataset"]["moving_image_shape"] = [8, 8, 8]
    write_config(replaced, exp / "config.yaml")
    path = predict(ckpt_path=str(exp / "save" / "ckpt-2"), split="test", log_dir=str(tmp_path), exp_name="p")
    with open(os.path.join(path, "config.yaml")) as f:
        assert yaml.safe_load(f)["dataset"]["moving_image_shape"] == [16, 16, 16]


def test_a_config_with_other_shapes_than_training_is_refused(trained, tmp_path):
    other = paired_config(data_root())
    other["dataset"]["fixed_image_shape"] = [16, 16, 16]
    with pytest.raises(ValueError, match=r"dataset\.fixed_image_shape is \[16, 16, 16\] .* trained with \[8, 8, 8\]"):
        predict(
            ckpt_path=os.path.join(trained["exp"], "save", "ckpt-2"),
            split="test",
            log_dir=str(tmp_path),
            exp_name="p",
            config_path=write_config(other, tmp_path / "other.yaml"),
        )
    ddf = paired_config(data_root(), method="dvf")
    with pytest.raises(ValueError, match=r"train\.method is 'dvf'"):
        predict(
            ckpt_path=os.path.join(trained["exp"], "save", "ckpt-2"),
            split="test",
            log_dir=str(tmp_path),
            exp_name="p",
            config_path=write_config(ddf, tmp_path / "dvf.yaml"),
        )
    assert not (tmp_path / "p").exists()


KILLED_PREDICT = textwrap.dedent(
    """
    import os, signal, sys
    from tfreg.engine import predict_outputs

    write = predict_outputs.PredictionWriter.write

    def write_then_die(self, *args, **kwargs):
        write(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-prediction: no except/finally runs

    predict_outputs.PredictionWriter.write = write_then_die
    from tfreg.engine.predict import predict

    predict(ckpt_path=sys.argv[1], split="test", log_dir=sys.argv[2], exp_name="p")
    """
)


@pytest.mark.slow
def test_a_killed_prediction_leaves_scratch_that_the_next_run_removes(trained, tmp_path):
    ckpt = os.path.join(trained["exp"], "save", "ckpt-2")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", KILLED_PREDICT, ckpt, str(tmp_path)],
        env=env,
        capture_output=True,
        timeout=600,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    left = [n for n in os.listdir(tmp_path / "p") if n.startswith(SCRATCH_PREFIX)]
    assert len(left) == 1 and not (tmp_path / "p" / "test").exists()
    path = predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path), exp_name="p")
    assert sorted(os.listdir(tmp_path / "p")) == ["config.yaml", "test"]
    assert sorted(d for d in os.listdir(path) if d.startswith("pair_")) == ["pair_0", "pair_1"]

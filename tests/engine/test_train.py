"""tfreg.engine.train on DeepReg's test data: layout, checkpoints, resume, and errors before training."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.engine.deepreg_configs import paired_config, write_config
from tfreg.config import ConfigError, load_yaml_file
from tfreg.engine.checkpoint import CheckpointError
from tfreg.engine.train import train


def test_log_folder_layout(trained):
    exp = trained["exp"]
    assert sorted(os.listdir(exp)) == ["config.yaml", "save", "train", "validation"]
    saved = sorted(os.path.basename(p) for p in glob.glob(os.path.join(exp, "save", "ckpt-*.index")))
    assert saved == ["ckpt-1.index", "ckpt-2.index"]
    assert glob.glob(os.path.join(exp, "train", "events.out.tfevents.*"))
    assert glob.glob(os.path.join(exp, "validation", "events.out.tfevents.*"))
    config = load_yaml_file(os.path.join(exp, "config.yaml"))
    assert config["train"]["method"] == "ddf" and config["train"]["epochs"] == 2


def _event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.add(value.tag)
    return tags


def test_tensorboard_logs_deepreg_names(trained):
    train_tags = _event_tags(os.path.join(trained["exp"], "train"))
    valid_tags = _event_tags(os.path.join(trained["exp"], "validation"))
    for name in (
        "epoch_loss",
        "epoch_loss/image_LocalNormalizedCrossCorrelationLoss",
        "epoch_loss/label_DiceScoreLoss",
        "epoch_loss/regularization_BendingEnergy_weighted",
        "epoch_metric/TRE",
    ):
        assert name in train_tags, sorted(train_tags)
        assert name in valid_tags, sorted(valid_tags)


def _checkpoint_values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("model/")}


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_resume_continues_at_the_checkpoint_epoch(trained):
    tmp = trained["tmp"]
    ckpt1 = os.path.join(trained["exp"], "save", "ckpt-1")
    model, exp = train(
        config_path=trained["config_path"],
        ckpt_path=ckpt1,
        log_dir=str(tmp / "logs"),
        exp_name="resumed",
        max_epochs=3,
        verbose=0,
    )
    saved = sorted(os.path.basename(p) for p in glob.glob(os.path.join(exp, "save", "ckpt-*.index")))
    # resumed at epoch 1: epochs 2 and 3 run, nothing is saved as ckpt-1 again
    assert saved == ["ckpt-2.index", "ckpt-3.index"]
    steps = max(25 // 4, 1)  # 25 training pairs, batch 4, one sample per pair (sample_label: sample)
    assert int(model.optimizer.iterations) == 3 * steps
    # the optimizer state came from ckpt-1: its step counter was restored before training went on
    reader = tf.train.load_checkpoint(ckpt1)
    iterations = [k for k in reader.get_variable_to_shape_map() if k.startswith("optimizer/") and "iterations" in k]
    assert iterations and int(reader.get_tensor(iterations[0])) == steps
    assert load_yaml_file(os.path.join(exp, "config.yaml"))["train"]["epochs"] == 3


def test_resume_restores_the_weights(trained, tmp_path):
    """Resuming with nothing left to train is an error; restoring itself reproduces the saved weights."""
    from tfreg.engine.build import build_loader, build_model, build_optimizer, create_variables
    from tfreg.engine.checkpoint import make_checkpoint, restore_checkpoint

    ckpt2 = os.path.join(trained["exp"], "save", "ckpt-2")
    with pytest.raises(ValueError, match="nothing is left to train"):
        train(config_path=trained["config_path"], ckpt_path=ckpt2, log_dir=str(tmp_path), exp_name="x", verbose=0)
    assert not os.path.exists(tmp_path / "x")
    config = load_yaml_file(os.path.join(trained["exp"], "config.yaml"))
    loader = build_loader(config, "train")
    model, optimizer = build_model(config, loader), build_optimizer(config)
    create_variables(model, loader, optimizer)
    restore_checkpoint(make_checkpoint(model, optimizer), ckpt2, with_optimizer=True)
    for got, want in zip(model.weights, trained["model"].weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_errors_before_anything_is_written(trained, tmp_path):
    from tests.conftest import data_root

    logs = tmp_path / "logs"
    bad_method = paired_config(data_root(), method="ddff")
    with pytest.raises(ConfigError, match="ddff"):
        train(config_path=write_config(bad_method, tmp_path / "a.yaml"), log_dir=str(logs), exp_name="a", verbose=0)
    too_deep = paired_config(data_root(), method="affine")
    too_deep["train"]["backbone"]["extract_levels"] = [0, 1, 2, 3, 4]  # fixed images are 8^3: GlobalNet refuses
    with pytest.raises(ValueError, match="does not fit depth 4"):
        train(config_path=write_config(too_deep, tmp_path / "b.yaml"), log_dir=str(logs), exp_name="b", verbose=0)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        train(
            config_path=trained["config_path"],
            ckpt_path=str(tmp_path / "save" / "ckpt-7"),
            log_dir=str(logs),
            exp_name="c",
            verbose=0,
        )
    other = paired_config(data_root())
    other["train"]["backbone"]["num_channel_initial"] = 8
    with pytest.raises(CheckpointError, match="does not fit the model"):
        train(
            config_path=write_config(other, tmp_path / "d.yaml"),
            log_dir=str(logs),
            exp_name="d",
            verbose=0,
            ckpt_path=os.path.join(trained["exp"], "save", "ckpt-1"),
        )
    assert not logs.exists()
    with pytest.raises(FileExistsError, match="already exists"):
        train(config_path=trained["config_path"], log_dir=os.path.dirname(trained["exp"]), exp_name="run", verbose=0)


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_extra_callbacks_see_every_epoch(trained, tmp_path):
    import keras

    class Count(keras.callbacks.Callback):
        epochs = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((epoch, "val_loss" in (logs or {})))

    train(
        config_path=trained["config_path"],
        log_dir=str(tmp_path),
        exp_name="cb",
        max_epochs=1,
        verbose=0,
        callbacks=[Count()],
    )
    assert Count.epochs == [(0, True)]


@pytest.mark.slow
def test_self_supervised_pretraining_then_fine_tuning(tmp_path):
    """WSSAMNet's protocol: pre-train on images paired with random affine copies of themselves, then start a
    new (unpaired) training from those weights with a fresh optimizer and epoch counter (train.init_from)."""
    from tests.data.helpers import write_unpaired

    data = write_unpaired(str(tmp_path / "data"), [f"s{k}" for k in range(4)], shape=(12, 12, 12), num_labels=None)
    split = {"dir": data, "format": "nifti", "labeled": False}
    base = {
        "dataset": {"train": split, "type": "self_paired", "image_shape": [8, 8, 8], "max_shift": 1.0},
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]},
            "loss": {"image": {"name": "ssd", "weight": 1.0}, "regularization": {"name": "bending", "weight": 0.1}},
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-3},
            "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1, "data_augmentation": None},
            "epochs": 1,
            "save_period": 1,
        },
    }
    _, pre = train(
        config_path=write_config(base, tmp_path / "pre.yaml"), log_dir=str(tmp_path), exp_name="pre", verbose=0
    )
    ckpt = os.path.join(pre, "save", "ckpt-1")
    fine = dict(base, dataset={"train": split, "type": "unpaired", "image_shape": [8, 8, 8]})
    fine["train"] = dict(base["train"], init_from={"path": ckpt, "parts": ["backbone"]})
    model, exp = train(
        config_path=write_config(fine, tmp_path / "fine.yaml"),
        log_dir=str(tmp_path),
        exp_name="fine",
        verbose=0,
        max_epochs=1,
    )
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(exp, "save", "ckpt-*.index"))) == [
        "ckpt-1.index"
    ]  # a fresh epoch counter
    # a backbone that does not fit the pre-trained weights is refused, naming the shapes
    fine["train"]["backbone"] = {"name": "local", "num_channel_initial": 4, "extract_levels": [0, 1]}
    with pytest.raises(CheckpointError, match="shape"):
        train(config_path=write_config(fine, tmp_path / "bad.yaml"), log_dir=str(tmp_path), exp_name="bad", verbose=0)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_a_failed_start_leaves_nothing_and_a_later_failure_keeps_the_checkpoints(trained, tmp_path):
    import keras

    class FailOnBatch(keras.callbacks.Callback):
        def __init__(self, epoch):
            super().__init__()
            self.epoch = epoch

        def on_epoch_begin(self, epoch, logs=None):
            self.current = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.current == self.epoch:
                raise RuntimeError("the first step failed")

    config = trained["config_path"]
    with pytest.raises(RuntimeError, match="first step failed"):
        train(config_path=config, log_dir=str(tmp_path), exp_name="run", verbose=0, callbacks=[FailOnBatch(0)])
    assert not (tmp_path / "run").exists()  # no config.yaml, train/ or save/ left to block a rerun
    (tmp_path / "empty").mkdir()  # a folder the user made for the run: kept, emptied
    with pytest.raises(RuntimeError):
        train(config_path=config, log_dir=str(tmp_path), exp_name="empty", verbose=0, callbacks=[FailOnBatch(0)])
    assert os.listdir(tmp_path / "empty") == []
    # failing after a checkpoint was written keeps the run: it can be resumed
    with pytest.raises(RuntimeError):
        train(config_path=config, log_dir=str(tmp_path), exp_name="late", verbose=0, callbacks=[FailOnBatch(1)])
    assert (tmp_path / "late" / "save" / "ckpt-1.index").is_file() and (tmp_path / "late" / "config.yaml").is_file()


@pytest.mark.parametrize("bad", ["nan voxel", "label value 2"])
def test_bad_voxels_are_found_before_the_first_step(tmp_path, bad):
    """NaN/Inf voxels and labels outside [0, 1] used to abort (exit 134) or hang inside the input pipeline."""
    import SimpleITK as sitk

    from tests.data.helpers import write_unpaired
    from tfreg.data.errors import DataError

    data = write_unpaired(str(tmp_path / "data"), [f"s{k}" for k in range(4)], shape=(8, 8, 8), num_labels=1)
    folder = "images" if bad == "nan voxel" else "labels"
    path = os.path.join(data, folder, "s2.nii.gz")
    image = sitk.ReadImage(path, sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(image)
    array[3, 3, 3] = np.nan if bad == "nan voxel" else 2.0
    broken = sitk.GetImageFromArray(array)
    broken.CopyInformation(image)
    sitk.WriteImage(broken, path)
    config = {
        "dataset": {
            "train": {"dir": data, "format": "nifti", "labeled": True},
            "type": "unpaired",
            "image_shape": [8, 8, 8],
        },
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]},
            "loss": {"image": {"name": "ssd", "weight": 1.0}},
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-3},
            "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1},
            "epochs": 1,
            "save_period": 1,
        },
    }
    with pytest.raises(DataError, match=r"s2\.nii\.gz"):
        train(config_path=write_config(config, tmp_path / "c.yaml"), log_dir=str(tmp_path), exp_name="run", verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_deepreg_control_points_config_trains_and_restarts(tmp_path):
    """DeepReg's ``backbone.control_points`` (it passed validation and failed at build before tfreg had the head):
    a DeepReg config with it trains, and the checkpoint restores into the same B-spline model."""
    from tests.conftest import data_root
    from tfreg.layers.control_points import ControlPointBackbone

    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()} (set TFREG_TEST_DATA)")
    config = paired_config(data_root(), epochs=1)
    config["train"]["backbone"]["control_points"] = [4, 4, 2]
    path = write_config(config, tmp_path / "cp.yaml")
    model, exp = train(config_path=path, log_dir=str(tmp_path), exp_name="cp", verbose=0)
    assert isinstance(model.backbone, ControlPointBackbone)
    assert load_yaml_file(os.path.join(exp, "config.yaml"))["train"]["backbone"]["control_points"] == [4, 4, 2]
    ckpt = sorted(glob.glob(os.path.join(exp, "save", "ckpt-*.index")))[-1][: -len(".index")]
    resumed, _ = train(config_path=path, ckpt_path=ckpt, log_dir=str(tmp_path), exp_name="cp2", verbose=0, max_epochs=2)
    assert isinstance(resumed.backbone, ControlPointBackbone)
    assert [tuple(w.shape) for w in resumed.trainable_weights] == [tuple(w.shape) for w in model.trainable_weights]


def _killed_start(folder, pid, checkpoint=False, extra=None):
    """The log folder a run killed during its first epoch leaves: config.yaml, train/, save/config.yaml and the
    incomplete marker of process ``pid`` (plus a checkpoint or a foreign file when asked)."""
    import json

    from tfreg.file_safety import mark_incomplete

    marker = mark_incomplete(str(folder), "tfreg_train")
    with open(marker, encoding="utf-8") as stream:
        content = json.load(stream)
    content["pid"] = pid
    with open(marker, "w", encoding="utf-8") as stream:
        json.dump(content, stream)
    (folder / "config.yaml").write_text("train: {}\n")
    (folder / "train").mkdir()
    (folder / "train" / "events.out.tfevents.1.host").write_bytes(b"")
    (folder / "save").mkdir()
    (folder / "save" / "config.yaml").write_text("train: {}\n")
    if checkpoint:
        (folder / "save" / "ckpt-1.index").write_bytes(b"")
        (folder / "save" / "ckpt-1.data-00000-of-00001").write_bytes(b"")
    if extra:
        (folder / extra).write_text("mine\n")


def test_check_log_dir_reuses_only_a_killed_start(tmp_path):
    from tests.test_file_safety import dead_pid
    from tfreg.engine.train import check_log_dir, is_failed_start

    _killed_start(tmp_path / "killed", dead_pid())
    assert check_log_dir(str(tmp_path), "killed") == str(tmp_path / "killed")
    assert is_failed_start(str(tmp_path / "killed"))
    # the process still runs (here: this one): another run is starting there
    _killed_start(tmp_path / "running", os.getpid())
    with pytest.raises(FileExistsError, match=rf"being written by process {os.getpid()} of tfreg_train"):
        check_log_dir(str(tmp_path), "running")
    # killed after its first checkpoint (before the marker was removed): kept for resuming
    _killed_start(tmp_path / "ckpt", dead_pid(), checkpoint=True)
    with pytest.raises(FileExistsError, match=r"holds its checkpoint .*ckpt-1 \(resume with -k"):
        check_log_dir(str(tmp_path), "ckpt")
    assert not is_failed_start(str(tmp_path / "ckpt"))
    _killed_start(tmp_path / "notes", dead_pid(), extra="notes.txt")
    with pytest.raises(FileExistsError, match=r"does not write: \['notes.txt'\]"):
        check_log_dir(str(tmp_path), "notes")
    # a finished run has no marker: refused as before
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "config.yaml").write_text("train: {}\n")
    with pytest.raises(FileExistsError, match="already exists and is not empty"):
        check_log_dir(str(tmp_path), "done")


@pytest.mark.slow
def test_a_start_killed_at_its_first_step_does_not_block_a_rerun(tmp_path):
    """A run killed during its first step (kill -9, out of memory, a crash in native code) cannot clean up
    after itself; it left config.yaml and train/ behind and the same -l name was then refused."""
    import subprocess
    import sys

    from tests.conftest import data_root
    from tfreg.file_safety import INCOMPLETE_MARKER

    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()} (set TFREG_TEST_DATA)")
    config = write_config(paired_config(data_root(), epochs=1), tmp_path / "c.yaml")
    script = (
        "import os, signal, sys, keras\n"
        "from tfreg.engine.train import train\n"
        "class Kill(keras.callbacks.Callback):\n"
        "    def on_train_batch_end(self, batch, logs=None):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "train(config_path=sys.argv[1], log_dir=sys.argv[2], exp_name='run', verbose=0, callbacks=[Kill()])\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", script, config, str(tmp_path)], env=env, timeout=300)
    assert done.returncode == -9
    left = sorted(os.listdir(tmp_path / "run"))
    assert "config.yaml" in left and INCOMPLETE_MARKER in left and not glob.glob(str(tmp_path / "run/save/ckpt-*"))
    _, exp = train(config_path=config, log_dir=str(tmp_path), exp_name="run", verbose=0)
    assert sorted(os.listdir(exp)) == ["config.yaml", "save", "train", "validation"]  # the marker went with ckpt-1
    assert os.path.isfile(os.path.join(exp, "save", "ckpt-1.index"))
    # one TensorBoard file per folder: the killed run's were removed, not mixed in
    assert len(glob.glob(os.path.join(exp, "train", "events.out.tfevents.*"))) == 1


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["fit", "loop"])
def test_a_config_whose_first_step_diverges_leaves_nothing(tmp_path, trainer, monkeypatch):
    """A loss that is NaN from the first step on (tfreg's own loop and Keras' fit): the run stops with the
    divergence error and the log folder is gone, so the same -l name can be used again at once."""
    import keras

    from tests.conftest import data_root
    from tfreg.engine.divergence import TrainingDiverged
    from tfreg.registry import LOSS_CLASS, REGISTRY

    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()} (set TFREG_TEST_DATA)")

    class NanSSD(keras.losses.Loss):
        def call(self, y_true, y_pred):
            axes = tuple(range(1, len(y_pred.shape)))
            return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=axes) * float("nan")

    # the model builds its losses from the global registry (build_model passes it no other)
    REGISTRY.get(LOSS_CLASS, "ssd")  # built-ins imported first
    monkeypatch.setitem(REGISTRY._dict, (LOSS_CLASS, "nan_ssd"), NanSSD)

    config = paired_config(data_root(), epochs=1, trainer={"name": trainer})
    config["train"]["loss"]["image"] = {"name": "nan_ssd", "weight": 1.0}
    path = write_config(config, tmp_path / "c.yaml")
    with pytest.raises(TrainingDiverged, match=r"diverged at step 1 \(epoch 1\)"):
        train(config_path=path, log_dir=str(tmp_path), exp_name="run", verbose=0)
    assert not (tmp_path / "run").exists()  # nothing blocks a rerun under the same name

"""Training under ``tf.distribute`` on a CPU machine: MirroredStrategy over two logical CPU devices and
MultiWorkerMirroredStrategy over two local worker processes (the custom loop), against single-device
training of the same config.

Every run happens in a fresh subprocess (``distribute_worker.py``): logical devices and the
multi-worker cluster must be set up before TensorFlow's runtime starts, which it already has in the
pytest process. The data are synthetic NIfTI pairs with one label each, so that label sampling is
deterministic, with no shuffling and no augmentation: every run sees the same batches in the same order.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfreg.data.image_io import save_image

WORKER = Path(__file__).with_name("distribute_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
MOVING, FIXED = (16, 16, 16), (8, 8, 8)
BATCH = 2
# One global batch per epoch: the validated config cannot turn shuffling off, and Keras' fit iterates
# the dataset once more under a strategy than without (its symbolic build), so the runs see different
# shuffles; with the whole training set in one batch, a shuffle only permutes the samples inside the
# batch, which changes neither the batch mean loss nor the global BatchNormalization statistics.
NUM_TRAIN, NUM_VALID = BATCH, 2
EPOCHS = 3

CONFIG = """\
dataset:
  train:
    dir: {train}
    format: nifti
    labeled: true
  valid:
    dir: {valid}
    format: nifti
    labeled: true
  test:
    dir: {valid}
    format: nifti
    labeled: true
  type: paired
  seed: 0
  moving_image_shape: [16, 16, 16]
  fixed_image_shape: [8, 8, 8]
train:
  method: ddf
  backbone:
    name: local
    num_channel_initial: 4
    extract_levels: [0, 1, 2]
  loss:
    image:
      name: lncc
      weight: 0.1
    label:
      name: dice
      weight: 1.0
      scales: [0, 1]
    regularization:
      weight: 0.5
      name: bending
  optimizer:
    name: {optimizer}
    learning_rate: {learning_rate}
  preprocess:
    data_augmentation: null
    batch_size: {batch}
    shuffle_buffer_num_batch: 1
  epochs: {epochs}
  save_period: 1
"""


def _ball(shape, centre, radius):
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), -1)
    return (np.linalg.norm(grid - np.asarray(centre, np.float32), axis=-1) <= radius).astype(np.float32)


def write_pairs(folder: Path, names, seed: int) -> None:
    """Paired NIfTI folders: smooth-ish random images and one ball label per image, at the model's shapes."""
    rng = np.random.default_rng(seed)
    for name in names:
        for side, shape in (("moving", MOVING), ("fixed", FIXED)):
            n = shape[0]
            centre = rng.uniform(0.35 * n, 0.65 * n, size=3)
            label = _ball(shape, centre, radius=0.25 * n)
            image = 0.6 * label + 0.4 * rng.random(shape, dtype=np.float32)
            save_image(image, str(folder / f"{side}_images" / f"{name}.nii.gz"))
            save_image(label, str(folder / f"{side}_labels" / f"{name}.nii.gz"))


def write_config(
    tmp: Path,
    name: str = "config.yaml",
    batch: int = BATCH,
    epochs: int = EPOCHS,
    optimizer: str = "Adam",
    learning_rate: float = 1e-2,
) -> Path:
    """The tiny paired config over the synthetic data under ``tmp/data`` (written once)."""
    train, valid = tmp / "data" / "train", tmp / "data" / "valid"
    if not train.is_dir():
        write_pairs(train, [f"case{i:03d}" for i in range(NUM_TRAIN)], seed=1)
        write_pairs(valid, [f"case{i:03d}" for i in range(NUM_TRAIN, NUM_TRAIN + NUM_VALID)], seed=2)
    path = tmp / name
    path.write_text(
        CONFIG.format(
            train=train, valid=valid, batch=batch, epochs=epochs, optimizer=optimizer, learning_rate=learning_rate
        )
    )
    return path


def _free_ports(count: int):
    """``count`` distinct ports free on 127.0.0.1 now (the OS picks them; released for the workers to bind)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _worker_env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO_ROOT))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _run_workers(commands, envs, logs, timeout: float):
    """Start every command at once; wait for all (or the deadline); kill what is left. Returns exit codes
    (None for a worker that had to be killed)."""
    procs = []
    try:
        for command, env, log in zip(commands, envs, logs):
            with open(log, "w") as out:
                procs.append(subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            # one worker failing leaves the other blocked in a collective: stop waiting for it
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.5)
        return [p.poll() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def _epoch_scalars(folder: Path):
    """``{tag: [steps]}`` of the ``epoch_*`` summaries in the event files of ``folder``."""
    import tensorflow as tf

    tags = {}
    for path in sorted(folder.glob("events.out.tfevents*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    tags.setdefault(value.tag, []).append(event.step)
    return tags


@pytest.mark.slow  # whole training; the main CI step stays under 15 minutes
def test_multiworker_custom_loop(tmp_path, mirrored_runs):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1 train with the custom loop: the chief writes the
    run folder, the other worker writes nothing, and the all-reduced updates leave both with the same weights."""
    config = write_config(tmp_path, optimizer="Adam")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    commands, envs, logs, log_dirs, npzs = [], [], [], [], []
    for index in range(2):
        log_dirs.append(tmp_path / f"logs{index}")
        npzs.append(tmp_path / f"weights{index}.npz")
        logs.append(tmp_path / f"worker{index}.log")
        commands.append([sys.executable, str(WORKER), "multiworker", str(config), str(log_dirs[-1]), str(npzs[-1])])
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        envs.append(_worker_env(TF_CONFIG=json.dumps(tf_config)))
    codes = _run_workers(commands, envs, logs, timeout=240)
    assert codes == [0, 0], "\n".join(f"--- worker {i} (exit {c}):\n{_tail(logs[i])}" for i, c in enumerate(codes))

    chief = log_dirs[0] / "mw"
    assert (chief / "config.yaml").is_file()
    saved = sorted(p.name for p in (chief / "save").iterdir())
    assert [f"ckpt-{e}.index" for e in range(1, EPOCHS + 1)] == [n for n in saved if n.endswith(".index")]
    # the custom loop logs what Keras' TensorBoard callback logs under fit (the mirrored run), per epoch
    fit_exp = Path(mirrored_runs[0]["mirrored"]["exp_path"])
    for split in ("train", "validation"):
        scalars = _epoch_scalars(chief / split)
        assert scalars == _epoch_scalars(fit_exp / split), split
        assert "epoch_loss" in scalars and all(steps == list(range(EPOCHS)) for steps in scalars.values())
    # the other worker's checkpoints go to a scratch folder that is removed; its own log folder stays empty
    other = log_dirs[1] / "mw"
    assert not (other / "save").exists()
    assert not other.exists() or not any(other.iterdir())

    first, second = np.load(npzs[0]), np.load(npzs[1])
    assert first.files == second.files and len(first.files) > 0
    diff = max(float(np.max(np.abs(first[k] - second[k]))) for k in first.files)
    # the replicas apply the same all-reduced gradients to the same values: identical up to rounding
    assert diff <= 1e-6


def _structure(names):
    """Weight paths without Keras' auto-numbering (``conv3d_12`` -> ``conv3d``): the two runs build their
    models in one process, so the numbers differ while the structure must not."""
    import re

    return [re.sub(r"_\d+(?=/|$)", "", name) for name in names]


@pytest.fixture(scope="module")
def mirrored_runs(tmp_path_factory):
    """One subprocess (two logical CPUs): the batch-3 refusal, then the default and the mirrored run."""
    tmp = tmp_path_factory.mktemp("mirrored")
    # SGD with a large rate makes the updates proportional to the gradients (Adam would hide a gradient
    # that is wrong by a constant factor) and large enough to compare against rounding.
    config = write_config(tmp, optimizer="SGD", learning_rate=1.0)
    config_batch3 = write_config(tmp, "batch3.yaml", batch=3)
    out = tmp / "out"
    out.mkdir()
    log = tmp / "worker.log"
    command = [sys.executable, str(WORKER), "mirrored", str(config), str(config_batch3), str(out)]
    codes = _run_workers([command], [_worker_env()], [log], timeout=300)
    assert codes == [0], f"worker exit {codes[0]}:\n{_tail(log)}"
    result = json.loads((out / "result.json").read_text())
    weights = {name: np.load(out / f"{name}.npz") for name in ("initial", "default", "mirrored")}
    return result, weights


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_batch_size_not_divisible_by_replicas(mirrored_runs):
    result, _ = mirrored_runs
    assert result["batch3_error"] == (
        "train.preprocess.batch_size = 3 is not divisible by the 2 replicas of the "
        "MirroredStrategy: use a multiple of 2"
    )
    assert not result["batch3_log_dir_exists"]  # refused before anything was written


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_mirrored_fit_writes_the_run_folder(mirrored_runs):
    result, _ = mirrored_runs
    run = result["mirrored"]
    assert run["strategy"] == "MirroredStrategy" and run["replicas"] == 2
    # every BatchNormalization of the LocalNet (one per conv/deconv block) uses global-batch statistics
    assert run["synchronized_bn"] > 0 and result["default"]["synchronized_bn"] == 0
    assert run["replica_spread"] == 0.0  # the two replicas' copies of every variable agree exactly
    exp = Path(run["exp_path"])
    assert (exp / "config.yaml").is_file()
    indexes = sorted(p.name for p in (exp / "save").glob("ckpt-*.index"))
    assert indexes == [f"ckpt-{e}.index" for e in range(1, EPOCHS + 1)]
    for split in ("train", "validation"):
        assert any(p.name.startswith("events.out.tfevents") for p in (exp / split).iterdir()), split


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_mirrored_matches_single_device(mirrored_runs):
    """Two replicas of batch 1 take the same steps as one device with batch 2.

    Tolerance: float32 rounding only. The replicas sum per-replica gradients (each of the loss divided by
    2) where one device averages inside the batch, and synchronised BatchNormalization computes the
    variance as E[x^2] - E[x]^2 from all-reduced sums where one device uses two passes; over 3 steps this
    measured about 2e-7 (a few ulps of weights of order 1). 1e-5 keeps a 40x margin and still fails on
    the errors this guards against, which measured 2e-2 (BatchNormalization not synchronised, each
    replica normalising its own sample) and 6e-2 (loss not divided by the replica count: doubled steps).
    """
    result, weights = mirrored_runs
    assert _structure(result["default"]["weight_names"]) == _structure(result["mirrored"]["weight_names"])
    initial, default, mirrored = weights["initial"], weights["default"], weights["mirrored"]
    assert initial.files == default.files == mirrored.files
    trainable = [k for k, name in zip(default.files, result["default"]["weight_names"]) if "moving_" not in name]
    # the comparison means something only if training moved the weights far beyond the tolerance
    assert max(float(np.max(np.abs(default[k] - initial[k]))) for k in trainable) > 1e-2
    diff = {
        name: float(np.max(np.abs(default[k] - mirrored[k])))
        for k, name in zip(default.files, result["default"]["weight_names"])
    }
    worst = max(diff, key=diff.get)
    assert diff[worst] <= 1e-5, f"{worst}: {diff[worst]}"

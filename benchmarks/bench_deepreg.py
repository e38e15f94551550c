"""Training throughput of tfreg and DeepReg, side by side in one run (same configs, data, machine and load).

::

    bash benchmarks/deepreg_env.sh                    # once: DeepReg's released package in .venv-deepreg/
    python benchmarks/bench_deepreg.py                # both configs, 2 rounds, prints a Markdown table
    python benchmarks/bench_deepreg.py --quick        # one round, fewer epochs (a smoke run, minutes)
    python benchmarks/bench_deepreg.py --write        # also replaces its block in benchmarks/README.md

Both toolkits read **the same DeepReg YAML** (DeepReg's own config format, which tfreg reads unchanged)
and the same files. Each run is a fresh child process of that toolkit's Python (DeepReg: ``--deepreg-python``,
default ``.venv-deepreg/bin/python``, TensorFlow 2.15 with Keras 2; tfreg: this interpreter, TensorFlow 2.21
with Keras 3) calling the toolkit's own ``train()`` entry point, the code path of its ``*_train`` command.
The runs alternate (DeepReg first in even rounds, tfreg first in odd ones) so both see the same load.

DeepReg runs twice per round (``--deepreg-kernels both``): with TensorFlow's default CPU kernels, which is
what its users get (oneDNN only on CPUs with AVX-512 VNNI/BF16/AMX, so Eigen's kernels on an AVX2 AMD EPYC),
and with oneDNN forced on (``TF_ENABLE_ONEDNN_OPTS=1``), the same kernels tfreg turns on by default
(``tfreg.cpu_kernels``). The second is the like-for-like comparison of the two toolkits' code.

Configs:

- ``unpaired``: DeepReg's ``unpaired_labeled_ddf`` test config on DeepReg's unpaired NIfTI test data
  (14 images 64x64x60 with 3 labels, so 7 pairs and 3 steps of batch 2 per epoch): ``ddf``, LocalNet with
  16 initial channels and extract levels 0-3, lncc (weight 0.1) + Dice at scales 0, 1, 2, 4, 8 (1.0) +
  bending (0.5), batch 2, affine augmentation, Adam 1e-2.
- ``paired_brain``: paired 80x96x112 brain pairs (``--pairs`` pairs made by
  ``data_scripts/synthetic_pairs.py`` from VoxelMorph's ``test_scan.npz`` halved to 80x96x112, smooth random
  deformations of up to 4 voxels, cached under ``benchmarks/results/``): ``ddf``, LocalNet 16 channels,
  levels 0-3, lncc with a 9-voxel kernel + bending (weight 5), batch 1, affine augmentation, Adam 1e-4.

Timing: a Keras callback times every batch from ``on_train_batch_begin`` to ``on_train_batch_end`` (so the
wait for the input pipeline is included); the first epoch (tracing) is not timed. A run's figure is its
median s/step; the table gives the median over rounds. Peak memory is the child's ``ru_maxrss`` (the whole
process, TensorFlow included), read with ``os.wait4``.

DeepReg needs one patch to run on Python 3.10+: its config merger uses ``collections.Mapping``, which
Python 3.10 removed. The DeepReg child sets ``collections.Mapping = collections.abc.Mapping`` before
importing DeepReg; no DeepReg file is changed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # bench_train's BatchTimer (stdlib imports only at its top)

from bench_train import BatchTimer, data_root  # noqa: E402
from readme_block import write_block  # noqa: E402

DEFAULT_DEEPREG_PYTHON = REPO / ".venv-deepreg" / "bin" / "python"
BRAIN_SHAPE = (80, 96, 112)
CONFIGS = ("unpaired", "paired_brain")
DESCRIPTIONS = {
    "unpaired": "unpaired 64x64x60, labels; LocalNet-16 levels 0-3; lncc + Dice scales 0-8 + bending; batch 2",
    "paired_brain": "paired 80x96x112 brain; LocalNet-16 levels 0-3; lncc k9 + bending x5; batch 1",
}
TARGET_RATIO = 2.0
#: --deepreg-kernels choice -> side name; tfreg always runs with its own default (oneDNN on, tfreg.cpu_kernels)
SIDES = {"default": "deepreg", "onednn": "deepreg_onednn"}
SIDE_NAMES = {
    "deepreg": "DeepReg (TF default kernels)",
    "deepreg_onednn": "DeepReg (oneDNN on)",
    "tfreg_fft_off": "tfreg, FFT conv off",
    "tfreg": "tfreg",
}


def brain_pairs_dir(num_pairs: int) -> Path:
    """Writes (once) ``num_pairs`` paired 80x96x112 brain pairs in DeepReg's paired layout; returns the folder."""
    out = HERE / "results" / f"paired_brain_{'x'.join(map(str, BRAIN_SHAPE))}_{num_pairs}"
    if (out / "fixed_images").is_dir() and len(list((out / "fixed_images").iterdir())) == num_pairs:
        return out
    import numpy as np

    sys.path.insert(0, str(REPO / "data_scripts"))
    from synthetic_pairs import make_synthetic_pairs

    from tfreg.data.geometry import ImageGeometry

    scan = np.load(data_root() / "brain_scan" / "test_scan.npz")
    volume = scan["vol"][::2, ::2, ::2].astype(np.float32)  # 160x192x224 -> 80x96x112, 2 mm voxels
    if volume.shape != BRAIN_SHAPE:
        raise RuntimeError(f"test_scan.npz halved is {volume.shape}, expected {BRAIN_SHAPE}")
    geometry = ImageGeometry(spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    tmp = out.with_name(out.name + ".partial")
    make_synthetic_pairs(volume, str(tmp), num_pairs, geometry=geometry, seed=0, max_displacement=4.0)
    tmp.rename(out)  # complete or absent: a killed run leaves only the .partial folder, rewritten next time
    return out


def deepreg_config(name: str, train_dir: str, epochs: int) -> dict:
    """The config ``name`` in DeepReg 0.1's YAML layout (``dataset.dir.{train,valid,test}``)."""
    common_backbone = {"name": "local", "num_channel_initial": 16, "extract_levels": [0, 1, 2, 3]}
    if name == "unpaired":
        return {
            "dataset": {
                "dir": {"train": train_dir, "valid": None, "test": None},
                "format": "nifti",
                "type": "unpaired",
                "labeled": True,
                "image_shape": [64, 64, 60],
            },
            "train": {
                "method": "ddf",
                "backbone": common_backbone,
                "loss": {
                    "image": {"name": "lncc", "weight": 0.1},
                    "label": {"name": "dice", "weight": 1.0, "scales": [0, 1, 2, 4, 8]},
                    "regularization": {"name": "bending", "weight": 0.5},
                },
                "optimizer": {"name": "Adam", "learning_rate": 1.0e-2},
                "preprocess": {"data_augmentation": {"name": "affine"}, "batch_size": 2, "shuffle_buffer_num_batch": 1},
                "epochs": epochs,
                "save_period": epochs,
            },
        }
    if name == "paired_brain":
        return {
            "dataset": {
                "dir": {"train": train_dir, "valid": None, "test": None},
                "format": "nifti",
                "type": "paired",
                "labeled": False,
                "moving_image_shape": list(BRAIN_SHAPE),
                "fixed_image_shape": list(BRAIN_SHAPE),
            },
            "train": {
                "method": "ddf",
                "backbone": common_backbone,
                "loss": {
                    "image": {"name": "lncc", "kernel_size": 9, "weight": 1.0},
                    "label": {"name": "dice", "weight": 0.0},  # DeepReg 0.1 requires all three; weight 0 = unused
                    "regularization": {"name": "bending", "weight": 5.0},
                },
                "optimizer": {"name": "Adam", "learning_rate": 1.0e-4},
                "preprocess": {"data_augmentation": {"name": "affine"}, "batch_size": 1, "shuffle_buffer_num_batch": 1},
                "epochs": epochs,
                "save_period": epochs,
            },
        }
    raise ValueError(f"unknown config {name!r}; expected one of {CONFIGS}")


# ----------------------------------------------------------------------------------------------------------------
# Children: one training run of one toolkit, printing a JSON line.


def _child_deepreg(config_path: str, log_root: str, epochs: int) -> dict:
    import collections
    import collections.abc

    collections.Mapping = collections.abc.Mapping  # DeepReg's config merger predates Python 3.10
    import tensorflow as tf
    from deepreg.train import train

    timer = BatchTimer()
    fit = tf.keras.Model.fit

    def fit_with_timer(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=list(callbacks or []) + [timer.callback], **kwargs)

    tf.keras.Model.fit = fit_with_timer  # DeepReg's train() takes no callbacks; the rest is its CLI's path
    train(
        gpu="",
        config_path=config_path,
        gpu_allow_growth=False,
        ckpt_path="",
        log_dir="run",
        log_root=log_root,
        max_epochs=epochs,
    )
    return dict(
        timer.result(),
        tensorflow=tf.__version__,
        keras=tf.keras.__version__ if hasattr(tf.keras, "__version__") else "2",
    )


def _child_tfreg(config_path: str, log_root: str, epochs: int) -> dict:
    importlib.import_module("tfreg")  # before TensorFlow: importing tfreg picks TensorFlow's CPU kernels
    import keras
    import tensorflow as tf

    from tfreg.engine.train import train

    timer = BatchTimer()
    train(
        gpu="",
        config_path=config_path,
        exp_name="run",
        log_dir=log_root,
        max_epochs=epochs,
        verbose=0,
        callbacks=[timer.callback],
    )
    return dict(timer.result(), tensorflow=tf.__version__, keras=keras.__version__)


def run_child(side: str, python: str, config_path: str, epochs: int) -> dict:
    """Runs one training of ``side`` in a fresh process of ``python``; its result and peak RSS (MiB)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}  # each toolkit's own default
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if side == "deepreg_onednn":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    with (
        tempfile.TemporaryDirectory() as logs,
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
    ):
        command = [
            python,
            __file__,
            "--child",
            "tfreg" if side == "tfreg" else "deepreg",
            "--config-path",
            config_path,
            "--log-root",
            logs,
            "--epochs",
            str(epochs),
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env, cwd=logs)
        _, status, usage = os.wait4(proc.pid, 0)
        returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = {
        "side": side,
        "peak_mib": usage.ru_maxrss / 1024.0,
        "process_s": wall,
        "returncode": returncode,
        "load": os.getloadavg()[0],
    }
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if returncode == 0 and lines:
        result.update(json.loads(lines[-1]))
    else:
        result["error"] = (stderr.strip().splitlines() or ["no output"])[-1]
        print(f"{side} failed (exit {returncode}):\n{stderr[-3000:]}", file=sys.stderr)
    return result


# ----------------------------------------------------------------------------------------------------------------
# Parent: alternate the two toolkits and tabulate.


def _median(values):
    return statistics.median(values) if values else None


def table(results: dict, args) -> str:
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [
        f"Machine: {platform.machine()} {cpu}, {os.cpu_count()} CPU cores, shared (noisy: `uptime` load beside each "
        f"run). DeepReg {args.deepreg_version} (PyPI) on TensorFlow {args.deepreg_tf} (Keras 2); tfreg on TensorFlow "
        f"{tf.__version__} (Keras 3). {args.rounds} round(s), each run {args.epochs} epochs, the first (tracing) "
        "untimed; s/step = the median batch time of a run, then the median over rounds; peak = the child's "
        "ru_maxrss (MiB). Speed-up = DeepReg s/step / tfreg s/step.",
        "",
        "| config | toolkit | s/step | speed-up of tfreg | peak MiB | runs (s/step @ load) |",
        "|---|---|---:|---:|---:|---|",
    ]
    verdicts = []
    fmt = lambda v, spec=".2f": "-" if v is None else format(v, spec)  # noqa: E731
    for name in args.configs:
        runs = results[name]
        sides = [side for side in ("deepreg", "deepreg_onednn", "tfreg") if any(r["side"] == side for r in runs)]
        ok = {side: [r for r in runs if r["side"] == side and "error" not in r] for side in sides}
        medians = {side: _median([r["s_per_step"] for r in ok[side]]) for side in sides}
        for side in sides:
            peak = _median([r["peak_mib"] for r in ok[side]])
            detail = ", ".join(
                f"{r['s_per_step']:.2f} @ {r['load']:.1f}" if "error" not in r else "failed"
                for r in runs
                if r["side"] == side
            )
            ratio = (
                medians[side] / medians["tfreg"] if side != "tfreg" and medians[side] and medians.get("tfreg") else None
            )
            lines.append(
                f"| {DESCRIPTIONS[name]} | {SIDE_NAMES[side]} | {fmt(medians[side])} | "
                f"{fmt(ratio) + 'x' if ratio else ''} | {fmt(peak, '.0f')} | {detail} |"
            )
        for side in sides[:-1]:
            if medians[side] and medians.get("tfreg"):
                ratio = medians[side] / medians["tfreg"]
                verdicts.append(
                    f"- `{name}`: tfreg {ratio:.2f}x the throughput of {SIDE_NAMES[side]}; target >= {TARGET_RATIO}x: "
                    + ("met" if ratio >= TARGET_RATIO else "**not met**")
                )
    return "\n".join(lines + [""] + verdicts) + "\n"


def _deepreg_versions(python: str):
    code = "import importlib.metadata as m, tensorflow as tf; print(m.version('deepreg'), tf.__version__)"
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    )
    if out.returncode != 0:
        raise SystemExit(
            f"{python} cannot import DeepReg/TensorFlow (run benchmarks/deepreg_env.sh):\n{out.stderr[-800:]}"
        )
    return out.stdout.split()[-2:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, the first untimed (default 3)")
    parser.add_argument("--pairs", type=int, default=4, help="paired_brain training pairs = steps/epoch (default 4)")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 epochs (smoke run)")
    parser.add_argument("--deepreg-python", default=os.environ.get("DEEPREG_PYTHON", str(DEFAULT_DEEPREG_PYTHON)))
    parser.add_argument(
        "--deepreg-kernels",
        choices=("default", "onednn", "both"),
        default="both",
        help="DeepReg with TensorFlow's default CPU kernels (oneDNN only on AVX-512 CPUs), with oneDNN forced on "
        "(TF_ENABLE_ONEDNN_OPTS=1), or both (default)",
    )
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument("--child", choices=("deepreg", "tfreg"), help=argparse.SUPPRESS)
    parser.add_argument("--config-path", help=argparse.SUPPRESS)
    parser.add_argument("--log-root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child = _child_deepreg if args.child == "deepreg" else _child_tfreg
        print(json.dumps(child(args.config_path, args.log_root, args.epochs)))
        return 0
    if args.quick:
        args.rounds, args.epochs = 1, 2
    if not Path(args.deepreg_python).exists():
        print(
            f"DeepReg's Python not found at {args.deepreg_python}: run `bash benchmarks/deepreg_env.sh` or pass "
            "--deepreg-python",
            file=sys.stderr,
        )
        return 1
    unpaired_dir = data_root() / "deepreg_test" / "nifti" / "unpaired" / "train"
    if not unpaired_dir.is_dir() or not (data_root() / "brain_scan" / "test_scan.npz").is_file():
        print(f"data not found under {data_root()} (set TFREG_TEST_DATA)", file=sys.stderr)
        return 1
    args.deepreg_version, args.deepreg_tf = _deepreg_versions(args.deepreg_python)
    import yaml

    results = {name: [] for name in args.configs}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in args.configs:
            train_dir = unpaired_dir if name == "unpaired" else brain_pairs_dir(args.pairs)
            paths[name] = os.path.join(tmp, f"{name}.yaml")
            with open(paths[name], "w") as f:
                yaml.safe_dump(deepreg_config(name, str(train_dir), args.epochs), f)
        for round_index in range(args.rounds):
            order = ["tfreg"] + [SIDES[k] for k in SIDES if args.deepreg_kernels in (k, "both")]
            if round_index % 2 == 0:
                order.reverse()
            for name in args.configs:
                for side in order:
                    python = sys.executable if side == "tfreg" else args.deepreg_python
                    print(f"round {round_index + 1}/{args.rounds}: {name} / {side} ...", file=sys.stderr, flush=True)
                    results[name].append(dict(run_child(side, python, paths[name], args.epochs), round=round_index))
                    print(json.dumps(results[name][-1]), file=sys.stderr, flush=True)
    text = table(results, args)
    print(text)
    out = HERE / "results" / "bench_deepreg.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    if args.write:
        write_block("bench_deepreg", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput of ``tfreg_train`` and inference time at 160x192x224 (issue 4, item 6).

Run from the repository root (inside the project's environment):

    python benchmarks/bench_train.py            # prints a Markdown table
    python benchmarks/bench_train.py --write    # also replaces its block in benchmarks/README.md
    python benchmarks/bench_train.py --cases train_s8 step_s8   # a subset

Config: ``benchmarks/configs/unpaired_64x64x60.yaml``, DeepReg's ``unpaired_labeled_ddf`` test config
(unpaired NIfTI 64x64x60 with labels, ``ddf``, LocalNet 16 channels, levels 0-3, lncc 0.1 + multi-scale
Dice 1.0 at scales 0-16 + bending 0.5, batch 2, affine augmentation, Adam 1e-2) on DeepReg's unpaired test
data (``$TFREG_TEST_DATA/deepreg_test/nifti/unpaired/train``, 14 images, so 7 pairs and 3 steps per epoch).

Cases, each in a fresh Python process (its peak memory is the child's ``ru_maxrss``, read by the parent
with ``os.wait4``, so a crashed child is measured too):

- ``train``: the real :func:`tfreg.engine.train.train` (the code path of the ``tfreg_train`` CLI) on the
  config as DeepReg wrote it. A Keras callback (added by wrapping ``keras.Model.fit`` in the child,
  since ``train()`` takes no callbacks) times every batch from ``on_train_batch_begin`` to
  ``on_train_batch_end``; the batch time includes waiting for the input pipeline, because Keras pulls the
  next batch inside its train function. The first epoch (tracing) is excluded.
- ``train_s8``: the same with the overlay ``configs/unpaired_64x64x60_scales8.yaml`` (Dice scales
  0-8, without 16), which avoids a oneDNN abort of the scale-16 Gaussian (see the README).
- ``train_no_onednn``: ``train`` with ``TF_ENABLE_ONEDNN_OPTS=0`` (Eigen kernels); slow (about a minute per
  step on 2 cores), so it runs only when asked and with ``--slow-epochs`` epochs.
- ``step_s8``: the model, optimizer and loss of ``train_s8`` built as ``train()`` builds them, trained with
  ``model.fit`` on ONE augmented batch held in memory (``Dataset.from_tensors(batch).repeat()``): the
  training step without loading or augmentation.
- ``pipeline``: the training ``tf.data`` pipeline of the config alone (load, normalise, resize, shuffle,
  batch, affine augmentation), time per batch after 3 warm-up batches.
- ``infer``: a ``ddf`` model of the same family (LocalNet 16 channels, levels 0-3) for a 160x192x224 pair,
  ``model(inputs, training=False)`` (eager), median of ``--repeat`` calls after one warm-up.
- ``warp``: :func:`tfreg.ops.warp` of a 160x192x224 image by a smooth random DDF (up to about 8 voxels),
  under ``tf.function``, median of ``--repeat`` calls after one warm-up.
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

from readme_block import write_block  # benchmarks/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "unpaired_64x64x60.yaml"
OVERLAY_S8 = HERE / "configs" / "unpaired_64x64x60_scales8.yaml"
INFER_SHAPE = (160, 192, 224)

CASES = {
    "train": "`tfreg_train` (`train()`), issue config: Dice scales 0-16, oneDNN on (TF default)",
    "train_s8": "`tfreg_train` (`train()`), Dice scales 0-8 (overlay), oneDNN on",
    "train_no_onednn": "`tfreg_train` (`train()`), issue config, `TF_ENABLE_ONEDNN_OPTS=0`",
    "step_s8": "training step alone: same model/optimizer, `model.fit` on one in-memory batch",
    "pipeline": "input pipeline alone (load, normalise, shuffle, batch, affine augmentation)",
    "infer": "inference, one 160x192x224 pair: `model(inputs, training=False)`, eager",
    "warp": "warp one 160x192x224 image by its DDF (`tfreg.ops.warp`, `tf.function`)",
}
DEFAULT_CASES = ["train", "train_s8", "step_s8", "pipeline", "infer", "warp"]


def data_root() -> Path:
    return Path(os.environ.get("TFREG_TEST_DATA", REPO.parent / "shared" / "data"))


def _config_paths(tmp: str, case: str):
    """The config(s) of ``case``: the shipped YAML with ``dataset.train.dir`` made absolute, plus overlays."""
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    config["dataset"]["train"]["dir"] = str(data_root() / config["dataset"]["train"]["dir"])
    path = os.path.join(tmp, "unpaired_64x64x60.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return [path, str(OVERLAY_S8)] if case.endswith("_s8") else [path]


class BatchTimer:
    """Keras callback: wall and CPU seconds of every training batch after the first epoch."""

    def __init__(self, skip_epochs: int = 1):
        import keras

        timer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer.epoch = epoch
                timer.epoch_start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                if epoch - timer.first_epoch >= timer.skip:
                    timer.epoch_walls.append(time.perf_counter() - timer.epoch_start)

            def on_train_begin(self, logs=None):
                timer.first_epoch = None

            def on_train_batch_begin(self, batch, logs=None):
                if timer.first_epoch is None:
                    timer.first_epoch = timer.epoch
                timer.t0, timer.c0 = time.perf_counter(), time.process_time()

            def on_train_batch_end(self, batch, logs=None):
                wall, cpu = time.perf_counter() - timer.t0, time.process_time() - timer.c0
                (timer.walls if timer.epoch - timer.first_epoch >= timer.skip else timer.warmup).append(wall)
                if timer.epoch - timer.first_epoch >= timer.skip:
                    timer.cpus.append(cpu)

        self.skip = skip_epochs
        self.epoch, self.first_epoch, self.epoch_start = 0, None, 0.0
        self.walls, self.cpus, self.warmup, self.epoch_walls = [], [], [], []
        self.callback = _Callback()

    def result(self) -> dict:
        if not self.walls:
            raise RuntimeError("no timed batches: raise --epochs")
        return {
            "s_per_step": statistics.median(self.walls),
            "mean_s_per_step": statistics.mean(self.walls),
            "min_s_per_step": min(self.walls),
            "cpu_s_per_step": statistics.median(self.cpus),
            "steps": len(self.walls),
            "first_step_s": self.warmup[0] if self.warmup else None,
            "epoch_s_per_step": sum(self.epoch_walls) / len(self.walls),
        }


def _case_train(case: str, epochs: int) -> dict:
    import keras

    from tfreg.engine.train import train

    timer = BatchTimer()
    fit = keras.Model.fit

    def fit_with_timer(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=list(callbacks or []) + [timer.callback], **kwargs)

    keras.Model.fit = fit_with_timer  # train() takes no callbacks; everything else is the CLI's path
    with tempfile.TemporaryDirectory() as tmp:
        paths = _config_paths(tmp, case)
        train(
            gpu="", config_path=paths, exp_name="bench", log_dir=os.path.join(tmp, "logs"), max_epochs=epochs, verbose=0
        )
    return timer.result()


def _built(case: str, tmp: str):
    """Config, loader, compiled model and optimizer exactly as ``train()`` builds them (one device)."""
    from tfreg.config import load_configs_with_provenance, validate_config
    from tfreg.engine.build import build_loader, build_model, build_optimizer, create_variables
    from tfreg.registry import REGISTRY

    config, provenance = load_configs_with_provenance(_config_paths(tmp, case))
    config = validate_config(config, provenance, registry=REGISTRY)
    loader = build_loader(config, "train", REGISTRY, required=True)
    model = build_model(config, loader, REGISTRY)
    optimizer = build_optimizer(config)
    model.compile(optimizer=optimizer)
    create_variables(model, loader, optimizer)
    return config, loader, model


def _case_step(case: str, epochs: int) -> dict:
    import tensorflow as tf

    from tfreg.engine.build import split_dataset

    with tempfile.TemporaryDirectory() as tmp:
        config, loader, model = _built(case, tmp)
        batch_size = int(config["train"]["preprocess"]["batch_size"])
        data = split_dataset(config, loader, training=True, batch_size=batch_size, repeat=True)
        batch = {k: tf.constant(v.numpy()) for k, v in next(iter(data)).items()}
        loader.close()
        timer = BatchTimer()
        model.fit(
            tf.data.Dataset.from_tensors(batch).repeat(),
            steps_per_epoch=3,
            epochs=epochs,
            callbacks=[timer.callback],
            verbose=0,
        )
    return timer.result()


def _case_pipeline(batches: int) -> dict:
    from tfreg.engine.build import split_dataset

    with tempfile.TemporaryDirectory() as tmp:
        from tfreg.config import load_configs_with_provenance, validate_config
        from tfreg.engine.build import build_loader
        from tfreg.registry import REGISTRY

        config, provenance = load_configs_with_provenance(_config_paths(tmp, "pipeline"))
        config = validate_config(config, provenance, registry=REGISTRY)
        loader = build_loader(config, "train", REGISTRY, required=True)
        batch_size = int(config["train"]["preprocess"]["batch_size"])
        iterator = iter(split_dataset(config, loader, training=True, batch_size=batch_size, repeat=True))
        for _ in range(3):
            next(iterator)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(batches):
            next(iterator)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        loader.close()
    return {"s_per_step": wall / batches, "cpu_s_per_step": cpu / batches, "steps": batches}


def _case_infer(repeat: int) -> dict:
    import numpy as np
    import tensorflow as tf
    import yaml

    from tfreg.registry import REGISTRY

    train_config = yaml.safe_load(CONFIG.read_text())["train"]
    model = REGISTRY.build_model(
        config=dict(
            name="ddf",
            moving_image_size=INFER_SHAPE,
            fixed_image_size=INFER_SHAPE,
            index_size=2,
            labeled=False,
            batch_size=1,
            config=train_config,
        )
    )
    rng = np.random.default_rng(0)
    inputs = {
        "moving_image": tf.constant(rng.random((1, *INFER_SHAPE), dtype=np.float32)),
        "fixed_image": tf.constant(rng.random((1, *INFER_SHAPE), dtype=np.float32)),
        "indices": tf.zeros((1, 2)),
    }
    return _timed(lambda: model(inputs, training=False)["ddf"].numpy(), repeat)


def _case_warp(repeat: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from tfreg.ops.resize import resize
    from tfreg.ops.warp import warp

    rng = np.random.default_rng(0)
    image = tf.constant(rng.random((1, *INFER_SHAPE), dtype=np.float32))
    coarse = tf.constant(4.0 * rng.standard_normal((1, 5, 6, 7, 3)).astype(np.float32))
    ddf = tf.constant(resize(coarse, INFER_SHAPE).numpy())  # smooth, as a network's DDF
    g = tf.function(lambda: warp(image, ddf))
    return _timed(lambda: g().numpy(), repeat)


def _timed(fn, repeat: int) -> dict:
    """Wall seconds of one first call of ``fn`` (tracing, warm-up), then the median, minimum and median process
    CPU seconds (all threads) of ``repeat`` more calls."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {
        "s_per_step": statistics.median(times),
        "min_s_per_step": min(times),
        "cpu_s_per_step": statistics.median(cpus),
        "first_step_s": first,
        "steps": repeat,
    }


def run_case(name: str, args) -> dict:
    if name in ("train", "train_s8"):
        return _case_train(name, args.epochs)
    if name == "train_no_onednn":
        return _case_train("train", args.slow_epochs)
    if name == "step_s8":
        return _case_step(name, args.epochs)
    if name == "pipeline":
        return _case_pipeline(args.batches)
    if name == "infer":
        return _case_infer(args.repeat)
    if name == "warp":
        return _case_warp(args.repeat)
    raise ValueError(name)


def _in_subprocess(name: str, args) -> dict:
    """Runs ``name`` in a child; its result plus the child's peak RSS (``ru_maxrss``), even if it crashed."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if name == "train_no_onednn":
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    command = [
        sys.executable,
        __file__,
        "--case",
        name,
        "--epochs",
        str(args.epochs),
        "--slow-epochs",
        str(args.slow_epochs),
        "--repeat",
        str(args.repeat),
        "--batches",
        str(args.batches),
    ]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env, cwd=str(REPO))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = {"case": name, "peak_mib": usage.ru_maxrss / 1024.0, "process_s": wall, "returncode": proc.returncode}
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        result.update(json.loads(lines[-1]))
    else:
        fatal = [line for line in stderr.splitlines() if "Check failed" in line or "Error" in line]
        result["error"] = fatal[-1] if fatal else stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        print(f"case {name} failed (exit {proc.returncode}):\n{stderr[-2000:]}", file=sys.stderr)
    return result


def _fmt(value, spec=".2f", missing="-"):
    return missing if value is None else format(value, spec)


def _table(results: list, args) -> str:
    import tensorflow as tf

    by = {r["case"]: r for r in results}
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, shared with other jobs (noisy); TensorFlow "
        f"{tf.__version__}, CPU only. Training: batch 2, 3 steps per epoch, {args.epochs} epochs, the first "
        f"(tracing) not timed; s/step = median batch time (Keras callback, includes waiting for input); CPU s = "
        f"process CPU seconds per step (all threads). Inference/warp: median of {args.repeat} after one warm-up. "
        "Peak = the child process's ru_maxrss (whole process, TensorFlow included).",
        "",
        "| case | s/step | steps/s | CPU s/step | first step (s) | timed steps | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {CASES[r['case']]} | crashed (exit {r['returncode']}) | - | - | - | - | {r['peak_mib']:.0f} |"
            )
            continue
        s = r["s_per_step"]
        lines.append(
            f"| {CASES[r['case']]} | {s:.2f} | {1 / s:.2f} | {_fmt(r.get('cpu_s_per_step'))} | "
            f"{_fmt(r.get('first_step_s'), '.1f')} | {r['steps']} | {r['peak_mib']:.0f} |"
        )
    lines.append("")
    for r in results:
        if "error" in r:
            message = r["error"].strip()
            message = message[message.find("Check failed") :] if "Check failed" in message else message[-200:]
            lines.append(f"- `{r['case']}` aborted: `{message}`")
    lines.append("- DeepReg beside tfreg, measured in the same run: `bench_deepreg.py`")
    if by.get("train_s8") and by.get("step_s8") and "error" not in by["train_s8"] and "error" not in by["step_s8"]:
        share = 1 - by["step_s8"]["s_per_step"] / by["train_s8"]["s_per_step"]
        cpu_share = 1 - by["step_s8"]["cpu_s_per_step"] / by["train_s8"]["cpu_s_per_step"]
        lines.append(
            f"- input pipeline share of a `train_s8` step (1 - step alone / fed): {100 * share:.0f}% of the wall "
            f"time, {100 * cpu_share:.0f}% of the CPU time"
        )
    for name in ("train_s8", "train_no_onednn"):
        r = by.get(name)
        if r and "error" not in r and r.get("cpu_s_per_step"):
            bound = r["cpu_s_per_step"] / 2
            lines.append(
                f"- `{name}` on 2 dedicated cores would take at least CPU s / 2 = {bound:.2f} s/step (perfect "
                f"2-thread scaling; a bound, not a measurement)"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), help="run one case in this process (internal)")
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES, choices=sorted(CASES), help="cases to run")
    parser.add_argument(
        "--epochs", type=int, default=4, help="training epochs of 3 steps, the first untimed (default 4)"
    )
    parser.add_argument("--slow-epochs", type=int, default=2, help="epochs of train_no_onednn (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed inference/warp calls (default 3)")
    parser.add_argument("--batches", type=int, default=20, help="timed pipeline batches (default 20)")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    args = parser.parse_args(argv)
    if args.case:
        importlib.import_module("tfreg")  # before TensorFlow: importing tfreg picks TensorFlow's CPU kernels
        print(json.dumps(run_case(args.case, args)))
        return 0
    if not (data_root() / "deepreg_test" / "nifti" / "unpaired" / "train").is_dir():
        print(f"data not found under {data_root()} (set TFREG_TEST_DATA)", file=sys.stderr)
        return 1
    results = []
    for name in args.cases:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.append(_in_subprocess(name, args))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    table = _table(results, args)
    print(table)
    if args.write:
        write_block("bench_train", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The normalization choice of the main job's LocalNet: test Dice with ``norm`` batch, instance, group and none.

Issue 17, item 8: after the main job's short training (200 steps) BatchNormalization's moving statistics
make inference differ from training (the validation DDF reached 26 voxels against 2.7 in training at epoch
10). This script measures what each ``backbone.norm`` gives on the main job::

    python benchmarks/bench_norm.py --write                      # the four norms, seed 0 (about 40 minutes)
    python benchmarks/bench_norm.py --norms group none --seed 1 --write   # a second seed for two of them
    python benchmarks/bench_norm.py --max_epochs 1 --norms none --out /tmp/smoke.json  # a smoke run

Protocol:

1. The dataset is built once by ``demos/mni152_brain/demo_data.py`` into ``--dataset`` (default the demo's
   own git-ignored ``demos/mni152_brain/dataset``, as ``scripts/main_job.sh`` does; an existing one is used
   when its ``dataset.json`` has the requested ``--source``). ``--source brain_scan`` uses the real subject
   of ``$TFREG_TEST_DATA`` instead of nilearn's template.
2. For each norm, in its own process, one after the other: the main job's config
   (``demos/mni152_brain/mni152_brain.yaml``) with ``train.backbone.norm`` set and the dataset folders made
   absolute, nothing else changed (25 epochs of 8 steps, batch 2, Adam 1e-3). The process seeds Keras
   (``keras.utils.set_random_seed(--seed)``: the initial weights); the order of the pairs stays unseeded, as
   in the main job (its ``dataset.seed`` is unset), so two runs of one seed differ a little. It trains like
   ``tfreg_train`` (``tfreg.engine.train.train``), predicts the test split with the last checkpoint like
   ``tfreg_predict`` and scores it like the main job (``demos/mni152_brain/report.py``: binary Dice per label,
   masks > 0.5, mean over the 4 test pairs).
3. Recorded per run: the test Dice per label and their mean; at the last epoch, ``metric/ddf_max`` (training
   mode) and ``val_metric/ddf_max`` (inference mode): each batch's largest DDF component in voxels, averaged
   over the epoch's batches; the median seconds per training step (Keras' batch callbacks); the wall time;
   the load average (what ``uptime`` prints) before and after.

Results go to ``--out`` (JSON, one entry per norm and seed, merged with earlier runs, written after every
run) and, with ``--write``, into the ``bench_norm`` block of benchmarks/README.md after every run (one row
per run, and the mean per norm over seeds). ``--report`` only prints (``--write``: writes) the table of the
runs already in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence

import yaml

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
DEMO_DIR = os.path.join(REPO_ROOT, "demos", "mni152_brain")
DEMO_CONFIG = os.path.join(DEMO_DIR, "mni152_brain.yaml")
NORMS = ("batch", "instance", "group", "none")
for _path in (BENCH_DIR, REPO_ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from readme_block import write_block  # noqa: E402


# ---------------------------------------------------------------------- config and dataset
def run_config(norm: str, dataset_dir: str, base_config: str = DEMO_CONFIG) -> Dict:
    """The main job's config with ``train.backbone.norm = norm`` and the split folders under ``dataset_dir``
    (absolute), nothing else changed."""
    with open(base_config, encoding="utf-8") as stream:
        config = yaml.safe_load(stream)
    for split in ("train", "valid", "test"):
        section = config["dataset"][split]
        section["dir"] = os.path.join(os.path.abspath(dataset_dir), os.path.basename(os.path.normpath(section["dir"])))
    config["train"]["backbone"]["norm"] = norm
    return config


def ensure_dataset(dataset_dir: str, source: str) -> Dict:
    """Build the demo dataset into ``dataset_dir`` unless it exists; returns its ``dataset.json``.

    Raises:
        ValueError: an existing dataset was made from another source.
    """
    info_path = os.path.join(dataset_dir, "dataset.json")
    if not os.path.isdir(dataset_dir):
        command = [sys.executable, os.path.join(DEMO_DIR, "demo_data.py"), "--output", dataset_dir, "--source", source]
        subprocess.run(command, check=True, cwd=REPO_ROOT)
    with open(info_path, encoding="utf-8") as stream:
        info = json.load(stream)
    if info.get("source") != source:
        raise ValueError(
            f"{dataset_dir} was built from source {info.get('source')!r}, not {source!r}: give another --dataset "
            "or rebuild it with demo_data.py --overwrite"
        )
    return info


# ---------------------------------------------------------------------- one run (child process)
def result_path(work_dir: str, norm: str, seed: int) -> str:
    """Where the child writes its result entry."""
    return os.path.join(work_dir, f"{norm}_seed{seed}.json")


def last_checkpoint(save_dir: str) -> str:
    """``save_dir/ckpt-N`` for the largest N."""
    numbers = [int(m.group(1)) for m in (re.match(r"ckpt-(\d+)\.index$", n) for n in os.listdir(save_dir)) if m]
    if not numbers:
        raise FileNotFoundError(f"no checkpoint ckpt-N in {save_dir}")
    return os.path.join(save_dir, f"ckpt-{max(numbers)}")


def dice_summary(rows: List[Dict], names: Sequence[str]) -> Dict:
    """Mean Dice after registration (and before: the identity) per label name and over all (pair, label) rows."""
    labels = sorted({row["label"] for row in rows})
    out = {"after": {}, "before": {}, "pairs": len({row["pair"] for row in rows})}
    for label in labels:
        name = names[label] if label < len(names) else f"label_{label}"
        for key in ("after", "before"):
            out[key][name] = float(statistics.fmean(r[key] for r in rows if r["label"] == label))
    for key in ("after", "before"):
        out[key]["mean"] = float(statistics.fmean(r[key] for r in rows))
    return out


def run_one(norm: str, seed: int, dataset_dir: str, work_dir: str, max_epochs: int) -> Dict:
    """Train, predict and score one norm in this process (the child's job); returns the result entry."""
    import tfreg  # noqa: I001 - before Keras: it switches on TensorFlow's oneDNN CPU kernels, as tfreg_train does
    import keras
    from report import label_dice, label_names  # demos/mni152_brain/report.py

    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    del tfreg  # imported for its side effect only

    class Recorder(keras.callbacks.Callback):
        """Seconds of every training step and the logs of every epoch."""

        def __init__(self):
            super().__init__()
            self.step_s: List[float] = []
            self.epochs: List[Dict[str, float]] = []
            self._began = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self._began = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.step_s.append(time.perf_counter() - self._began)

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append({k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))})

    name = f"{norm}_seed{seed}"
    config_path = os.path.join(work_dir, f"{name}.yaml")
    with open(config_path, "w", encoding="utf-8") as stream:
        yaml.safe_dump(run_config(norm, dataset_dir), stream, sort_keys=False)
    log_dir = os.path.join(work_dir, "logs")
    keras.utils.set_random_seed(seed)
    recorder = Recorder()
    began = time.time()
    _, exp_path = train(
        config_path=config_path,
        exp_name=f"train_{name}",
        log_dir=log_dir,
        max_epochs=max_epochs,
        verbose=2,
        callbacks=[recorder],
    )
    train_s = time.time() - began
    ckpt = last_checkpoint(os.path.join(exp_path, "save"))
    predict_dir = predict(ckpt_path=ckpt, split="test", exp_name=f"predict_{name}", log_dir=log_dir, overwrite=True)
    rows = label_dice(predict_dir)
    if not rows:
        raise RuntimeError(f"no label predictions under {predict_dir}")
    last = recorder.epochs[-1]
    return {
        "norm": norm,
        "seed": seed,
        "epochs": len(recorder.epochs),
        "steps": len(recorder.step_s),
        "dice": dice_summary(rows, label_names(dataset_dir)),
        "train_ddf_max": last.get("metric/ddf_max"),
        "val_ddf_max": last.get("val_metric/ddf_max"),
        "train_ddf_min": last.get("metric/ddf_min"),
        "val_ddf_min": last.get("val_metric/ddf_min"),
        "val_ddf_max_per_epoch": [e.get("val_metric/ddf_max") for e in recorder.epochs],
        "train_ddf_max_per_epoch": [e.get("metric/ddf_max") for e in recorder.epochs],
        "s_per_step": float(statistics.median(recorder.step_s)),
        "train_s": train_s,
        "checkpoint": ckpt,
        "predict_dir": predict_dir,
    }


# ---------------------------------------------------------------------- parent: runs, results, table
def merge(results: List[Dict], entry: Dict) -> List[Dict]:
    """``results`` with ``entry`` replacing the one of the same norm and seed (sorted by norm, then seed)."""
    kept = [r for r in results if (r["norm"], r["seed"]) != (entry["norm"], entry["seed"])]
    order = {n: i for i, n in enumerate(NORMS)}
    return sorted(kept + [entry], key=lambda r: (order.get(r["norm"], len(order)), r["seed"]))


def _num(value: Optional[float], digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def peak(per_epoch: Optional[Sequence[Optional[float]]]) -> str:
    """``"<largest value> (<its epoch, from 1>)"`` of a per-epoch series, ``"-"`` without one."""
    values = [(v, i + 1) for i, v in enumerate(per_epoch or ()) if v is not None]
    if not values:
        return "-"
    value, epoch = max(values)
    return f"{value:.1f} ({epoch})"


def table(results: List[Dict], meta: Dict) -> str:
    """The README block: one row per run, then the mean test Dice per norm over its seeds."""
    labels = [k for k in results[0]["dice"]["after"] if k != "mean"] if results else []
    head = ["norm", "seed", *labels, "mean Dice", "train DDF max", "val DDF max", "val DDF max, peak (epoch)"]
    head += ["s / step", "run (min)", "load"]
    lines = [
        f"{meta['date']}, {meta['machine']}; main job `{meta['config']}` with only `train.backbone.norm` changed "
        f"({meta['steps']} steps); data `{meta['source']}` (seed {meta['data_seed']}), {meta['pairs']} test pairs; "
        "Dice = mean binary Dice over the test pairs (report.py); DDF max = last epoch's mean of each batch's "
        "largest DDF component (voxels), training mode vs validation (inference mode); peak = the largest "
        "validation value over the epochs; load = 1/5/15-minute load average before -> after.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 2 + "---:|" * (len(head) - 2),
    ]
    before = results[0]["dice"]["before"] if results else {}
    lines.append(
        "| identity (no registration) | - | "
        + " | ".join(_num(before.get(k), 3) for k in labels)
        + f" | {_num(before.get('mean'), 3)} | - | - | - | - | - | - |"
    )
    for r in results:
        load = f"{'/'.join(f'{x:.1f}' for x in r['load_before'])} -> {'/'.join(f'{x:.1f}' for x in r['load_after'])}"
        lines.append(
            f"| {r['norm']} | {r['seed']} | "
            + " | ".join(_num(r["dice"]["after"][k], 3) for k in labels)
            + f" | **{_num(r['dice']['after']['mean'], 3)}** | {_num(r['train_ddf_max'], 2)} | "
            f"{_num(r['val_ddf_max'], 2)} | {peak(r.get('val_ddf_max_per_epoch'))} | {_num(r['s_per_step'], 2)} | "
            f"{r['wall_s'] / 60:.1f} | {load} |"
        )
    norms = [n for n in NORMS if sum(r["norm"] == n for r in results) > 1]
    if norms:
        lines += ["", "Mean over seeds (several seeds only):", "", "| norm | seeds | mean Dice | spread (max - min) |"]
        lines.append("|---|---|---:|---:|")
        for norm in norms:
            values = [r["dice"]["after"]["mean"] for r in results if r["norm"] == norm]
            seeds = ", ".join(str(r["seed"]) for r in results if r["norm"] == norm)
            lines.append(f"| {norm} | {seeds} | {statistics.fmean(values):.3f} | {max(values) - min(values):.3f} |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            names = [line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores (shared)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--norms", nargs="+", default=list(NORMS), choices=NORMS)
    parser.add_argument("--seed", type=int, default=0, help="Keras seed of every run (the initial weights)")
    parser.add_argument("--source", default="nilearn", choices=("nilearn", "brain_scan"), help="demo_data.py --source")
    parser.add_argument("--dataset", default=os.path.join(DEMO_DIR, "dataset"), help="dataset folder")
    parser.add_argument("--work", default=os.path.join(BENCH_DIR, "results", "bench_norm"), help="runs' folder")
    parser.add_argument("--out", default=os.path.join(BENCH_DIR, "results", "bench_norm.json"))
    parser.add_argument("--max_epochs", type=int, default=-1, help="> 0: fewer epochs (a smoke run only)")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument("--report", action="store_true", help="no runs: the table of the runs already in --out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    dataset_dir, work_dir = os.path.abspath(args.dataset), os.path.abspath(args.work)

    if args.child:  # one norm, in its own process; the parent reads the entry from its file
        entry = run_one(args.norms[0], args.seed, dataset_dir, work_dir, args.max_epochs)
        with open(result_path(work_dir, args.norms[0], args.seed), "w", encoding="utf-8") as stream:
            json.dump(entry, stream)
        return 0

    results: List[Dict] = []
    meta: Dict = {}
    if os.path.isfile(args.out):
        with open(args.out, encoding="utf-8") as stream:
            stored = json.load(stream)
        results, meta = stored["runs"], stored["meta"]
    if args.report:
        if not results:
            print(f"[bench_norm] no runs in {args.out}", file=sys.stderr)
            return 1
        return show(results, meta, args.write)
    os.makedirs(work_dir, exist_ok=True)
    info = ensure_dataset(dataset_dir, args.source)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, DEMO_DIR, os.environ.get("PYTHONPATH", "")]))
    for norm in args.norms:
        log_path = os.path.join(work_dir, f"{norm}_seed{args.seed}.log")
        entry_path = result_path(work_dir, norm, args.seed)
        if os.path.exists(entry_path):
            os.remove(entry_path)  # an earlier run's: only this run's may be read
        command = [sys.executable, os.path.abspath(__file__), "--child", "--norms", norm, "--seed", str(args.seed)]
        command += ["--dataset", dataset_dir, "--work", work_dir, "--max_epochs", str(args.max_epochs)]
        load_before, began = list(os.getloadavg()), time.time()
        print(f"[bench_norm] {norm} seed {args.seed}: training (log {log_path}), load {load_before}", flush=True)
        with open(log_path, "w", encoding="utf-8") as log:  # the training's progress, live
            proc = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wall_s, load_after = time.time() - began, list(os.getloadavg())
        if proc.returncode != 0 or not os.path.isfile(entry_path):
            print(f"[bench_norm] {norm} failed (exit {proc.returncode}); see {log_path}", file=sys.stderr)
            return 1
        with open(entry_path, encoding="utf-8") as stream:
            entry = json.load(stream)
        entry.update(wall_s=wall_s, load_before=load_before, load_after=load_after, max_epochs=args.max_epochs)
        results = merge(results, entry)
        meta = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "config": os.path.relpath(DEMO_CONFIG, REPO_ROOT),
            "source": info.get("source"),
            "data_seed": info.get("seed"),
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as stream:
            json.dump({"meta": meta, "runs": results}, stream, indent=1)
        print(
            f"[bench_norm] {norm} seed {args.seed}: mean Dice {entry['dice']['after']['mean']:.3f} "
            f"(per label {entry['dice']['after']}), DDF max train {entry['train_ddf_max']} / val "
            f"{entry['val_ddf_max']}, {entry['s_per_step']:.2f} s/step, {wall_s / 60:.1f} min, load {load_after}",
            flush=True,
        )
        if args.write:  # after every run: an interrupted benchmark keeps what it measured
            show(results, meta, args.write)
    return show(results, meta, args.write)


def show(results: List[Dict], meta: Dict, write: bool) -> int:
    """Print the table of ``results`` (and write it into benchmarks/README.md when ``write``)."""
    text = table(results, dict(meta, steps=results[-1]["steps"], pairs=results[-1]["dice"]["pairs"]))
    print(text)
    if write:
        write_block("bench_norm", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

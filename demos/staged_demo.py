"""What the segmentation-guided demos share: their folders, multi-stage training runs, checkpoints, summaries.

The WSSAMNet / WSSAMNet++ demos (``oasis_wssamnet_pp``, ``abdomen_ctmr_wssamnet_pp``, ``brats_reg_wssamnet``)
train in stages: a segmenter or a self-supervised pre-training first, then the registration network
that starts from its weights (``train.init_from``). Each stage is one ``tfreg.engine.train.train`` call
with DeepReg's demo arguments, ``log_dir=<demo folder>`` and ``exp_name=logs_train/<timestamp>/<stage>``,
and its config is ``config/<paper set-up>.yaml`` merged with the demo's YAML (data folders, sizes,
epochs) and a generated override (the data folder when the demo runs elsewhere, the previous stage's
checkpoint, and the ``--test`` sizes). The override is kept beside the stage,
``logs_train/<timestamp>/<stage>.override.yaml``, so every run can be repeated with ``tfreg_train``.

Demo folder (``--dir``, default ``demos/<name>``)::

    <dir>/dataset_source/   the release as downloaded (or written by ``demo_data.py --synthetic``)
    <dir>/dataset/          DeepReg's layout, written by the data_scripts converter
    <dir>/logs_train/<timestamp>/<stage>/      one training run per stage (save/ckpt-N)
    <dir>/logs_predict/<timestamp>/<split>/    predictions and metrics.csv
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import os
import re
import shutil
import sys
from datetime import datetime
from typing import Dict, List, Optional, Sequence

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

#: how --test shrinks every stage: one epoch, two samples per batch, tiny volumes (multiples of 8, so
#: that the 4-level segmenters' three down-samplings divide them)
TEST_EPOCHS = 1
TEST_SHAPE = (16, 16, 16)


def predict_parser(
    name: str, description: str, splits: Sequence[str] = ("train", "valid", "test"), default_split: str = "test"
) -> argparse.ArgumentParser:
    """The options every demo's ``demo_predict.py`` shares: ``--test``, ``-k/--ckpt_path``, ``--split``, ``--dir``
    and ``-g/--gpu``; a demo adds its own before parsing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--test", action="store_true", help="use the newest demo_train.py --test run")
    parser.add_argument("-k", "--ckpt_path", default=None, help="checkpoint (default: the newest run's last)")
    parser.add_argument("--split", default=default_split, choices=tuple(splits))
    parser.add_argument("--dir", default=None, help=f"demo folder (default demos/{name})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    return parser


def demo_dir(name: str, directory: Optional[str] = None) -> str:
    """The demo's working folder: ``directory`` or ``<repo>/demos/<name>`` (absolute)."""
    return os.path.abspath(directory) if directory else os.path.join(REPO_ROOT, "demos", name)


def portable_path(path: str) -> str:
    """``path`` relative to the repository root when it lies inside it (configs stay movable), else absolute."""
    path = os.path.abspath(path)
    inside = os.path.commonpath([path, REPO_ROOT]) == REPO_ROOT
    return os.path.relpath(path, REPO_ROOT) if inside else path


def timestamp() -> str:
    """DeepReg's experiment name: ``YYYYmmdd-HHMMSS``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def repo_config(name: str) -> str:
    """``<repo>/config/<name>`` (the paper set-ups), checked to exist."""
    path = os.path.join(REPO_ROOT, "config", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} is missing from the repository")
    return path


def split_dirs(dataset: str, splits: Sequence[str], labeled: bool) -> Dict[str, dict]:
    """``dataset.<split>`` entries for the splits present under ``dataset`` (nifti)."""
    entries = {}
    for split in splits:
        folder = os.path.join(dataset, split)
        if os.path.isdir(folder):
            entries[split] = {"dir": portable_path(folder), "format": "nifti", "labeled": labeled}
    return entries


def require_dataset(dataset: str, name: str, splits: Sequence[str] = ("train",)) -> None:
    """SystemExit naming the missing folder and the command that writes it."""
    for split in splits:
        if not os.path.isdir(os.path.join(dataset, split)):
            sys.exit(
                f"{os.path.join(dataset, split)} is missing: run python demos/{name}/demo_data.py first "
                "(--synthetic writes a tiny synthetic dataset)"
            )


def network_available(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (no data is sent)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def data_parser(
    doc: str, name: str, source_help: str, cases: int, cases_help: str, shape: Sequence[int], seed_help: str
) -> argparse.ArgumentParser:
    """The command line every ``demo_data.py`` shares: ``--dir``, ``--source`` or ``--synthetic``,
    ``--cases``, ``--shape`` (as many sizes as ``shape``: 3 for volumes, 2 for X-rays), ``--seed``,
    ``--overwrite`` (the release-specific texts and defaults given)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help=f"demo folder (default demos/{name})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--source", default=None, help=source_help)
    group.add_argument("--synthetic", action="store_true", help="write and convert a tiny synthetic release")
    parser.add_argument("--cases", type=int, default=cases, help=f"--synthetic: {cases_help} (default %(default)s)")
    parser.add_argument(
        "--shape", type=int, nargs=len(shape), default=list(shape), help="--synthetic: voxels (pixels for 2-D releases)"
    )
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset/")
    return parser


def clear_dataset(dataset: str, overwrite: bool) -> None:
    """Remove an existing converted ``dataset`` with ``overwrite``; FileExistsError naming --overwrite otherwise."""
    import shutil

    if os.path.lexists(dataset) and (not os.path.isdir(dataset) or os.listdir(dataset)):
        if not overwrite:
            raise FileExistsError(f"{dataset} already exists: pass --overwrite to rebuild it")
        shutil.rmtree(dataset)


def run_stage(
    stage: str,
    configs: Sequence[str],
    override: dict,
    log_dir: str,
    run_name: str,
    max_epochs: int = -1,
    gpu: Optional[str] = None,
) -> str:
    """Train one stage; returns its experiment folder ``<log_dir>/logs_train/<run_name>/<stage>``.

    ``override`` is written to ``<log_dir>/logs_train/<run_name>/<stage>.override.yaml`` and merged last.
    """
    from tfreg.engine.train import train

    run_root = os.path.join(log_dir, "logs_train", run_name)
    os.makedirs(run_root, exist_ok=True)
    override_path = os.path.join(run_root, f"{stage}.override.yaml")
    with open(override_path, "w", encoding="utf-8") as stream:
        stream.write(f"# generated by the demo for stage '{stage}'; merged after: {', '.join(configs)}\n")
        yaml.safe_dump(override, stream, sort_keys=False)
    print(f"[demo] stage {stage}: tfreg_train -c {' '.join(portable_path(c) for c in configs)} {override_path}")
    _, exp = train(
        gpu=gpu,
        config_path=[*configs, override_path],
        gpu_allow_growth=True,
        ckpt_path="",
        log_dir=log_dir,
        exp_name=f"logs_train/{run_name}/{stage}",
        max_epochs=max_epochs,
    )
    return exp


def checkpoint_numbers(save_dir: str) -> List[int]:
    """The ``N`` of every ``ckpt-N*`` file in ``save_dir`` (empty when the folder is missing)."""
    if not os.path.isdir(save_dir):
        return []
    matches = (re.match(r"ckpt-(\d+)", name) for name in os.listdir(save_dir))
    return sorted({int(m.group(1)) for m in matches if m})


def last_checkpoint(stage_dir: str) -> str:
    """``<stage_dir>/save/ckpt-<largest N>``; FileNotFoundError when the stage saved none."""
    numbers = checkpoint_numbers(os.path.join(stage_dir, "save"))
    if not numbers:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(stage_dir, 'save')}")
    return os.path.join(stage_dir, "save", f"ckpt-{numbers[-1]}")


def run_name(test: bool) -> str:
    """A training run's folder name: the timestamp, with ``-test`` for ``--test`` runs (kept apart from full runs)."""
    return timestamp() + ("-test" if test else "")


def latest_stage_checkpoint(log_dir: str, stage: str, name: str, test: bool = False) -> str:
    """The last checkpoint of ``stage`` in the newest ``<log_dir>/logs_train/<run>`` that has one.

    ``test`` selects the ``--test`` runs (``<timestamp>-test``), otherwise the full runs.
    """
    runs = [r for r in glob.glob(os.path.join(log_dir, "logs_train", "*")) if r.endswith("-test") == test]
    for run in sorted(runs, reverse=True):
        if checkpoint_numbers(os.path.join(run, stage, "save")):
            return last_checkpoint(os.path.join(run, stage))
    kind = "--test " if test else ""
    raise FileNotFoundError(
        f"no {kind}run with a {stage} checkpoint under {os.path.join(log_dir, 'logs_train')}: "
        f"run python demos/{name}/demo_train.py {kind}first"
    )


def predict_split(
    ckpt_path: str,
    split: str,
    log_dir: str,
    gpu: Optional[str] = None,
    full_resolution: bool = False,
    suffix: str = "",
) -> str:
    """``tfreg.engine.predict.predict`` as DeepReg's demos call it; returns
    ``<log_dir>/logs_predict/<ts><suffix>/<split>``. ``full_resolution``: the field applied and scored at the
    files' own size (``--full_resolution``); ``suffix`` names the run (e.g. the method it predicts with)."""
    from tfreg.engine.predict import predict

    return predict(
        gpu=gpu,
        gpu_allow_growth=True,
        ckpt_path=ckpt_path,
        split=split,
        batch_size=1,
        exp_name=f"logs_predict/{timestamp()}{suffix}",
        config_path=None,  # the training run's saved config
        save_nifti=True,
        save_png=False,
        log_dir=log_dir,
        full_resolution=full_resolution,
    )


def column_means(metrics_csv: str, columns: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """``{column: {"mean", "median", "count"}}`` over the rows of ``metrics.csv`` with a finite value.

    Columns absent from the file are left out.
    """
    with open(metrics_csv, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    summary = {}
    for column in columns:
        values = []
        for row in rows:
            try:
                value = float(row.get(column, ""))
            except ValueError:
                continue
            if math.isfinite(value):
                values.append(value)
        if values:
            ordered = sorted(values)
            mid = len(ordered) // 2
            median = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
            summary[column] = {"mean": sum(values) / len(values), "median": median, "count": len(values)}
    return summary


def print_summary(title: str, summary: Dict[str, Dict[str, float]]) -> None:
    print(f"[demo] {title}")
    for column, stats in summary.items():
        print(f"[demo]   {column:<28} mean {stats['mean']:.4f}  median {stats['median']:.4f}  (n={stats['count']})")


#: where Learn2Reg's AbdomenMRCT release is downloaded from (its AbdomenMRCT entry)
LEARN2REG_DATASETS = "https://learn2reg.grand-challenge.org/Datasets/"


def abdomen_mrct_source(folder: str, args) -> Optional[str]:
    """The AbdomenMRCT release folder of a demo: a tiny synthetic one written now (``args.synthetic``, with
    ``args.cases``, ``args.shape``, ``args.seed``), ``args.source``, or ``<folder>/dataset_source/AbdomenMRCT``;
    None (after printing the download steps) when that folder is missing."""
    from data_scripts import synthetic_releases

    if args.synthetic:
        source = os.path.join(folder, "dataset_source", "AbdomenMRCT-synthetic")
        shutil.rmtree(source, ignore_errors=True)
        synthetic_releases.write_release("abdomen-mrct", source, args.cases, args.shape, args.seed)
        return source
    source = args.source or os.path.join(folder, "dataset_source", "AbdomenMRCT")
    if not os.path.isdir(source):
        print(
            f"[demo_data] {source} is missing. Download AbdomenMRCT.zip from the AbdomenMRCT entry of "
            f"{LEARN2REG_DATASETS}, then:\n  unzip AbdomenMRCT.zip -d {os.path.dirname(source)}\nand rerun this script "
            "(or pass --source, or --synthetic for a tiny synthetic release).",
            file=sys.stderr,
        )
        return None
    return source

"""Dice before and after registration, from a ``tfreg_predict`` output folder of the MNI152 brain demo.

Reads every ``<predict dir>/test/pair_*/label_*/{moving_label,fixed_label,pred_fixed_label}.nii.gz``
(what ``tfreg_predict --split test`` writes) and reports, per label channel and overall, the mean binary
Dice (``tfreg.metrics.dice``, masks thresholded at > 0.5) of

- before: the moving label against the fixed label, i.e. the identity transform;
- after: the warped moving label (``pred_fixed_label``) against the fixed label.

::

    python demos/mni152_brain/report.py demos/mni152_brain/logs/<predict experiment>

Label names come from the dataset's ``dataset.json`` (written by ``demo_data.py``) when it is found.
Exits with status 1 when the folder holds no label predictions.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from tfreg.data.image_io import read_image  # noqa: E402
from tfreg.metrics import dice  # noqa: E402

FILES = ("moving_label", "fixed_label", "pred_fixed_label")


def _index(path: str, prefix: str) -> int:
    """The number in a ``<prefix>_<n>`` folder name (sorting pair_10 after pair_9)."""
    match = re.search(rf"{prefix}_(\d+)$", os.path.basename(os.path.normpath(path)))
    return int(match.group(1)) if match else -1


def label_dice(predict_dir: str, split: str = "test") -> List[Dict]:
    """One row per (pair, label) folder: ``pair``, ``label``, ``before`` and ``after`` Dice in [0, 1].

    Args:
        predict_dir: the predict experiment folder (``<log_dir>/<exp_name>``) or its ``<split>/`` folder.
        split: the sub-folder predict wrote into.
    """
    root = predict_dir
    if not glob.glob(os.path.join(root, "pair_*")) and os.path.isdir(os.path.join(root, split)):
        root = os.path.join(root, split)
    rows = []
    for pair_dir in sorted(glob.glob(os.path.join(root, "pair_*")), key=lambda p: _index(p, "pair")):
        for label_dir in sorted(glob.glob(os.path.join(pair_dir, "label_*")), key=lambda p: _index(p, "label")):
            paths = [os.path.join(label_dir, name + ".nii.gz") for name in FILES]
            if not all(os.path.isfile(p) for p in paths):
                continue
            moving, fixed, pred = (read_image(p)[0] for p in paths)
            rows.append(
                {
                    "pair": os.path.basename(pair_dir),
                    "label": _index(label_dir, "label"),
                    "before": dice(moving, fixed),
                    "after": dice(pred, fixed),
                }
            )
    return rows


def label_names(dataset_dir: Optional[str] = None) -> Sequence[str]:
    """Label channel names from ``dataset.json`` (empty when it cannot be read)."""
    path = os.path.join(dataset_dir or os.path.join(DEMO_DIR, "dataset"), "dataset.json")
    try:
        with open(path, encoding="utf-8") as stream:
            return list(json.load(stream).get("labels", []))
    except (OSError, ValueError):
        return []


def summarize(rows: List[Dict], names: Sequence[str] = ()) -> str:
    """A table of mean Dice before/after per label channel and overall."""
    lines = [f"{'label':<16}{'pairs':>6}{'Dice before':>13}{'Dice after':>12}"]
    for label in sorted({row["label"] for row in rows}):
        sel = [row for row in rows if row["label"] == label]
        name = names[label] if 0 <= label < len(names) else f"label_{label}"
        lines.append(
            f"{name:<16}{len(sel):>6}{np.mean([r['before'] for r in sel]):>13.3f}"
            f"{np.mean([r['after'] for r in sel]):>12.3f}"
        )
    lines.append(
        f"{'mean':<16}{len(rows):>6}{np.mean([r['before'] for r in rows]):>13.3f}"
        f"{np.mean([r['after'] for r in rows]):>12.3f}"
    )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predict_dir", help="tfreg_predict's <log_dir>/<exp_name> (or its test/ folder)")
    parser.add_argument("--split", default="test", help="the split predict was run on (default: %(default)s)")
    parser.add_argument("--dataset", default=None, help="dataset folder, for the label names")
    args = parser.parse_args(argv)
    rows = label_dice(args.predict_dir, args.split)
    if not rows:
        print(f"[report] no pair_*/label_*/{{{','.join(FILES)}}}.nii.gz under {args.predict_dir}", file=sys.stderr)
        return 1
    print(f"[report] binary Dice of {len(rows)} test (pair, label) predictions in {args.predict_dir}")
    print("[report] before = moving vs fixed label (identity); after = warped moving vs fixed label")
    print(summarize(rows, label_names(args.dataset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Inputs of ``tfreg_evaluate``: which files make up each registered pair.

:class:`PairSpec` (and :class:`LabelFiles`) describe one pair's files; they are built from a prediction
folder written by ``tfreg_predict`` (:func:`pairs_from_prediction_dir`), from a pairs CSV
(:func:`pairs_from_csv`, columns :data:`PAIR_CSV_COLUMNS`), or directly. :func:`read_landmarks` reads
landmark files (plain, BraTS ``Landmark,X,Y,Z`` or whitespace-separated; mm; defined in
:mod:`tfreg.data.landmarks`, re-exported here). NumPy only.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field, fields
from typing import List, Optional, Sequence, Tuple

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.landmarks import (
    PREDICTED_LANDMARK_FILES,
    read_landmarks,  # noqa: F401  (re-exported: tfreg_evaluate's reader)
)

#: Columns a pairs CSV may have; ``pair`` is required, every other cell may be empty.
PAIR_CSV_COLUMNS = (
    "pair",
    "fixed_label",
    "warped_label",
    "moving_label",
    "ddf",
    "fixed_image",
    "warped_image",
    "moving_image",
    "fixed_landmarks",
    "warped_landmarks",
    "moving_landmarks",
)
_NIFTI = (".nii.gz", ".nii")


def natural_key(text: str):
    """Sort key ordering embedded numbers numerically: ``pair_2`` before ``pair_10``."""
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok) for tok in re.split(r"(\d+)", str(text)) if tok]


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class LabelFiles:
    """One label of a pair given as separate binary masks (the prediction-folder layout).

    Each file holds one mask ``(*spatial)``; voxels ``>= 0.5`` are foreground (DeepReg's rule, the one
    of ``tfreg_predict``'s CSVs: :mod:`tfreg.label_threshold`).

    Attributes:
        label: the label's name in the output (``k`` of ``label_<k>``).
        fixed: fixed label file (the reference).
        warped: the moving label warped onto the fixed grid (``pred_fixed_label``).
        moving: optional unregistered moving label, for the ``_before`` columns.
    """

    label: str
    fixed: str
    warped: str
    moving: Optional[str] = None


@dataclass
class PairSpec:
    """The files of one registered pair; every path is optional except as noted.

    Label maps (``fixed_label``, ``warped_label``, ``moving_label``) are integer label maps evaluated
    per label value (0 is background), binary masks (fractional values in [0, 1], foreground ``>= 0.5``, label
    ``1``), or one-hot files ``(*spatial, n)`` (channel c is label ``c``). ``label_files`` gives labels
    as separate binary masks instead (prediction folders); a pair uses one form or the other.

    Attributes:
        pair: the pair's name in the output.
        fixed_label, warped_label: needed together; shape and spacing must agree.
        moving_label: optional, for the ``_before`` metrics; resampled onto the fixed grid through
            physical space (nearest neighbour) when its grid differs.
        label_files: per-label binary mask files, see :class:`LabelFiles`.
        ddf: dense displacement field ``(*fixed_spatial, ndim)`` on the fixed grid.
        fixed_image, warped_image: needed together, for MI and SSIM.
        moving_image: optional, for ``mi_before``/``ssim_before`` (resampled linearly when needed).
        fixed_landmarks, warped_landmarks: needed together: corresponding points in mm, one per row.
        moving_landmarks: optional, the points before registration (``tre_*_before``, robustness).
    """

    pair: str
    fixed_label: Optional[str] = None
    warped_label: Optional[str] = None
    moving_label: Optional[str] = None
    label_files: List[LabelFiles] = field(default_factory=list)
    ddf: Optional[str] = None
    fixed_image: Optional[str] = None
    warped_image: Optional[str] = None
    moving_image: Optional[str] = None
    fixed_landmarks: Optional[str] = None
    warped_landmarks: Optional[str] = None
    moving_landmarks: Optional[str] = None

    def files(self) -> List[Tuple[str, str]]:
        """``(role, path)`` of every file given, in a fixed order (roles as the attribute names)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "label_files":
                for lf in value:
                    for role in ("fixed", "warped", "moving"):
                        path = getattr(lf, role)
                        if path:
                            out.append((f"label {lf.label} {role}_label", path))
            elif f.name != "pair" and value:
                out.append((f.name, value))
        return out

    def validate(self) -> None:
        """Raise ``ValueError`` naming the pair when files that only make sense together are incomplete."""
        who = f"pair {self.pair!r}"
        if not str(self.pair).strip():
            raise ValueError("every pair needs a non-empty name (the 'pair' field)")
        for group, needed in (
            ("label", ("fixed_label", "warped_label")),
            ("image", ("fixed_image", "warped_image")),
            ("landmarks", ("fixed_landmarks", "warped_landmarks")),
        ):
            given = [n for n in needed if getattr(self, n)]
            if len(given) == 1:
                missing = (set(needed) - set(given)).pop()
                raise ValueError(f"{who}: {given[0]} is given but {missing} is not; they are needed together")
            optional = f"moving_{group}"
            if getattr(self, optional) and not given:
                raise ValueError(f"{who}: {optional} is given without {needed[0]} and {needed[1]}")
        if self.label_files and self.fixed_label:
            raise ValueError(f"{who}: give labels either as label maps (fixed_label/warped_label) or as label_files")
        if not self.files():
            raise ValueError(f"{who}: no files given, nothing to evaluate")


def pairs_from_prediction_dir(path: str, labels: Optional[Sequence[str]] = None) -> List[PairSpec]:
    """The pairs of a ``tfreg_predict`` (or ``deepreg_predict``) output folder.

    Layout (DeepReg's, see docs/evaluation.md): ``<path>/pair_<id>/`` with ``fixed_image``,
    ``moving_image``, ``pred_fixed_image``, ``ddf`` (``.nii.gz`` or ``.nii``, each optional) and, per
    label, ``label_<k>/{fixed_label, pred_fixed_label[, moving_label]}``. Label files lying directly in
    the pair folder (no ``label_<k>``) are taken as label ``0``. ``tfreg_predict``'s landmark files
    (:data:`tfreg.data.landmarks.PREDICTED_LANDMARK_FILES`, mm in the moving image's frame) become the
    pair's landmarks: the moving landmarks are the reference (``fixed_landmarks`` of :class:`PairSpec`),
    the fixed landmarks moved through the DDF the registered points (``warped_landmarks``) and the fixed
    landmarks unmoved the points before registration (``moving_landmarks``), because the DDF maps fixed
    points into the moving image. Other files (metrics.csv, PNGs, dvf, affine.txt) are ignored.

    Args:
        path: the folder (``<log_dir>/<exp_name>/test`` for a DeepReg run, or its parent holding ``test/``).
        labels: only these ``k`` (strings); None: all.

    Returns:
        One :class:`PairSpec` per ``pair_*`` folder, in natural order of the folder names.

    Raises:
        DataNotFoundError: the folder is missing or holds no ``pair_*`` folder; DataError: a label
        folder lacks its fixed or predicted label.
    """
    if not os.path.isdir(path):
        raise DataNotFoundError(f"prediction folder {path} does not exist")
    names = [n for n in os.listdir(path) if n.startswith("pair_") and os.path.isdir(os.path.join(path, n))]
    if not names and os.path.isdir(os.path.join(path, "test")):
        return pairs_from_prediction_dir(os.path.join(path, "test"), labels)  # DeepReg's <exp>/test/
    if not names:
        raise DataNotFoundError(
            f"prediction folder {path} holds no pair_<id> folders; expected the layout tfreg_predict writes "
            "(<dir>/pair_<id>/fixed_image.nii.gz, ..., pair_<id>/label_<k>/fixed_label.nii.gz)"
        )
    wanted = None if labels is None else {str(k) for k in labels}
    pairs = []
    for name in sorted(names, key=natural_key):
        folder = os.path.join(path, name)
        spec = PairSpec(
            pair=name,
            fixed_image=_find_nifti(folder, "fixed_image"),
            warped_image=_find_nifti(folder, "pred_fixed_image"),
            moving_image=_find_nifti(folder, "moving_image"),
            ddf=_find_nifti(folder, "ddf"),
        )
        if spec.fixed_image is None or spec.warped_image is None:
            spec.fixed_image = spec.warped_image = spec.moving_image = None  # MI/SSIM need both
        landmarks = {
            key: os.path.join(folder, name)
            for key, name in PREDICTED_LANDMARK_FILES.items()
            if os.path.isfile(os.path.join(folder, name))
        }
        if "moving" in landmarks and "pred_moving" in landmarks:
            spec.fixed_landmarks, spec.warped_landmarks = landmarks["moving"], landmarks["pred_moving"]
            spec.moving_landmarks = landmarks.get("fixed")
        label_dirs = [
            d for d in os.listdir(folder) if re.fullmatch(r"label_\d+", d) and os.path.isdir(os.path.join(folder, d))
        ]
        label_folders = [(d[len("label_") :], os.path.join(folder, d)) for d in sorted(label_dirs, key=natural_key)]
        if not label_folders and _find_nifti(folder, "fixed_label"):
            label_folders = [("0", folder)]
        for k, label_folder in label_folders:
            if wanted is not None and k not in wanted:
                continue
            fixed = _find_nifti(label_folder, "fixed_label")
            warped = _find_nifti(label_folder, "pred_fixed_label")
            for role, found in (("fixed_label", fixed), ("pred_fixed_label", warped)):
                if found is None:
                    raise DataError(f"label folder {label_folder} has no {role}.nii.gz (or .nii)")
            spec.label_files.append(LabelFiles(k, fixed, warped, _find_nifti(label_folder, "moving_label")))
        if not spec.files():
            raise DataError(
                f"pair folder {folder} holds no NIfTI file to evaluate (was the prediction run without NIfTI output?)"
            )
        pairs.append(spec)
    return pairs


def _find_nifti(folder: str, stem: str) -> Optional[str]:
    for suffix in _NIFTI:
        candidate = os.path.join(folder, stem + suffix)
        if os.path.isfile(candidate):
            return candidate
    return None


def pairs_from_csv(path: str) -> List[PairSpec]:
    """The pairs listed in a CSV file, one row per pair.

    The header must name ``pair`` and any of the other :data:`PAIR_CSV_COLUMNS` (in any order); empty
    cells mean "not given". Relative paths are relative to the CSV file's folder, so a CSV can travel
    with its data.

    Raises:
        DataNotFoundError: the CSV is missing; DataError: unknown or missing columns, empty or
        duplicated pair names (naming the line), or no rows.
    """
    if not os.path.isfile(path):
        raise DataNotFoundError(f"pairs CSV {path} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        unknown = [h for h in header if h not in PAIR_CSV_COLUMNS]
        if unknown:
            raise DataError(f"pairs CSV {path}: unknown column(s) {unknown}; allowed: {', '.join(PAIR_CSV_COLUMNS)}")
        if "pair" not in header:
            raise DataError(f"pairs CSV {path}: no 'pair' column in the header {header}")
        pairs, seen = [], {}
        for row in reader:
            line = reader.line_num
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            name = row.get("pair", "")
            if not name:
                raise DataError(f"pairs CSV {path}, line {line}: empty 'pair' cell")
            if name in seen:
                raise DataError(f"pairs CSV {path}, line {line}: pair {name!r} already listed on line {seen[name]}")
            seen[name] = line
            kwargs = {
                col: os.path.join(base, os.path.expanduser(row[col])) for col in PAIR_CSV_COLUMNS[1:] if row.get(col)
            }
            spec = PairSpec(pair=name, **kwargs)
            try:
                spec.validate()
            except ValueError as err:
                raise DataError(f"pairs CSV {path}, line {line}: {err}") from None
            pairs.append(spec)
    if not pairs:
        raise DataError(f"pairs CSV {path} lists no pairs")
    return pairs


__all__ = [
    "PAIR_CSV_COLUMNS",
    "LabelFiles",
    "PairSpec",
    "natural_key",
    "pairs_from_prediction_dir",
    "pairs_from_csv",
    "read_landmarks",
]

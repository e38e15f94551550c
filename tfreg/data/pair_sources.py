"""The moving/fixed pairs to preprocess: from a DeepReg paired folder or from a CSV file.

Folder input (DeepReg's paired layout)::

    <folder>/moving_images/<pair_id>.nii.gz
    <folder>/fixed_images/<pair_id>.nii.gz
    <folder>/moving_labels/<pair_id>.nii.gz   (optional: both label folders or neither)
    <folder>/fixed_labels/<pair_id>.nii.gz

Every file SimpleITK reads counts (``.nii.gz``, ``.nii``, ``.mha``, ``.nrrd``, ...); sub-folders are
searched too and become part of the pair ID (``sub/case1``). The sub-folders must hold the same IDs.

CSV input: a header row with the columns ``pair_id, moving_image, fixed_image`` and, optionally,
``moving_label, fixed_label``; relative paths are relative to the CSV file's folder. Label cells are all
filled or all empty.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders.sitk import SITK_SUFFIXES, find_files

#: sub-folders of a DeepReg paired folder, in the order of :class:`PairFiles`' fields
FOLDERS = ("moving_images", "fixed_images", "moving_labels", "fixed_labels")
#: CSV columns; the label columns are optional
CSV_COLUMNS = ("pair_id", "moving_image", "fixed_image", "moving_label", "fixed_label")

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*$")


@dataclass(frozen=True)
class PairFiles:
    """The files of one pair; the labels are None when the data set has none."""

    pair_id: str
    moving_image: str
    fixed_image: str
    moving_label: Optional[str] = None
    fixed_label: Optional[str] = None

    @property
    def has_labels(self) -> bool:
        return self.moving_label is not None and self.fixed_label is not None

    def files(self) -> Dict[str, str]:
        """Role -> path of the files that are given."""
        roles = ("moving_image", "fixed_image", "moving_label", "fixed_label")
        return {role: getattr(self, role) for role in roles if getattr(self, role) is not None}


def check_pair_id(pair_id: str, where: str) -> str:
    """``pair_id`` if it makes a safe relative file name (letters, digits, ``_.+-``, ``/`` between parts)."""
    if not isinstance(pair_id, str) or not _SAFE_ID.match(pair_id) or any(p in (".", "..") for p in pair_id.split("/")):
        raise DataError(
            f"{where}: pair_id {pair_id!r} cannot name output files: use letters, digits and _ . + - "
            "(with / between sub-folder parts), no '..' and no leading '/'"
        )
    return pair_id


def _folder_ids(folder: str) -> Dict[str, str]:
    ids: Dict[str, str] = {}
    for rel, suffix in find_files(folder, SITK_SUFFIXES):
        rel = rel.replace(os.sep, "/")
        if any(part.startswith(".") for part in rel.split("/")):
            continue  # hidden files (scratch files of a killed run) are not data
        path = os.path.join(folder, rel + "." + suffix)
        if rel in ids:
            raise DataError(f"{folder}: two files for pair {rel!r}: {ids[rel]} and {path}; keep one")
        ids[rel] = path
    return ids


def pairs_from_folder(folder: str) -> List[PairFiles]:
    """The pairs of a DeepReg paired folder, sorted by ID (see the module docstring for the layout).

    Raises:
        DataNotFoundError: the folder or an image sub-folder is missing, or holds no image file.
        DataError: a single label sub-folder, or sub-folders whose file names (IDs) differ (listing them).
    """
    if not os.path.isdir(folder):
        raise DataNotFoundError(
            f"input folder {folder} does not exist (expected a folder holding {', '.join(FOLDERS)})"
        )
    present = [name for name in FOLDERS if os.path.isdir(os.path.join(folder, name))]
    for name in FOLDERS[:2]:
        if name not in present:
            raise DataNotFoundError(
                f"input folder {folder} has no sub-folder {name}: expected DeepReg's paired layout "
                f"{'/, '.join(FOLDERS)}/ (the label folders optional), or give a CSV file"
            )
    if ("moving_labels" in present) != ("fixed_labels" in present):
        missing = "moving_labels" if "fixed_labels" in present else "fixed_labels"
        raise DataError(f"input folder {folder} has one label sub-folder but not {missing}: give both or neither")
    ids = {name: _folder_ids(os.path.join(folder, name)) for name in present}
    reference = ids["moving_images"]
    if not reference:
        raise DataNotFoundError(f"{os.path.join(folder, 'moving_images')} holds no image file")
    for name in present[1:]:
        missing = sorted(set(reference) - set(ids[name]))
        extra = sorted(set(ids[name]) - set(reference))
        if missing or extra:
            raise DataError(
                f"input folder {folder}: {name} and moving_images must hold the same file names (pair IDs); "
                f"missing from {name}: {missing[:5]}, only in {name}: {extra[:5]}"
            )
    pairs = []
    for pair_id in sorted(reference):
        check_pair_id(pair_id, os.path.join(folder, "moving_images"))
        labels = [ids[name][pair_id] if name in ids else None for name in FOLDERS[2:]]
        pairs.append(PairFiles(pair_id, ids["moving_images"][pair_id], ids["fixed_images"][pair_id], *labels))
    return pairs


def pairs_from_csv(path: str) -> List[PairFiles]:
    """The pairs listed in a CSV file (see the module docstring), in file order.

    Raises:
        DataNotFoundError: the CSV or a file it names does not exist.
        DataError: a missing column, an empty cell, a repeated or unsafe pair ID, label cells filled for
            some rows only; each message names the CSV file and the row.
    """
    if not os.path.isfile(path):
        raise DataNotFoundError(f"pair list {path} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in CSV_COLUMNS[:3] if c not in columns]
        if missing:
            raise DataError(
                f"pair list {path} lacks the column(s) {missing}: expected a header {', '.join(CSV_COLUMNS)}"
            )
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if not rows:
        raise DataNotFoundError(f"pair list {path} lists no pair")
    pairs, seen = [], set()
    label_rows = [bool(row.get("moving_label") or row.get("fixed_label")) for row in rows]
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        where = f"pair list {path}, row {number}"
        pair_id = check_pair_id(row["pair_id"], where)
        if pair_id in seen:
            raise DataError(f"{where}: pair_id {pair_id!r} is listed twice")
        seen.add(pair_id)
        roles = CSV_COLUMNS[1:] if any(label_rows) else CSV_COLUMNS[1:3]
        files = {}
        for role in roles:
            if not row.get(role):
                extra = (
                    " (the label columns are filled for some rows: fill them for all or none)"
                    if "label" in role
                    else ""
                )
                raise DataError(f"{where}: the {role} cell is empty{extra}")
            files[role] = os.path.join(base, row[role]) if not os.path.isabs(row[role]) else row[role]
            if not os.path.isfile(files[role]):
                raise DataNotFoundError(f"{where}: {role} file {files[role]} does not exist")
        pairs.append(PairFiles(pair_id=pair_id, **files))
    return pairs


def list_pairs(source: str) -> List[PairFiles]:
    """The pairs of ``source``: a ``.csv`` file (:func:`pairs_from_csv`) or a paired folder."""
    if str(source).lower().endswith(".csv"):
        return pairs_from_csv(source)
    return pairs_from_folder(source)


__all__ = ["FOLDERS", "CSV_COLUMNS", "PairFiles", "check_pair_id", "pairs_from_folder", "pairs_from_csv", "list_pairs"]

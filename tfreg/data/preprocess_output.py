"""``tfreg_preprocess`` in Python: check every pair, preprocess them, and write DeepReg's paired layout.

Output folder::

    <out>/moving_images/<pair_id>.nii.gz    float32 in [0, 1], on the output grid
    <out>/fixed_images/<pair_id>.nii.gz
    <out>/moving_labels/<pair_id>.nii.gz    unsigned integer label maps (when the input has labels)
    <out>/fixed_labels/<pair_id>.nii.gz
    <out>/transforms/<pair_id>.json         every parameter, grid, the rigid transform and the crop box
    <out>/transforms/<pair_id>.tfm          the rigid transform for ITK/SimpleITK (sitk.ReadTransform)
    <out>/preprocessing.json                the options and the list of pairs
    <out>/.tfreg-output                     marker: written by tfreg_preprocess (--overwrite may replace it)

The folder is written under a scratch name next to ``<out>`` and renamed into place once complete
(:mod:`tfreg.file_safety`), so a failure or a kill leaves no output folder (or the previous one intact).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Callable, Dict, List, Optional, Sequence

import SimpleITK as sitk

from tfreg.data.errors import DataError
from tfreg.data.image_io import save_image
from tfreg.data.pair_preprocessing import OUTPUT_FOLDERS, PairPlan, check_pair, preprocess_pair
from tfreg.data.pair_sources import PairFiles, list_pairs
from tfreg.data.preprocess_memory import physical_memory_gb
from tfreg.data.preprocess_options import PreprocessOptions
from tfreg.data.sitk_io_lock import SITK_IO_LOCK
from tfreg.file_safety import (
    check_folder_holds_no_input,
    check_replaceable,
    clean_stale_scratch,
    replace_folder,
    scratch_path,
    write_marker,
)

logger = logging.getLogger(__name__)

#: the tool name in the output folder's marker
TOOL = "tfreg_preprocess"
#: per pair callback: ``(pair_id, record)`` once the pair is written to the scratch folder
PairCallback = Callable[[str, Dict[str, object]], None]


def check_pairs(pairs: Sequence[PairFiles], options: PreprocessOptions) -> List[PairPlan]:
    """:func:`tfreg.data.pair_preprocessing.check_pair` on every pair, plus checks across pairs.

    Raises:
        DataError: no pair, pairs of different dimensions, some pairs with labels and others without, or
            any error of a single pair (before anything is written).
    """
    if not pairs:
        raise DataError("no pair to preprocess")
    plans = [check_pair(pair, options) for pair in pairs]
    dims = {plan.ndim for plan in plans}
    if len(dims) > 1:
        first = {plan.ndim: plan.pair.pair_id for plan in plans}
        raise DataError(f"pairs of different dimensions in one data set: {first} (pair ID per dimension)")
    if len({pair.has_labels for pair in pairs}) > 1:
        raise DataError("some pairs have label files and others not: give labels for every pair or for none")
    return plans


def check_output(out_dir: str, pairs: Sequence[PairFiles], overwrite: bool) -> str:
    """The absolute output folder, after refusing one that exists (without ``overwrite``), is not
    ``tfreg_preprocess``'s own, or holds an input file.

    Raises:
        FileExistsError: naming the folder and what to do.
    """
    out_dir = os.path.abspath(os.path.expanduser(str(out_dir)))
    inputs = {f"{pair.pair_id} {role}": path for pair in pairs for role, path in pair.files().items()}
    check_folder_holds_no_input(out_dir, inputs, role="output folder (--out)")
    if os.path.lexists(out_dir):
        if not overwrite:
            raise FileExistsError(
                f"output folder {out_dir} already exists: choose another --out, or pass --overwrite to replace a "
                f"folder written by {TOOL}"
            )
        check_replaceable(out_dir, TOOL)
    return out_dir


def _missing_ancestor(folder: str) -> Optional[str]:
    """The top-most folder of ``folder``'s path that does not exist yet (None when ``folder`` exists)."""
    missing = None
    while not os.path.isdir(folder):
        missing = folder
        folder = os.path.dirname(folder)
    return missing


def _write_json(content: Dict[str, object], path: str) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(content, stream, indent=1)
        stream.write("\n")


def preprocess_pairs(
    pairs: Sequence[PairFiles],
    out_dir: str,
    options: Optional[PreprocessOptions] = None,
    overwrite: bool = False,
    on_pair_done: Optional[PairCallback] = None,
) -> str:
    """Check all ``pairs``, preprocess each and write the output folder (module docstring).

    Args:
        pairs: from :func:`tfreg.data.pair_sources.list_pairs` (or built by hand).
        out_dir: the output folder; must not exist unless ``overwrite`` (and then be one this tool wrote).
        options: what to do (default :class:`PreprocessOptions`: keep spacing, no alignment, no crop,
            1st/99th percentiles to [0, 1]).
        overwrite: replace an existing output folder of ``tfreg_preprocess``.
        on_pair_done: called as ``on_pair_done(pair_id, record)`` after each pair (a progress bar).

    Returns:
        The absolute output folder.

    Raises:
        DataError, ValueError, FileExistsError: every input error before the output folder is created.
    """
    options = options if options is not None else PreprocessOptions()
    if not isinstance(options, PreprocessOptions):
        raise ValueError(f"options must be a PreprocessOptions, got {type(options).__name__}")
    pairs = list(pairs)
    out_dir = check_output(out_dir, pairs, overwrite)
    plans = check_pairs(pairs, options)
    parent = os.path.dirname(out_dir)
    created = _missing_ancestor(parent)
    os.makedirs(parent, exist_ok=True)
    for stale in clean_stale_scratch(parent):
        logger.info("removed %s, left by a killed run", stale)
    scratch = scratch_path(out_dir)
    os.mkdir(scratch)
    try:
        summary = []
        for plan in plans:
            result = preprocess_pair(plan.pair, options)
            pair_id = plan.pair.pair_id
            for key, array in result.arrays.items():
                save_image(array, os.path.join(scratch, OUTPUT_FOLDERS[key], pair_id + ".nii.gz"), result.geometry)
            transform_base = os.path.join(scratch, "transforms", pair_id)
            os.makedirs(os.path.dirname(transform_base), exist_ok=True)
            with SITK_IO_LOCK:
                sitk.WriteTransform(result.rigid.transform, transform_base + ".tfm")
            record = {
                **result.record,
                "options": options.to_dict(),
                "transform_file": os.path.basename(transform_base) + ".tfm",
                "estimated_memory_gib": plan.memory.gib,
                "memory_limit_gib": options.max_memory_gb
                if options.max_memory_gb is not None
                else physical_memory_gb(),
            }
            _write_json(record, transform_base + ".json")
            summary.append({"pair_id": pair_id, **{role: path for role, path in plan.pair.files().items()}})
            logger.info("preprocessed pair %s", pair_id)
            if on_pair_done is not None:
                on_pair_done(pair_id, record)
        _write_json(
            {"tool": TOOL, "options": options.to_dict(), "pairs": summary}, os.path.join(scratch, "preprocessing.json")
        )
        write_marker(scratch, TOOL, {"pairs": len(plans)})
        # an existing folder is replaced only now that the new one is complete
        replace_folder(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if created is not None:  # a failed start leaves no folder behind, not even the parents it made
            shutil.rmtree(created, ignore_errors=True)
        raise
    return out_dir


def preprocess(
    source: str,
    out_dir: str,
    options: Optional[PreprocessOptions] = None,
    overwrite: bool = False,
    on_pair_done: Optional[PairCallback] = None,
) -> str:
    """:func:`preprocess_pairs` on the pairs of ``source``: a DeepReg paired folder or a CSV file."""
    return preprocess_pairs(list_pairs(source), out_dir, options, overwrite, on_pair_done)


__all__ = ["TOOL", "check_pairs", "check_output", "preprocess_pairs", "preprocess"]

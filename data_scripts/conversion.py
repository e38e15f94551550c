"""Shared steps of the public-dataset converters: checks, planned files, the atomic write, the manifest.

The converters (``learn2reg_oasis.py``, ``learn2reg_abdomen_ctmr.py``, ``brats_reg.py``) first check the
whole source and build a plan (a list of :class:`PlannedFile`: source file -> output path), so bad input is
refused before anything is written. :func:`write_tree` then writes the plan into a scratch folder beside the
output folder (:func:`tfreg.file_safety.scratch_path`) and renames it into place at the end
(:func:`tfreg.file_safety.replace_folder`): a failed or killed conversion never leaves a half-written
output under the real name.

Every output tree holds, beside its split folders:

- ``conversion.json``: the converter, its options, the source folder and the split of every case;
- ``checksums.sha256``: the SHA-256 of every other file, in ``sha256sum`` format with paths relative to
  the output folder, so ``cd OUT && sha256sum -c checksums.sha256`` verifies a conversion (none of the three
  datasets publishes checksums of its own files, so the manifest is of the converted files).

Label maps are written either unchanged (``integer``: the published file, copied byte for byte) or as
DeepReg's multi-label layout (``onehot``: a 4-D NIfTI ``(i, j, k, K)`` of uint8 binary masks, channel
``c`` holding label number ``c + 1``, background dropped, same geometry), which tfreg's and DeepReg's
loaders read: they take label channels with values in [0, 1], not label numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import save_image
from tfreg.data.label_renumbering import renumber_labels
from tfreg.file_safety import clean_stale_scratch, replace_folder, scratch_path

#: Name of the manifest written at the root of every converted tree.
MANIFEST_NAME = "checksums.sha256"
#: Name of the provenance file (options, source, split of each case).
RECORD_NAME = "conversion.json"
#: How label maps can be written (see the module docstring).
LABEL_FORMATS = ("onehot", "integer")
#: The split folder names of DeepReg's layouts.
SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class PlannedFile:
    """One output file of a conversion.

    Attributes:
        source: absolute path of the published file.
        target: output path relative to the output folder (``train/images/OASIS_0001.nii.gz``).
        num_labels: 0 to copy the file unchanged; ``K > 0`` to write an integer label map ``0..K`` as ``K``
            one-hot channels.
        write: for a computed file (e.g. a resized 2-D X-ray): ``write(absolute target path)`` writes it;
            ``source`` then only names where it comes from (messages, records). None: copy or one-hot.
    """

    source: str
    target: str
    num_labels: int = 0
    write: Optional[Callable[[str], None]] = None


# ---------------------------------------------------------------------------------------------- checks
def check_source_folder(path: str, role: str = "source folder") -> str:
    """The absolute path of an existing source folder; DataNotFoundError naming it otherwise."""
    if not path or not os.path.isdir(path):
        raise DataNotFoundError(f"{role} {path!r} does not exist or is not a folder")
    return os.path.abspath(path)


def require_file(path: str, what: str) -> str:
    """``path`` when it is a file; DataNotFoundError naming the file and ``what`` was expected there."""
    if not os.path.isfile(path):
        raise DataNotFoundError(f"missing {what}: expected the file {path}")
    return path


def read_json(path: str, what: str) -> dict:
    """The JSON object in ``path`` (DataNotFoundError when missing, DataError when not a JSON object)."""
    require_file(path, what)
    try:
        with open(path, encoding="utf-8") as stream:
            content = json.load(stream)
    except (OSError, ValueError) as err:
        raise DataError(f"{what} {path} is not readable JSON: {err}") from err
    if not isinstance(content, dict):
        raise DataError(f"{what} {path} must hold a JSON object, found {type(content).__name__}")
    return content


def check_output_folder(output: str, source: str) -> str:
    """The absolute output path, after refusing outputs that could mix with or destroy the source.

    Refused (before anything is written): an output that exists and is not an empty folder, an output
    inside the source folder, and an output that holds the source.

    Raises:
        FileExistsError: the output exists and is a file or a non-empty folder, or holds the source.
        ValueError: the output is inside the source folder.
    """
    if not output:
        raise ValueError("output folder: a path is required")
    output_abs = os.path.abspath(os.path.expanduser(output))
    source_real, output_real = os.path.realpath(source), os.path.realpath(output_abs)
    if output_real != source_real and os.path.commonpath([output_real, source_real]) == source_real:
        raise ValueError(
            f"output folder {output} is inside the source folder {source}: converted files would mix with "
            "the published ones; choose an output folder outside the source"
        )
    if os.path.commonpath([output_real, source_real]) == output_real:
        raise FileExistsError(
            f"output folder {output} is or holds the source folder {source}: choose another output folder"
        )
    if os.path.lexists(output_abs):
        if os.path.islink(output_abs) or not os.path.isdir(output_abs):
            raise FileExistsError(f"output {output} exists and is not a folder: choose a new output folder")
        entries = os.listdir(output_abs)
        if entries:
            raise FileExistsError(
                f"output folder {output} exists and is not empty (holds {sorted(entries)[:3]}...): the converters "
                "write only into a new or empty folder; move it away or choose another output folder"
            )
    return output_abs


def image_info(path: str, what: str) -> Tuple[Tuple[int, ...], ImageGeometry]:
    """``(size (i, j, k), geometry)`` from the header of the 3-D image ``path`` (SimpleITK).

    Raises:
        DataNotFoundError: the file is missing (naming ``what`` was expected).
        DataError: the file is not a readable 3-D scalar image.
    """
    require_file(path, what)
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise DataError(f"{what} {path} is not a readable image: {str(err).strip().splitlines()[-1]}") from err
    if reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1:
        raise DataError(
            f"{what} {path} must be a 3-D scalar image, found {reader.GetDimension()}-D with "
            f"{reader.GetNumberOfComponents()} component(s) per voxel"
        )
    direction = np.asarray(reader.GetDirection(), dtype=np.float64).reshape(3, 3)
    geometry = ImageGeometry(spacing=reader.GetSpacing(), origin=reader.GetOrigin(), direction=direction)
    return tuple(int(s) for s in reader.GetSize()), geometry


def check_same_grid(path_a: str, what_a: str, path_b: str, what_b: str) -> None:
    """DataError naming both files unless they have the same size and geometry (an image and its label)."""
    size_a, geometry_a = image_info(path_a, what_a)
    size_b, geometry_b = image_info(path_b, what_b)
    if size_a != size_b or not geometry_a.allclose(geometry_b, atol=1e-4):
        raise DataError(
            f"{what_b} {path_b} (size {size_b}, {geometry_b}) is not on the grid of {what_a} {path_a} "
            f"(size {size_a}, {geometry_a})"
        )


def check_label_format(label_format: str) -> str:
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label_format must be one of {list(LABEL_FORMATS)}, got {label_format!r}")
    return label_format


# ---------------------------------------------------------------------------------------------- splits
def seeded_split(
    ids: Sequence[str], counts: Sequence[int], seed: int, names: Sequence[str] = SPLIT_NAMES
) -> Dict[str, List[str]]:
    """Assign ``ids`` to the splits ``names`` (train/valid/test) at random, ``counts`` cases each (seeded).

    The IDs are sorted first, so the assignment depends only on the set of IDs, the counts and the seed
    (NumPy's ``default_rng(seed).permutation``, cut into consecutive runs of ``counts``); each split's IDs are
    returned sorted. Counts of 0 give an empty split (it is then not written). ``names`` lets a converter
    draw other groups, e.g. ``("train", "test", "unused")`` for a paper split of fewer cases than the source
    holds; the same counts give the same cases whatever the names.

    Raises:
        ValueError: not one non-negative count per name, or their sum differs from the number of IDs.
    """
    names = tuple(names)
    counts = [int(c) for c in counts]
    if len(counts) != len(names) or min(counts) < 0:
        numbers = {3: "three", 2: "two"}.get(len(names), str(len(names)))
        raise ValueError(f"split counts must be {numbers} non-negative numbers ({' '.join(names)}), got {counts}")
    ordered = sorted(ids)
    if sum(counts) != len(ordered):
        raise ValueError(
            f"split counts {counts} add up to {sum(counts)} but the source holds {len(ordered)} cases; "
            f"give counts that add up to {len(ordered)}"
        )
    order = np.random.default_rng(seed).permutation(len(ordered))
    shuffled = [ordered[i] for i in order]
    bounds = np.cumsum([0] + counts)
    return {name: sorted(shuffled[bounds[n] : bounds[n + 1]]) for n, name in enumerate(names)}


# ---------------------------------------------------------------------------------------------- writing
def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_label_numbers(source: str, num_labels: int) -> Tuple[np.ndarray, ImageGeometry]:
    """The integer label map ``source`` as int64 ``(i, j, k)`` with its geometry, its values checked in
    ``0..num_labels``.

    Raises:
        DataError: naming ``source``, when it is unreadable or holds values that are not integers in
            ``[0, num_labels]``.
    """
    try:
        image = sitk.ReadImage(source)
    except RuntimeError as err:
        raise DataError(f"label map {source} is not readable: {str(err).strip().splitlines()[-1]}") from err
    values = np.transpose(sitk.GetArrayViewFromImage(image))  # (i, j, k)
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise DataError(f"label map {source} holds non-integer values; expected label numbers 0..{num_labels}")
    low, high = values.min(), values.max()
    if low < 0 or high > num_labels:
        raise DataError(
            f"label map {source} holds values in [{low}, {high}], expected label numbers 0..{num_labels} "
            f"(0 = background)"
        )
    return values.astype(np.int64), ImageGeometry.from_sitk(image)


def write_onehot_label(source: str, target: str, num_labels: int) -> None:
    """Write the integer label map ``source`` (values ``0..num_labels``) as ``num_labels`` binary channels.

    The output is ``(i, j, k, num_labels)`` uint8 with the source's geometry; channel ``c`` is
    ``label == c + 1``. Labels absent from this file give all-zero channels, so every file of a dataset has
    the same channel count (DeepReg's loaders require it).

    Raises:
        DataError: naming ``source``, when it is unreadable or holds values that are not integers in
            ``[0, num_labels]``.
    """
    labels, geometry = read_label_numbers(source, num_labels)
    onehot = labels[..., None] == np.arange(1, num_labels + 1)
    save_image(onehot.astype(np.uint8), target, geometry)


def selected_label_writer(source: str, num_labels: int, keep: Sequence[int], onehot: bool) -> Callable[[str], None]:
    """A :attr:`PlannedFile.write` that keeps the label numbers ``keep`` of ``source`` (values ``0..num_labels``),
    renumbered ``1..K`` in the order given (every other value becomes 0), written as ``K`` one-hot uint8
    channels ``(i, j, k, K)`` (``onehot``) or as a uint8 integer label map ``(i, j, k)``; the geometry is kept."""
    keep = tuple(int(v) for v in keep)

    def write(target: str) -> None:
        labels, geometry = read_label_numbers(source, num_labels)
        kept = renumber_labels(labels, keep)
        if onehot:
            kept = (kept[..., None] == np.arange(1, len(keep) + 1)).astype(np.uint8)
        save_image(kept, target, geometry)

    return write


def _write_planned(item: PlannedFile, root: str) -> None:
    target = os.path.join(root, item.target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if item.write is not None:
        item.write(target)
    elif item.num_labels:
        write_onehot_label(item.source, target, item.num_labels)
    else:
        shutil.copyfile(item.source, target)


def write_manifest(root: str, relative_paths: Iterable[str]) -> str:
    """Write :data:`MANIFEST_NAME` at ``root``: ``<sha256>  <path>`` per file (``sha256sum -c`` format)."""
    lines = [f"{sha256_of(os.path.join(root, rel))}  {rel.replace(os.sep, '/')}\n" for rel in sorted(relative_paths)]
    path = os.path.join(root, MANIFEST_NAME)
    with open(path, "w", encoding="utf-8") as stream:
        stream.writelines(lines)
    return path


def read_manifest(path: str) -> Dict[str, str]:
    """``{relative path: sha256}`` of a manifest written by :func:`write_manifest`."""
    entries = {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            digest, rel = line.rstrip("\n").split("  ", 1)
            entries[rel] = digest
    return entries


def check_plan(plan: Sequence[PlannedFile]) -> None:
    """DataError when two planned files share an output path (two cases mapped to one ID)."""
    seen: Dict[str, str] = {}
    for item in plan:
        if item.target in seen:
            raise DataError(f"two source files map to the output {item.target}: {seen[item.target]} and {item.source}")
        seen[item.target] = item.source


def write_tree(plan: Sequence[PlannedFile], output: str, record: Mapping[str, object]) -> str:
    """Write ``plan`` into ``output`` atomically, with ``conversion.json`` and the manifest; returns ``output``.

    Everything is written into a scratch folder beside ``output`` and renamed into place once complete;
    on any error the scratch folder is removed and ``output`` is left as it was. Scratch folders of killed
    earlier runs in the same parent folder are cleaned first.
    """
    check_plan(plan)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    clean_stale_scratch(parent)
    scratch = scratch_path(output)
    os.makedirs(scratch)
    try:
        for item in plan:
            _write_planned(item, scratch)
        with open(os.path.join(scratch, RECORD_NAME), "w", encoding="utf-8") as stream:
            json.dump(record, stream, indent=1, sort_keys=True)
            stream.write("\n")
        write_manifest(scratch, [item.target for item in plan] + [RECORD_NAME])
        if os.path.isdir(output) and not os.path.islink(output):
            os.rmdir(output)  # empty (checked before); rmdir refuses a folder that has gained files since
        replace_folder(scratch, output)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return output


def split_record(splits: Mapping[str, Sequence[str]]) -> Dict[str, List[str]]:
    """The non-empty splits, in train/valid/test order, as plain lists (for ``conversion.json``)."""
    return {name: list(splits[name]) for name in SPLIT_NAMES if splits.get(name)}


def learn2reg_label_count(info: dict) -> Optional[int]:
    """Number of foreground labels in a Learn2Reg json's ``labels`` (None when absent or unreadable).

    Accepts ``{"0": "background", "1": ...}`` or the per-channel form ``{"0": {"0": ..., "1": ...}}``.
    """
    labels = info.get("labels")
    if not isinstance(labels, dict) or not labels:
        return None
    first = labels[sorted(labels)[0]]
    if isinstance(first, dict):
        labels = first
    numbers = [int(k) for k in labels if str(k).isdigit()]
    return max(numbers) if numbers else None


def nifti_stem(path: str) -> str:
    """The file name of ``path`` without ``.nii.gz`` / ``.nii``."""
    name = os.path.basename(path)
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def print_summary(output: str, splits: Mapping[str, Sequence[str]], unit: str = "case(s)") -> None:
    """One line per written split (used by the command-line entry points)."""
    for name, ids in split_record(splits).items():
        print(f"{name}: {len(ids)} {unit}")
    print(f"written to {output} (verify with: cd {output} && sha256sum -c {MANIFEST_NAME})")


# ---------------------------------------------------------------------------------------------- command line
def converter_parser(doc: str, source_help: str) -> argparse.ArgumentParser:
    """The command line every converter starts from: its docstring as help, ``SOURCE`` and ``OUTPUT``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help=source_help)
    parser.add_argument("output", help="new or empty output folder (outside the source)")
    return parser


def add_split_arguments(
    parser: argparse.ArgumentParser,
    default: Optional[Sequence[int]],
    help_text: str,
    names: Sequence[str] = ("TRAIN", "VALID", "TEST"),
) -> None:
    """``--split-counts`` (one count per name, default ``default``) and ``--seed`` (default 0) of a seeded split."""
    parser.add_argument(
        "--split-counts",
        nargs=len(names),
        type=int,
        default=list(default) if default is not None else None,
        metavar=tuple(names),
        help=help_text,
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")


def add_label_format_argument(parser: argparse.ArgumentParser) -> None:
    """``--label-format onehot|integer`` (see :data:`LABEL_FORMATS`)."""
    parser.add_argument(
        "--label-format",
        choices=LABEL_FORMATS,
        default="onehot",
        help="onehot: binary channels for tfreg/DeepReg (default); integer: the published maps unchanged",
    )


def run_converter(
    parser: argparse.ArgumentParser, convert: Callable[[], Mapping[str, Sequence[str]]], output: str, unit: str
) -> int:
    """Run ``convert()`` for a converter's ``main``: 0 after the split summary and the ``notes`` of
    ``conversion.json`` (when the converter wrote any), or exit 1 with one line.

    Bad input (``ValueError``, ``OSError``: tfreg's data errors derive from them) ends the program with a
    one-line message naming the file or option and no traceback, as ``argparse`` reports a bad option.
    """
    try:
        splits = convert()
    except (ValueError, OSError) as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    print_summary(output, splits, unit)
    record = os.path.join(output, RECORD_NAME)
    if os.path.isfile(record):  # what the converter wants the user to know (cases skipped, converted, left out)
        with open(record, encoding="utf-8") as stream:
            for note in json.load(stream).get("notes", []):
                print(f"note: {note}")
    return 0


__all__ = [
    "MANIFEST_NAME",
    "RECORD_NAME",
    "LABEL_FORMATS",
    "SPLIT_NAMES",
    "PlannedFile",
    "check_source_folder",
    "require_file",
    "read_json",
    "check_output_folder",
    "image_info",
    "check_same_grid",
    "check_label_format",
    "seeded_split",
    "sha256_of",
    "read_label_numbers",
    "write_onehot_label",
    "selected_label_writer",
    "write_manifest",
    "read_manifest",
    "check_plan",
    "write_tree",
    "split_record",
    "learn2reg_label_count",
    "nifti_stem",
    "print_summary",
    "converter_parser",
    "add_split_arguments",
    "add_label_format_argument",
    "run_converter",
]

"""What tfreg's versions of DeepReg's eleven deep-learning demos share: the release, its conversion, training
and prediction the way DeepReg's demo scripts run them.

Each ``demos/<name>/`` (``grouped_mask_prostate_longitudinal``, ``grouped_mr_heart``, ``paired_ct_lung``,
``paired_mrus_brain``, ``paired_mrus_prostate``, ``unpaired_ct_abdomen``, ``unpaired_ct_lung``,
``unpaired_mr_brain``, ``unpaired_us_prostate_cv``) holds DeepReg's YAML unchanged and three scripts:

- ``demo_data.py``: the release's download address and checksum (:class:`Release`), and the conversion of
  its archive into DeepReg's layout (a plan of :class:`~data_scripts.conversion.PlannedFile`, written by
  :func:`run_data` through :func:`data_scripts.conversion.write_tree`: scratch folder, then rename, with
  ``conversion.json`` and ``checksums.sha256``).
- ``demo_train.py``: :func:`run_training`, DeepReg's ``deepreg.train.train`` call (``log_dir=demos/<name>``,
  ``exp_name=logs_train/<timestamp>``). As in DeepReg, the default is the quick run: the demo YAML merged
  with ``config/test/demo_paired.yaml`` (16^3 moving, 8^3 fixed) or ``config/test/demo_unpaired_grouped.yaml``
  (16^3), one epoch; ``--full`` trains with the demo YAML alone.
- ``demo_predict.py``: :func:`run_prediction`, DeepReg's ``deepreg.predict.predict`` call on the test split
  with the newest training run's last checkpoint (DeepReg's scripts load the pretrained checkpoint of its
  model zoo instead; ``-k/--ckpt_path`` takes any ``save/ckpt-N``).

Demo folder (``--dir``, default ``demos/<name>``)::

    <dir>/dataset_source/<archive>          the release as downloaded (kept, so a rerun needs no network)
    <dir>/dataset_source/<archive stem>/    its extracted content (the converter's input)
    <dir>/dataset/                          DeepReg's layout, plus conversion.json and checksums.sha256
    <dir>/logs_train/<timestamp>[-test]/    one training run (save/ckpt-N); ``-test``: the quick config
    <dir>/logs_predict/<timestamp>/test/    predictions and metrics.csv

Paths in DeepReg's YAMLs are relative to the repository root (``demos/<name>/dataset/...``), so the scripts
run from there. With another ``--dir``, a generated ``logs_train/<run>.override.yaml`` merged last points
the splits at ``<dir>/dataset`` (the demo YAML itself is still read unchanged).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import conversion  # noqa: E402
from demos import staged_demo  # noqa: E402
from tfreg.data.errors import DataError, DataNotFoundError  # noqa: E402
from tfreg.file_safety import clean_stale_scratch, scratch_path  # noqa: E402

#: DeepReg's ``config/test`` overrides of its demo scripts' quick mode, by dataset type
QUICK_CONFIGS = {
    "paired": os.path.join("config", "test", "demo_paired.yaml"),
    "unpaired": os.path.join("config", "test", "demo_unpaired_grouped.yaml"),
    "grouped": os.path.join("config", "test", "demo_unpaired_grouped.yaml"),
}
#: DeepReg's split folder names
SPLITS = ("train", "valid", "test")
#: what demo_predict.py prints the mean of (the columns DeepReg's predict writes)
METRIC_COLUMNS = ("image_ssd", "label_binary_dice", "label_tre")


@dataclass(frozen=True)
class Release:
    """Where a demo's data comes from.

    Attributes:
        url: the address DeepReg's ``demo_data.py`` downloads.
        filename: the archive's name in ``dataset_source/``.
        sha256: the archive's published SHA-256 (hex), or None when none is published; the download is
            then checked against nothing, and its SHA-256 is printed and kept in ``conversion.json``.
        checksum_note: where ``sha256`` comes from, or why there is none.
        size_note: how big the download is (for the printed instructions), "" when unknown.
    """

    url: str
    filename: str
    sha256: Optional[str]
    checksum_note: str
    size_note: str = ""

    @property
    def host(self) -> str:
        return urllib.parse.urlparse(self.url).hostname or ""

    @property
    def stem(self) -> str:
        """The archive's name without ``.zip`` / ``.tar`` / ``.tar.gz`` (the extraction folder)."""
        for suffix in (".tar.gz", ".tgz", ".zip", ".tar"):
            if self.filename.endswith(suffix):
                return self.filename[: -len(suffix)]
        return self.filename


# ---------------------------------------------------------------------------------------------- the archive
def check_archive(path: str, release: Release) -> str:
    """The archive's SHA-256 (hex); DataError naming the file when ``release.sha256`` is set and differs."""
    digest = conversion.sha256_of(path)
    if release.sha256 and digest != release.sha256.lower():
        raise DataError(
            f"{path} has SHA-256 {digest}, but {release.url} publishes {release.sha256} ({release.checksum_note}): "
            "the download is damaged or not the published file; delete it and download it again"
        )
    return digest


def download(release: Release, path: str, timeout: float = 60.0) -> str:
    """Fetch ``release.url`` into ``path`` (through a scratch file, renamed when complete and checked)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scratch = scratch_path(path)
    size = f" ({release.size_note})" if release.size_note else ""
    print(f"[demo_data] downloading {release.url}{size}")
    try:
        with urllib.request.urlopen(release.url, timeout=timeout) as response, open(scratch, "wb") as stream:
            shutil.copyfileobj(response, stream, 1 << 20)
        check_archive(scratch, release)
        os.replace(scratch, path)
    except BaseException:
        if os.path.lexists(scratch):
            os.remove(scratch)
        raise
    return path


def _member_target(root: str, name: str, archive: str) -> str:
    """Where archive member ``name`` lands under ``root``; DataError when it would land outside."""
    target = os.path.realpath(os.path.join(root, name))
    if os.path.isabs(name) or os.path.commonpath([target, os.path.realpath(root)]) != os.path.realpath(root):
        raise DataError(f"{archive} holds the member {name!r}, which would be written outside {root}: refused")
    return target


def extract_archive(archive: str, destination: str) -> str:
    """Unpack a ``.zip`` or ``.tar[.gz]`` into ``destination`` (new), through a scratch folder renamed at the end.

    Members with absolute paths or ``..`` that would land outside ``destination`` are refused before
    anything is written; links and device files in tar archives are refused too.

    Raises:
        DataError: the file is neither a zip nor a tar archive, is damaged, or holds a refused member.
        FileExistsError: ``destination`` exists.
    """
    if os.path.lexists(destination):
        raise FileExistsError(f"{destination} exists: remove it to extract {archive} again")
    parent = os.path.dirname(os.path.abspath(destination))
    os.makedirs(parent, exist_ok=True)
    clean_stale_scratch(parent)
    scratch = scratch_path(destination)
    os.makedirs(scratch)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _member_target(scratch, name, archive)
                zf.extractall(scratch)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                for member in members:
                    _member_target(scratch, member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise DataError(f"{archive} holds {member.name!r}, which is not a file or folder: refused")
                # the "data" filter (Python >= 3.11.4) repeats the checks above inside tarfile itself
                options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(scratch, members=members, **options)
        else:
            raise DataError(f"{archive} is neither a zip nor a tar archive")
        os.replace(scratch, destination)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        shutil.rmtree(scratch, ignore_errors=True)
        raise DataError(f"{archive} is damaged ({err}): delete it and download it again") from err
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return destination


def download_commands(release: Release, archive: str) -> str:
    """The shell steps that get the release by hand."""
    check = f"echo '{release.sha256}  {archive}' | sha256sum -c" if release.sha256 else f"sha256sum {archive}"
    return f"mkdir -p {os.path.dirname(archive)}\nwget -O {archive} '{release.url}'\n{check}"


def locate_source(release: Release, folder: str, source: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """The extracted release to convert, and the archive's SHA-256 (None when ``source`` is a folder).

    ``source``: an extracted folder (used as it is), an archive file (checked and extracted next to the
    demo's other sources), or None: ``<folder>/dataset_source/<filename>``, downloaded first when missing
    and the host answers. Returns ``(None, None)`` after printing the download steps when it cannot.
    """
    sources = os.path.join(folder, "dataset_source")
    if source and os.path.isdir(source):
        return os.path.abspath(source), None
    if source:
        if not os.path.isfile(source):
            raise DataNotFoundError(f"--source {source}: no such archive file or folder")
        archive = os.path.abspath(source)
    else:
        archive = os.path.join(sources, release.filename)
        if not os.path.isfile(archive):
            if not staged_demo.network_available(release.host):
                print(
                    f"[demo_data] {release.host} cannot be reached. Get the release with:\n"
                    f"{download_commands(release, archive)}\nthen rerun this script (or pass --source).",
                    file=sys.stderr,
                )
                return None, None
            download(release, archive)
    digest = check_archive(archive, release)
    if not release.sha256:
        print(f"[demo_data] {os.path.basename(archive)}: SHA-256 {digest} ({release.checksum_note})")
    extracted = os.path.join(sources, f"{release.stem}-{digest[:12]}")
    if not os.path.isdir(extracted):
        extract_archive(archive, extracted)
    return extracted, digest


# ---------------------------------------------------------------------------------------------- conversion
def split_counts(total: int, valid: int, test: int, minimum: int = 1) -> Tuple[int, int, int]:
    """``(train, valid, test)`` case counts: DeepReg's ``valid`` and ``test`` counts raised to ``minimum``.

    DeepReg's demos take ``int(ratio * total)`` cases, which is 0 for a small release; a split whose folder
    is missing or empty cannot be loaded, so each gets at least ``minimum`` (1 for paired and grouped data,
    2 for unpaired data, whose pairs are drawn within a split). For the real releases the minimum is never
    reached.

    Raises:
        DataError: fewer than ``3 * minimum`` cases.
    """
    valid, test = max(valid, minimum), max(test, minimum)
    if total - valid - test < minimum:
        raise DataError(
            f"the release holds {total} cases; the demo needs at least {3 * minimum} ({minimum} each for train, "
            "valid and test)"
        )
    return total - valid - test, valid, test


def ordered_split(ids: Sequence, counts: Sequence[int]) -> Dict[str, List]:
    """The first ``counts[0]`` of ``ids`` for train, the next ``counts[1]`` for valid, the rest for test
    (the order DeepReg's demos split in, with ``ids`` sorted)."""
    train, valid, _ = counts
    ids = list(ids)
    return {"train": ids[:train], "valid": ids[train : train + valid], "test": ids[train + valid :]}


def require_folder(path: str, what: str) -> str:
    """``path`` when it is a folder; DataNotFoundError saying what the release should hold there."""
    if not os.path.isdir(path):
        raise DataNotFoundError(f"the release has no {what}: expected the folder {path}")
    return path


def files_with_suffix(folder: str, suffixes: Sequence[str] = (".nii.gz", ".nii")) -> List[str]:
    """The sorted names of the files in ``folder`` ending with one of ``suffixes``."""
    return sorted(name for name in os.listdir(folder) if name.endswith(tuple(suffixes)))


#: ``convert(source, args)`` of a demo: the planned files, the split of every case and notes for the record
Converter = Callable[[str, argparse.Namespace], Tuple[List[conversion.PlannedFile], Mapping[str, Sequence], List[str]]]


def data_parser(name: str, doc: str, release: Release) -> argparse.ArgumentParser:
    """``--dir``, ``--source``, ``--seed``, ``--overwrite`` (a demo adds its own before parsing)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help=f"demo folder (default demos/{name})")
    parser.add_argument(
        "--source",
        default=None,
        help=f"the downloaded {release.filename}, or its extracted folder (default: dataset_source/, downloaded "
        "when missing)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split, where the demo draws one")
    parser.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset/")
    return parser


def run_data(
    name: str, release: Release, convert: Converter, parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]
) -> int:
    """``demo_data.py``'s main: get the release, convert it into ``<dir>/dataset``; 0, 1 (error) or 2 (no data)."""
    args = parser.parse_args(argv)
    folder = staged_demo.demo_dir(name, args.dir)
    dataset = os.path.join(folder, "dataset")
    try:
        staged_demo.clear_dataset(dataset, args.overwrite)
        source, digest = locate_source(release, folder, args.source)
        if source is None:
            return 2
        plan, splits, notes = convert(source, args)
        record = {
            "demo": name,
            "release": release.url,
            "source": source,
            "archive_sha256": digest,
            "checksum": "verified" if release.sha256 else f"not verified: {release.checksum_note}",
            "seed": args.seed,
            "splits": {key: [str(i) for i in ids] for key, ids in splits.items() if ids},
            "notes": notes,
        }
        conversion.write_tree(plan, dataset, record)
    except (ValueError, OSError) as err:  # tfreg's data errors derive from them
        print(f"[demo_data] error: {err}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{key}: {len(ids)}" for key, ids in splits.items())
    print(f"[demo_data] {summary} in {dataset}")
    for note in notes:
        print(f"[demo_data] note: {note}")
    return 0


# ---------------------------------------------------------------------------------------------- training
def run_parser(name: str, description: str, quick_default: bool) -> argparse.ArgumentParser:
    """DeepReg's ``--test`` / ``--full`` switch (``quick_default``: what neither gives) and tfreg's ``--dir``,
    ``-g/--gpu`` and (for training) nothing else; a demo adds its own options before parsing."""
    parser = argparse.ArgumentParser(description=description)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--test", dest="test", action="store_true", help="the quick config (16^3 images, 1 epoch)")
    group.add_argument("--full", dest="test", action="store_false", help="the demo's own config")
    parser.set_defaults(test=quick_default)
    parser.add_argument("--dir", default=None, help=f"demo folder holding dataset/ (default demos/{name})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    return parser


def relocated_dataset(config_path: str, name: str, folder: str) -> dict:
    """``dataset.<split>.dir`` of ``config_path`` with ``demos/<name>/`` replaced by ``folder`` (lists kept)."""
    with open(config_path, encoding="utf-8") as stream:
        dataset = (yaml.safe_load(stream) or {}).get("dataset", {})
    prefix = f"demos/{name}/"

    def move(path: str) -> str:
        return os.path.join(folder, path[len(prefix) :]) if path.startswith(prefix) else path

    override = {}
    for split in SPLITS:
        entry = dataset.get(split)
        if isinstance(entry, dict) and entry.get("dir"):
            dirs = entry["dir"]
            override[split] = {"dir": [move(d) for d in dirs] if isinstance(dirs, list) else move(dirs)}
    return override


def run_training(
    name: str, config: str, kind: str, args: argparse.Namespace, runs: str = "logs_train", max_epochs: int = -1
) -> str:
    """Train as DeepReg's ``demo_train.py`` does; returns the run folder ``<dir>/<runs>/<timestamp>[-test]``.

    Args:
        name: the demo (``demos/<name>``).
        config: the demo YAML's file name in ``demos/<name>/``.
        kind: the dataset type, ``paired``, ``unpaired`` or ``grouped`` (which quick config to merge).
        args: from :func:`run_parser` (``test``, ``dir``, ``gpu``).
        runs: the runs' folder under the demo folder (``logs_train/<method>`` for unpaired_ct_abdomen).
        max_epochs: > 0 overrides ``train.epochs`` (-1: the config's; the quick config has 1).
    """
    from tfreg.engine.train import train

    os.chdir(REPO_ROOT)  # DeepReg's YAMLs name their data relative to the repository root
    folder = staged_demo.demo_dir(name, args.dir)
    config_path = os.path.join("demos", name, config)
    paths = [config_path]
    if args.test:
        paths.append(QUICK_CONFIGS[kind])
    run = staged_demo.run_name(args.test)
    run_root = os.path.join(folder, runs)
    if os.path.realpath(folder) != os.path.realpath(staged_demo.demo_dir(name)):
        os.makedirs(run_root, exist_ok=True)
        override = os.path.join(run_root, f"{run}.override.yaml")
        with open(override, "w", encoding="utf-8") as stream:
            stream.write(f"# generated by demos/{name}/demo_train.py: the data of --dir {folder}\n")
            yaml.safe_dump({"dataset": relocated_dataset(config_path, name, folder)}, stream, sort_keys=False)
        paths.append(override)
    if not os.path.isdir(os.path.join(folder, "dataset")):
        sys.exit(f"{os.path.join(folder, 'dataset')} is missing: run python demos/{name}/demo_data.py first")
    print(f"[demo_train] tfreg_train -c {' '.join(paths)} --log_dir {folder} -l {runs}/{run}")
    _, exp = train(
        gpu=args.gpu,
        config_path=paths,
        gpu_allow_growth=True,
        ckpt_path="",
        log_dir=folder,
        exp_name=f"{runs}/{run}",
        max_epochs=max_epochs,
    )
    print(f"[demo_train] logs and checkpoints: {exp}/ (next: python demos/{name}/demo_predict.py)")
    return exp


# ---------------------------------------------------------------------------------------------- prediction
def latest_checkpoint(runs_root: str, test: Optional[bool], name: str) -> str:
    """The last checkpoint of the newest run in ``runs_root`` that saved one.

    ``test``: True for the quick runs (``<timestamp>-test``), False for ``--full`` runs, None for either.
    """
    runs = sorted(
        (os.path.join(runs_root, r) for r in os.listdir(runs_root)) if os.path.isdir(runs_root) else (),
        key=lambda path: os.path.basename(path).replace("-test", ""),
        reverse=True,
    )
    for run in runs:
        if test is not None and run.endswith("-test") != test:
            continue
        if staged_demo.checkpoint_numbers(os.path.join(run, "save")):
            return staged_demo.last_checkpoint(run)
    kind = {True: "quick (--test) ", False: "--full ", None: ""}[test]
    raise FileNotFoundError(
        f"no {kind}training run with a checkpoint under {runs_root}: run python demos/{name}/demo_train.py first, "
        "or pass -k/--ckpt_path"
    )


def predict_parser(name: str, description: str) -> argparse.ArgumentParser:
    """:func:`run_parser` (neither ``--test`` nor ``--full``: the newest run of either) plus ``-k``, ``--split``."""
    parser = run_parser(name, description, quick_default=None)
    parser.add_argument("-k", "--ckpt_path", default=None, help="checkpoint save/ckpt-N (default: newest run's last)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="the split to predict (default %(default)s)")
    return parser


def run_prediction(name: str, args: argparse.Namespace, runs: str = "logs_train", outputs: str = "logs_predict") -> str:
    """Predict as DeepReg's ``demo_predict.py`` does; returns ``<dir>/<outputs>/<timestamp>/<split>``.

    The config is the one the checkpoint was trained with (its run's ``config.yaml``), so a quick run is
    predicted at the quick run's sizes. Prints the mean of predict's metrics over the pairs.
    """
    from tfreg.engine.predict import predict

    os.chdir(REPO_ROOT)
    folder = staged_demo.demo_dir(name, args.dir)
    ckpt = args.ckpt_path or latest_checkpoint(os.path.join(folder, runs), args.test, name)
    out = predict(
        gpu=args.gpu,
        gpu_allow_growth=True,
        ckpt_path=ckpt,
        split=args.split,
        batch_size=1,
        exp_name=f"{outputs}/{staged_demo.timestamp()}",
        config_path=None,
        save_nifti=True,
        save_png=False,
        log_dir=folder,
    )
    print(f"[demo_predict] checkpoint {ckpt}; predictions in {out}/")
    summary = staged_demo.column_means(os.path.join(out, "metrics.csv"), METRIC_COLUMNS)
    staged_demo.print_summary(f"{args.split} pairs", summary)
    return out

"""Get OASIS (neurite-oasis, 4-label maps) and convert it to DeepReg's unpaired layout for the WSSAMNet++ demo.

Run from anywhere::

    python demos/oasis_wssamnet_pp/demo_data.py                   # download (when online) and convert
    python demos/oasis_wssamnet_pp/demo_data.py --source ~/data/neurite-oasis   # an extracted release
    python demos/oasis_wssamnet_pp/demo_data.py --synthetic       # no network: a tiny synthetic release

The release is neurite-oasis v1.0 (Hoopes and Dalca, HyperMorph), whose ``aligned_seg4`` maps are the
4 labels of WSSAMNet++'s Table I (cortex, subcortical grey matter, white matter, CSF); Learn2Reg's OASIS
re-release has only the 35-label maps. The download is (about 3 GB; no checksum is published)::

    wget https://surfer.nmr.mgh.harvard.edu/ftp/data/neurite/data/neurite-oasis.v1.0.tar
    mkdir -p demos/oasis_wssamnet_pp/dataset_source/neurite-oasis
    tar -xf neurite-oasis.v1.0.tar -C demos/oasis_wssamnet_pp/dataset_source/neurite-oasis

Without ``--source`` or ``--synthetic`` the script runs these steps when the server answers, and prints
them otherwise. The conversion is ``data_scripts/learn2reg_oasis.py SOURCE dataset --labels 4 --split
paper`` (WSSAMNet++'s 314:50:50 subjects, seeded) into ``demos/oasis_wssamnet_pp/dataset/``::

    dataset/{train,valid,test}/images/<subject>.nii.gz    T1 (aligned_norm), 160 x 192 x 224, 1 mm
    dataset/{train,valid,test}/labels/<subject>.nii.gz    (X, Y, Z, 4) one-hot
    dataset/conversion.json, dataset/checksums.sha256

``--synthetic`` writes ``--cases`` brain phantoms (``data_scripts/synthetic_releases.py``) in
neurite-oasis' own layout into ``dataset_source/neurite-oasis-synthetic`` and converts them the same way,
with a split of about 2:1:1.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import urllib.request
from typing import Optional, Sequence

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import learn2reg_oasis, synthetic_releases  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "oasis_wssamnet_pp"
HOST = "surfer.nmr.mgh.harvard.edu"
URL = f"https://{HOST}/ftp/data/neurite/data/neurite-oasis.v1.0.tar"


def download_commands(source: str) -> str:
    return f"wget {URL}\nmkdir -p {source}\ntar -xf neurite-oasis.v1.0.tar -C {source}"


def download(source: str) -> str:
    """Fetch and extract neurite-oasis into ``source`` (the tar is removed afterwards, as DeepReg's demos do)."""
    os.makedirs(source, exist_ok=True)
    archive = os.path.join(os.path.dirname(source), "neurite-oasis.v1.0.tar")
    print(f"[demo_data] downloading {URL} (about 3 GB)")
    urllib.request.urlretrieve(URL, archive)
    with tarfile.open(archive) as tar:
        # the "data" filter (Python >= 3.11.4) refuses members that would land outside ``source``
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(source, **options)
    os.remove(archive)
    return source


def synthetic_split(cases: int) -> Sequence[int]:
    """About 2:1:1 train/valid/test subjects, at least 2 in each: unpaired data pairs subjects within a split."""
    if cases < 6:
        raise ValueError(f"--cases must be at least 6 (2 train, 2 valid, 2 test subjects), got {cases}")
    valid = test = max(2, cases // 4)
    return (cases - valid - test, valid, test)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = staged_demo.data_parser(
        __doc__,
        NAME,
        "an extracted neurite-oasis folder",
        8,
        "subjects",
        [32, 32, 32],
        "seed of the split (and of --synthetic)",
    )
    args = parser.parse_args(argv)

    folder = staged_demo.demo_dir(NAME, args.dir)
    dataset = os.path.join(folder, "dataset")
    try:
        staged_demo.clear_dataset(dataset, args.overwrite)
        if args.synthetic:
            source = os.path.join(folder, "dataset_source", "neurite-oasis-synthetic")
            shutil.rmtree(source, ignore_errors=True)
            synthetic_releases.write_release("neurite-oasis", source, args.cases, args.shape, args.seed)
            counts = synthetic_split(args.cases)
        else:
            source = args.source or os.path.join(folder, "dataset_source", "neurite-oasis")
            if not args.source and not os.path.isdir(source):
                if not staged_demo.network_available(HOST):
                    print(
                        f"[demo_data] {HOST} cannot be reached. Download neurite-oasis with:\n"
                        f"{download_commands(source)}\nthen rerun this script, or pass --synthetic.",
                        file=sys.stderr,
                    )
                    return 2
                download(source)
            if learn2reg_oasis.detect_layout(source) != "neurite":
                raise ValueError(
                    f"{source} is a Learn2Reg OASIS release, which has only 35-label maps; the demo (Table I of "
                    "WSSAMNet++) uses the 4-label maps of neurite-oasis"
                )
            total = len(learn2reg_oasis.neurite_subjects(source, 4))
            # WSSAMNet++'s 314:50:50, or its proportions for a release of another size
            valid = test = round(total * 50 / 414)
            counts = (total - valid - test, valid, test)
        splits = learn2reg_oasis.convert(
            source, dataset, split="paper", split_counts=counts, seed=args.seed, num_labels=4
        )
    except (ValueError, OSError) as err:
        print(f"[demo_data] error: {err}", file=sys.stderr)
        return 1
    print(f"[demo_data] {', '.join(f'{k}: {len(v)}' for k, v in splits.items())} subjects in {dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

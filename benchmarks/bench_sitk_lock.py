"""What the process-wide SimpleITK file lock costs parallel loading (``tfreg.data.sitk_io_lock``).

::

    python benchmarks/bench_sitk_lock.py            # prints the table
    python benchmarks/bench_sitk_lock.py --write    # also writes it into benchmarks/README.md

tfreg holds one lock around every SimpleITK file call, because concurrent calls can abort the process
(the CI's slow step died so once). The price is that threads cannot read files through SimpleITK at the
same time. This script measures it where it matters, in the loaders' own read function
(``tfreg.data.image_io.read_image``) called from a thread pool as tf.data's parallel map does:

- data: every NIfTI file of DeepReg's unpaired test folder (``$TFREG_TEST_DATA/deepreg_test/nifti/unpaired/
  train``): 14 uint8 images 64x64x60 and 14 float64 label files 64x64x60x3. For both, SimpleITK reads the
  header (under the lock) and tfreg's own NIfTI reader the voxels (without it); before 2026-12-04 18:40 UTC
  SimpleITK read the integer images' voxels too, under the lock (benchmarks/README.md has both runs);
- per round, all 28 files read once by ``--threads`` workers, with the lock and with the lock replaced by a
  no-op context (the old behaviour), the two modes alternating round by round in one process so that
  the machine's load affects both alike; the first round of each is a warm-up (file cache);
- reported: the median files per second over ``--rounds`` rounds, and the ratio of the two.

The no-op mode is what tfreg did before the lock; over a few hundred reads it does not crash in practice,
which is why the crash was rare.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from readme_block import write_block  # noqa: E402

#: modules that hold the lock under the name SITK_IO_LOCK (the no-op mode replaces it there)
LOCK_HOLDERS = ("tfreg.data.image_io", "tfreg.data.transform_io")


def data_files() -> list:
    root = os.environ.get("TFREG_TEST_DATA", str(REPO.parent / "shared" / "data"))
    files = sorted(glob.glob(os.path.join(root, "deepreg_test", "nifti", "unpaired", "train", "*", "*.nii.gz")))
    if not files:
        raise SystemExit(f"no NIfTI files under {root}/deepreg_test/nifti/unpaired/train (set TFREG_TEST_DATA)")
    return files


def one_round(files, threads: int) -> float:
    """Files per second of reading every file once with ``threads`` workers."""
    from tfreg.data.image_io import read_image

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(read_image, files):
            pass
    return len(files) / (time.perf_counter() - start)


def measure(files, threads: int, rounds: int) -> dict:
    import importlib

    modules = [importlib.import_module(name) for name in LOCK_HOLDERS]
    locks = [module.SITK_IO_LOCK for module in modules]
    rates = {"lock": [], "no lock": []}
    try:
        for index in range(rounds + 1):
            for mode in ("lock", "no lock"):
                for module, lock in zip(modules, locks):
                    module.SITK_IO_LOCK = lock if mode == "lock" else contextlib.nullcontext()
                rate = one_round(files, threads)
                if index:  # round 0 warms the file cache
                    rates[mode].append(rate)
    finally:
        for module, lock in zip(modules, locks):
            module.SITK_IO_LOCK = lock
    return {mode: statistics.median(values) for mode, values in rates.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    files = data_files()
    load_before = os.getloadavg()
    rows = []
    for threads in args.threads:
        rates = measure(files, threads, args.rounds)
        rows.append(
            f"| {threads} | {rates['no lock']:.0f} | {rates['lock']:.0f} | {rates['lock'] / rates['no lock']:.2f} |"
        )
    load_after = os.getloadavg()
    text = (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, {os.cpu_count()} CPU cores "
        f"(shared), load {load_before[0]:.1f} -> {load_after[0]:.1f}; {len(files)} NIfTI files (14 uint8 images "
        f"64x64x60, 14 float64 labels 64x64x60x3) read with `read_image`; median of {args.rounds} rounds.\n\n"
        "| threads | files/s without the lock | files/s with the lock | ratio |\n|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + "\n"
    )
    print(text)
    if args.write:
        write_block("bench_sitk_lock", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

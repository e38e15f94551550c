"""Time and peak memory of the similarity losses (value and gradient) on CPU, one fresh process per case.

    python benchmarks/bench_similarity.py                        # 128x128x96 and 160x192x224
    python benchmarks/bench_similarity.py --shape 64 64 48       # a reduced run
    python benchmarks/bench_similarity.py --only macmind mind-ssc --repeat 5
    python benchmarks/bench_similarity.py --ratio macmind mind-ssc --repeat 9   # alternated, one process
    python benchmarks/bench_similarity.py --macmind-report --compare 8ca9bfc   # before/after, one command

Each (loss, shape) runs in a fresh child process (CPU only: ``CUDA_VISIBLE_DEVICES=""``). The child builds
two uniform random volumes ``(1, *shape)`` (batch 1, one channel), then calls ``step`` = loss value and
its gradient w.r.t. the moving image inside one ``tf.function``: the first call (tracing + run), one
warm-up call, then ``--repeat`` timed calls; the time is their median. Memory is the child's peak resident
set size as the parent reads it from ``os.wait4`` (``ru_maxrss``), next to the child's RSS just before its
first call (Python, TensorFlow, the inputs), so ``peak - start`` is what the loss itself needed at its
peak. The parent kills a child whose RSS passes ``--max-rss-gib`` (default 8) or that runs longer than
``--timeout`` seconds (default 600), and records that in the table instead of a number.

DeepReg's dense GMI (voxels x bins softmax Parzen weights and one matmul, written here with TensorFlow as
in DeepReg) is the baseline, measured in the same run. Target (issue 5): macMIND within 3x MIND-SSC.

``--macmind-report`` measures what the macMIND target needs in one command: the macmind / mind-ssc time
ratio (``--ratio``'s alternated rounds in one process) at each ``--shape`` (default 64x64x48 and
128x128x96), then the peak RSS of each loss's value and gradient at ``--memory-shape`` (default
160x192x224), each case in its own process, with the load average (``uptime``) before each measurement.
With ``--compare REF`` the same is measured first for the ``tfreg`` package of git revision ``REF``
(extracted with ``git archive`` into a temporary folder that the children import instead of the working
tree), so before and after come from one run on the same machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling: watched_child (standard library only)
from watched_child import rss_kib, run_watched  # noqa: E402

#: The folder whose ``tfreg`` the children import (``--compare`` points it at an extracted old revision).
ROOT = Path(os.environ.get("TFREG_BENCH_ROOT", str(REPO)))

#: name -> (registered loss config, or None for DeepReg's dense GMI)
CASES = {
    "ssd": {"name": "ssd"},
    "gncc": {"name": "gncc"},
    "ncc": {"name": "ncc"},
    "lncc": {"name": "lncc"},
    "ssim": {"name": "ssim"},
    "ngf": {"name": "ngf"},
    "mind": {"name": "mind"},
    "mind-ssc": {"name": "mind-ssc"},
    "macmind": {"name": "macmind"},
    "macmind (recompute)": {"name": "macmind", "recompute": True},
    "gmi (tfreg, chunked)": {"name": "gmi"},
    "mi (gaussian)": {"name": "mi"},
    "mi (bspline)": {"name": "mi", "kernel": "bspline"},
    "nmi (gaussian)": {"name": "mi", "normalized": True},
    "local mi (bspline, 16^3 patches)": {"name": "mi", "kernel": "bspline", "patch_size": 16},
    "gmi (DeepReg dense, baseline)": None,
}


def deepreg_dense_gmi(tf, y_true, y_pred, num_bins=23, sigma_ratio=0.5):
    """DeepReg's GlobalMutualInformation: dense ``(B, voxels, bins)`` softmax weights, negated score."""
    centres = tf.linspace(0.0, 1.0, num_bins)
    sigma = sigma_ratio / (num_bins - 1)
    preterm = 1.0 / (2.0 * sigma**2)
    batch = tf.shape(y_true)[0]
    t = tf.reshape(tf.clip_by_value(y_true, 0.0, 1.0), (batch, -1, 1))
    p = tf.reshape(tf.clip_by_value(y_pred, 0.0, 1.0), (batch, -1, 1))
    wt = tf.nn.softmax(-preterm * tf.square(t - centres), axis=-1)
    wp = tf.nn.softmax(-preterm * tf.square(p - centres), axis=-1)
    n = tf.cast(tf.shape(wt)[1], tf.float32)
    pab = tf.matmul(wt, wp, transpose_a=True) / n
    pa = tf.reduce_mean(wt, axis=1, keepdims=True)
    pb = tf.reduce_mean(wp, axis=1, keepdims=True)
    papb = tf.matmul(pa, pb, transpose_a=True) + 1e-5
    return -tf.reduce_sum(pab * tf.math.log(pab / papb + 1e-5), axis=(1, 2))


def run_case(name: str, shape, repeat: int) -> dict:
    """Runs in the child: first call, warm-up, ``repeat`` timed calls of value + gradient."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import tensorflow as tf

    from tfreg.registry import REGISTRY

    rng = np.random.default_rng(0)
    t = tf.constant(rng.random((1, *shape)).astype(np.float32))
    p = tf.Variable(rng.random((1, *shape)).astype(np.float32))
    config = CASES[name]
    if config is None:
        fn = lambda a, b: deepreg_dense_gmi(tf, a, b)  # noqa: E731
    else:
        fn = REGISTRY.build_loss(dict(config))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(fn(t, p))
        return value, tape.gradient(value, p)

    start_kib = rss_kib()
    t0 = time.perf_counter()
    value, _ = step()
    first = time.perf_counter() - t0
    step()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"time_s": statistics.median(times), "first_s": first, "start_kib": start_kib, "value": float(value)}


def run_ratio(names, shape, repeat: int) -> dict:
    """Runs in the child: two cases' steps called alternately; the median of the per-round time ratios.

    On a shared machine the load changes between (and during) the fresh-process cases, so the ratio of
    two separately measured medians is noisy; alternating the two steps in one process exposes both to
    the same load, round by round.
    """
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import tensorflow as tf

    from tfreg.registry import REGISTRY

    rng = np.random.default_rng(0)
    t = tf.constant(rng.random((1, *shape)).astype(np.float32))
    p = tf.Variable(rng.random((1, *shape)).astype(np.float32))

    def make(name):
        fn = REGISTRY.build_loss(dict(CASES[name]))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(fn(t, p))
            return value, tape.gradient(value, p)

        return step

    steps = [make(n) for n in names]
    values = [float(step()[0]) for step in steps]
    for step in steps:
        step()
    times = [[], []]
    for _ in range(repeat):
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            step()
            times[i].append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(*times)]
    return {
        "median_s": [statistics.median(x) for x in times],
        "min_s": [min(x) for x in times],
        "ratio_median": statistics.median(ratios),
        "ratio_of_min": min(times[0]) / min(times[1]),
        "values": values,
    }


def _child_env(root=None) -> dict:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    if root is not None:
        env["TFREG_BENCH_ROOT"] = str(root)
    return env


def load_average() -> str:
    """The 1-minute load average (``/proc/loadavg``, what ``uptime`` prints first)."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def measure_ratio(names, shape, repeat: int, root=None) -> dict:
    """:func:`run_ratio` in a child process (importing ``tfreg`` from ``root``)."""
    code = (
        f"import sys, json; sys.argv = ['x']; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); "
        f"import bench_similarity as b; print(json.dumps(b.run_ratio({list(names)!r}, {list(shape)!r}, {repeat})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(root), cwd=REPO)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"failed": (out.stderr.strip().splitlines() or ["?"])[-1][:80]}


def extract_tree(ref: str, folder: str) -> Path:
    """``git archive REF tfreg`` unpacked into ``folder``; returns the folder (a root for the children)."""
    archive = subprocess.run(["git", "archive", ref, "tfreg"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return Path(folder)


def macmind_report(args) -> None:
    """Ratio (alternated, one process per shape and tree) and 160x192x224 peaks (one process per case)."""
    shapes = args.shape or [[64, 64, 48], [128, 128, 96]]
    memory_shape = args.memory_shape
    with tempfile.TemporaryDirectory() as tmp:
        trees = [(f"{args.compare} (before)", extract_tree(args.compare, tmp))] if args.compare else []
        trees.append(("working tree (after)", None))
        print(
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
            f"{os.cpu_count()} CPU cores visible; value + gradient, batch 1, float32; ratio = median over "
            f"{args.repeat} alternated rounds in one process; load = 1-minute load average before each line.\n"
        )
        print("| tree | shape | load | macmind (s) | mind-ssc (s) | macmind / mind-ssc | ratio of minima | value |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
        for label, root in trees:
            for s in shapes:
                load = load_average()
                r = measure_ratio(["macmind", "mind-ssc"], s, args.repeat, root)
                shape_text = "x".join(map(str, s))
                if "failed" in r:
                    print(f"| {label} | {shape_text} | {load} | failed: {r['failed']} | | | | |", flush=True)
                    continue
                print(
                    f"| {label} | {shape_text} | {load} | {r['median_s'][0]:.3f} | {r['median_s'][1]:.3f} | "
                    f"{r['ratio_median']:.2f} | {r['ratio_of_min']:.2f} | {r['values'][0]:.6f} |",
                    flush=True,
                )
        print(f"\n| tree | loss | {'x'.join(map(str, memory_shape))}: load | time (s) | peak / start (MiB) |")
        print("|---|---|---:|---:|---:|")
        for label, root in trees:
            for name in ("macmind", "mind-ssc"):
                load = load_average()
                r = measure(name, memory_shape, 1, args.timeout, int(args.max_rss_gib * 2**20), root)
                if "failed" in r:
                    cells = [r["failed"], f"{r['peak_kib'] / 1024:.0f} / -"]
                else:
                    cells = [f"{r['time_s']:.2f}", f"{r['peak_kib'] / 1024:.0f} / {r['start_kib'] / 1024:.0f}"]
                print(f"| {label} | {name} | {load} | " + " | ".join(cells) + " |", flush=True)


def measure(name: str, shape, repeat: int, timeout: float, max_rss_kib: int, root=None) -> dict:
    """Runs one case in a child process; returns its result with ``peak_kib`` or a ``failed`` reason."""
    env = _child_env(root)
    cmd = [sys.executable, __file__, "--case", name, "--repeat", str(repeat), "--shape", *map(str, shape)]
    run = run_watched(cmd, env, REPO, timeout, max_rss_kib)
    killed, stdout, stderr = run.killed, run.stdout, run.stderr
    result = {"peak_kib": run.peak_kib, "wall_s": run.wall_s}
    if killed:
        result["failed"] = killed
        return result
    try:
        result.update(json.loads(stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        last = (stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        result["failed"] = last[:80]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, action="append", help="volume shape (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls after the warm-up (median)")
    parser.add_argument("--only", nargs="*", help="subset of case names")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case before it is killed")
    parser.add_argument("--max-rss-gib", type=float, default=8.0, help="RSS at which a case is killed")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument(
        "--ratio",
        nargs=2,
        metavar=("A", "B"),
        help="instead of the table: time(A) / time(B), the two steps alternated in one process per shape",
    )
    parser.add_argument(
        "--macmind-report",
        action="store_true",
        help="macmind / mind-ssc time ratio per --shape and both losses' peak RSS at --memory-shape",
    )
    parser.add_argument("--memory-shape", type=int, nargs=3, default=[160, 192, 224], help="for --macmind-report")
    parser.add_argument("--compare", metavar="REF", help="with --macmind-report: also measure tfreg at git REF")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.macmind_report:
        macmind_report(args)
        return
    shapes = args.shape or [[128, 128, 96], [160, 192, 224]]
    if args.case:
        print(json.dumps(run_case(args.case, shapes[0], args.repeat)))
        return
    if args.ratio:
        for s in shapes:
            r = measure_ratio(args.ratio, s, args.repeat)
            if "failed" in r:
                print(f"{'x'.join(map(str, s))}: failed: {r['failed']}")
                continue
            a, b = args.ratio
            print(
                f"{'x'.join(map(str, s))}: {a} / {b} = {r['ratio_median']:.2f} (median of {args.repeat} alternated "
                f"rounds; ratio of minima {r['ratio_of_min']:.2f}); median {r['median_s'][0]:.3f} s vs "
                f"{r['median_s'][1]:.3f} s, min {r['min_s'][0]:.3f} s vs {r['min_s'][1]:.3f} s",
                flush=True,
            )
        return
    names = [n for n in CASES if not args.only or n in args.only]
    print(
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPU cores visible, Python "
        f"{platform.python_version()}; value + gradient, batch 1, float32; median of {args.repeat} calls after "
        f"a warm-up; peak = child's ru_maxrss, start = its RSS before the first call.\n"
    )
    header = "| loss | " + " | ".join(f"{'x'.join(map(str, s))}: time (s) | peak / start (MiB)" for s in shapes) + " |"
    print(header)
    print("|---|" + "---:|---:|" * len(shapes))
    raw = {}
    for name in names:
        cells = []
        for s in shapes:
            r = measure(name, s, args.repeat, args.timeout, int(args.max_rss_gib * 2**20))
            raw[f"{name} @ {'x'.join(map(str, s))}"] = r
            if "failed" in r:
                cells += [r["failed"], f"{r['peak_kib'] / 1024:.0f} / -"]
            else:
                cells += [f"{r['time_s']:.3f}", f"{r['peak_kib'] / 1024:.0f} / {r['start_kib'] / 1024:.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    for s in shapes:
        key = "x".join(map(str, s))
        a, b = raw.get(f"macmind @ {key}", {}), raw.get(f"mind-ssc @ {key}", {})
        if "time_s" in a and "time_s" in b:
            print(f"\n- {key}: macmind / mind-ssc time {a['time_s'] / b['time_s']:.2f} (target <= 3)")
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()

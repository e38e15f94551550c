"""Time and peak memory of the multi-modal similarity losses (value and gradient) on CPU.

    python benchmarks/bench_similarity.py                      # 128x128x96 and 160x192x224
    python benchmarks/bench_similarity.py --shape 64 64 48     # a reduced run

Each (loss, shape) runs in a fresh Python process: it builds two random smooth volumes, runs the loss
and its gradient once inside ``tf.function`` (tracing), then ``--repeat`` times; the time is the median
and the memory the process's peak RSS minus its RSS before the first call. DeepReg's dense GMI
formulation (voxels x bins Parzen weights, one matmul) is measured in the same run as the baseline.
Target (issue 5): macMIND within 3x the cost of MIND-SSC.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "ssd": ("tfreg.losses.image", "SumSquaredDifference", {}),
    "ncc": ("tfreg.losses.ncc", "GlobalNCCLoss", {}),
    "ssim": ("tfreg.losses.ssim", "SSIMLoss", {}),
    "ngf": ("tfreg.losses.ngf", "NGFLoss", {}),
    "mind": ("tfreg.losses.mind", "MINDLoss", {}),
    "mind-ssc": ("tfreg.losses.mind", "MINDSSCLoss", {}),
    "macmind": ("tfreg.losses.macmind", "MacMINDLoss", {}),
    "mi (gaussian)": ("tfreg.losses.mi", "MutualInformationLoss", {}),
    "mi (bspline)": ("tfreg.losses.mi", "MutualInformationLoss", {"kernel": "bspline"}),
    "mi (local 16)": ("tfreg.losses.mi", "MutualInformationLoss", {"kernel": "bspline", "patch_size": 16}),
    "filtered log+lncc": ("tfreg.losses.filtered", "FilteredLoss", {"loss": {"name": "lncc"}}),
    "gmi (DeepReg dense)": (None, None, {}),
}


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_case(name: str, shape, repeat: int) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(REPO))
    import importlib

    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    t = tf.constant(rng.random((1, *shape)).astype(np.float32))
    p = tf.Variable(rng.random((1, *shape)).astype(np.float32))
    module, cls, kwargs = CASES[name]
    if module is None:

        def fn(a, b, nb=23):
            c = tf.linspace(0.0, 1.0, nb)
            pre = 1.0 / (2 * (0.5 / (nb - 1)) ** 2)
            wa = tf.nn.softmax(-pre * (tf.reshape(tf.clip_by_value(a, 0, 1), (1, -1, 1)) - c) ** 2, -1)
            wb = tf.nn.softmax(-pre * (tf.reshape(tf.clip_by_value(b, 0, 1), (1, -1, 1)) - c) ** 2, -1)
            pab = tf.matmul(wa, wb, transpose_a=True) / tf.cast(tf.shape(wa)[1], tf.float32)
            q = tf.reduce_mean(wa, 1)[:, :, None] * tf.reduce_mean(wb, 1)[:, None, :]
            return -tf.reduce_sum(pab * tf.math.log((pab + 1e-5) / (q + 1e-5) + 1e-5), (1, 2))

    else:
        fn = getattr(importlib.import_module(module), cls)(**kwargs)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(fn(t, p))
        return value, tape.gradient(value, p)

    before = _rss_kib()
    step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"time_s": statistics.median(times), "peak_mib": (peak - before) / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, action="append", help="volume shape (repeatable)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="subset of case names")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = args.shape or [[128, 128, 96], [160, 192, 224]]
    if args.case:
        print(json.dumps(run_case(args.case, shapes[0], args.repeat)))
        return
    print(f"CPU ({os.cpu_count()} cores visible), value + gradient, median of {args.repeat}; peak RSS above start.\n")
    header = "| loss | " + " | ".join(f"{'x'.join(map(str, s))} time (s) | peak (MiB)" for s in shapes) + " |"
    print(header)
    print("|---" * (1 + 2 * len(shapes)) + "|")
    for name in CASES:
        if args.only and name not in args.only:
            continue
        cells = []
        for s in shapes:
            cmd = [sys.executable, __file__, "--case", name, "--repeat", str(args.repeat), "--shape", *map(str, s)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            try:
                r = json.loads(out.stdout.strip().splitlines()[-1])
                cells += [f"{r['time_s']:.2f}", f"{r['peak_mib']:.0f}"]
            except (IndexError, ValueError):
                cells += ["failed", (out.stderr.strip().splitlines() or ["?"])[-1][:60]]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

"""Time and peak memory of tfreg's core ops and losses on a 160x192x224 volume, beside baselines.

Run from the repository root (inside the project's environment, e.g. after ./scripts/test.sh):

    python benchmarks/bench_core.py            # prints a Markdown table
    python benchmarks/bench_core.py --write    # also replaces the table in benchmarks/README.md
    python benchmarks/bench_core.py --warp-ratios 9   # warp time ratios, all in one process, 9 rounds

Each case runs in a fresh Python process so its peak memory is its own: the process allocates its
inputs, resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), runs the case once to warm
up (tracing/compilation), then ``--repeat`` more times; the reported time is the median of those, the
reported memory the peak RSS above the level before the first call. Baselines (SciPy's
``map_coordinates(order=1)``, seven separate warps, DeepReg's dense GMI formulation) run the same way
in the same invocation, so the comparison is on one machine at one moment.

TensorFlow cases run inside ``tf.function`` (graph mode), as they do during Keras training.

On a shared machine the load changes between the per-case processes, so time ratios from the table are
noisy; ``--warp-ratios`` times map_coordinates and the warp cases alternately in one process, round by
round, and reports each round's ratios beside the load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from readme_block import write_block  # benchmarks/ is on sys.path when a script here runs

SHAPE = (160, 192, 224)

CASES = {
    "warp": "tfreg.ops.warp (linear, 1 channel, random DDF)",
    "warp_grad": "tfreg.ops.warp, value and gradient w.r.t. the DDF (the instance-optimisation step)",
    "warp_before": "the warp before issue 18 (corner table, weight table, per-component DDF slices)",
    "warp_before_grad": "the warp before issue 18, value and gradient w.r.t. the DDF",
    "map_coordinates": "scipy.ndimage.map_coordinates(order=1), same volume and coordinates",
    "integrate_dvf": "tfreg.ops.integrate_dvf (7 steps, 3-channel DVF)",
    "seven_warps": "7 x tfreg.ops.warp of a 3-channel field, each by a different DDF (the integration's warps alone)",
    "lncc": "tfreg lncc loss (kernel 9, rectangular), value only",
    "lncc_grad": "tfreg lncc loss, value and gradient",
    "gmi": "tfreg gmi loss (23 bins), value only",
    "gmi_grad": "tfreg gmi loss, value and gradient",
    "gmi_dense": "DeepReg's dense GMI (voxels x bins weights, one matmul), value only",
    "gmi_dense_grad": "DeepReg's dense GMI, value and gradient",
}


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    # Return freed heap pages to the OS first, so later allocations show up as new RSS instead of
    # silently reusing memory freed while the inputs were built.
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    # Writing 5 resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _dense_gmi(tf, y_true, y_pred, num_bins=23, sigma_ratio=0.5):
    """DeepReg's GMI as written there: dense (voxels x bins) Parzen weights and one matmul."""
    eps = 1e-5
    centers = tf.linspace(0.0, 1.0, num_bins)
    sigma = float(sigma_ratio) / (num_bins - 1)
    pre = 1.0 / (2.0 * sigma**2)
    b = tf.shape(y_true)[0]
    a = tf.reshape(tf.clip_by_value(y_true, 0.0, 1.0), (b, -1, 1))
    p = tf.reshape(tf.clip_by_value(y_pred, 0.0, 1.0), (b, -1, 1))
    n = tf.cast(tf.shape(a)[1], tf.float32)
    wa = tf.exp(-pre * tf.square(a - centers))
    wa = wa / tf.reduce_sum(wa, axis=-1, keepdims=True)
    wp = tf.exp(-pre * tf.square(p - centers))
    wp = wp / tf.reduce_sum(wp, axis=-1, keepdims=True)
    pab = tf.matmul(wa, wp, transpose_a=True) / n
    pa = tf.reduce_mean(wa, axis=1, keepdims=True)
    pb = tf.reduce_mean(wp, axis=1, keepdims=True)
    papb = tf.matmul(pa, pb, transpose_a=True)
    return tf.reduce_sum(pab * tf.math.log((pab + eps) / (papb + eps) + eps), axis=[1, 2])


def _warp_before(image, ddf):
    """tfreg's linear zero-boundary warp as it was before issue 18, for a batch-1 3-D image (B, *S, C):
    the 8 corners of every cell packed into one table row and gathered at once, then multiplied by an
    (8 x voxels) weight table, transposed to match, and summed; the DDF's components sliced out one by one."""
    from keras import ops

    sizes = tuple(image.shape[1:4])
    channels = image.shape[-1]
    padded = ops.pad(image, [[0, 0], [0, 1], [0, 1], [0, 1], [0, 0]], mode="symmetric")
    corners = []
    for bits in itertools.product((0, 1), repeat=3):
        corners.append(padded[(slice(None),) + tuple(slice(1, None) if b else slice(0, -1) for b in bits)])
    table = ops.reshape(ops.transpose(ops.stack(corners, axis=0), (1, 2, 3, 4, 0, 5)), (-1, 8 * channels))
    strides = (sizes[1] * sizes[2], sizes[2], 1)
    inside, base, fractions = None, None, []
    for a, d in enumerate(sizes):
        x = ddf[..., a] + ops.reshape(ops.arange(d, dtype="float32"), (-1,) + (1,) * (2 - a))
        xc = ops.clip(x, 0.0, float(d - 1))
        ok = ops.equal(x, xc)
        inside = ok if inside is None else ops.logical_and(inside, ok)
        lo = ops.stop_gradient(ops.floor(xc))
        fractions.append(xc - lo)
        index = ops.clip(ops.cast(lo, "int32"), 0, d - 1) * strides[a]
        base = index if base is None else base + index
    out = ops.take(table, base, axis=0)
    fractions = [ops.where(inside, f, 0.0) for f in fractions]
    weights = [None]
    for a, f in enumerate(fractions):
        w_lo = ops.where(inside, 1.0 - f, 0.0) if a == 0 else 1.0 - f
        weights = [c for w in weights for c in ((w_lo, f) if w is None else (w * w_lo, w * f))]
    weights = ops.transpose(ops.stack(weights, axis=0), (1, 2, 3, 4, 0))
    out = ops.reshape(out, (1, *sizes, 8, channels))
    return ops.sum(out * ops.expand_dims(weights, -1), axis=-2)


def _warp_value_and_grad(tf, fn, image, ddf):
    """``tf.function`` of the mean warped intensity and its gradient w.r.t. the DDF (a variable)."""
    var = tf.Variable(ddf)

    def value_and_grad():
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(fn(image, var))
        return value, tape.gradient(value, var)

    return tf.function(value_and_grad)


def warp_ratios(rounds: int) -> str:
    """Time ratios of the warp cases to SciPy, measured in one process, alternating the cases each round so
    that all see the same load; returns a Markdown table with the 1-minute load average beside each round."""
    import numpy as np
    from scipy import ndimage

    from tfreg.ops.warp import warp

    rng = np.random.default_rng(0)
    import tensorflow as tf  # after tfreg, which chooses TensorFlow's CPU kernels (tfreg.cpu_kernels)

    image = rng.random((1, *SHAPE, 1), dtype=np.float32)
    ddf = (3.0 * rng.standard_normal((1, *SHAPE, 3))).astype(np.float32)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in SHAPE], indexing="ij"), 0)
    coords = grid + np.moveaxis(ddf[0], -1, 0)
    t_image, t_ddf = tf.constant(image), tf.constant(ddf)
    fns = {
        "map_coordinates": lambda: ndimage.map_coordinates(image[0, ..., 0], coords, order=1, mode="constant"),
        "warp": tf.function(lambda: warp(t_image, t_ddf)),
        "warp_before": tf.function(lambda: _warp_before(t_image, t_ddf)),
        "warp_grad": _warp_value_and_grad(tf, warp, t_image, t_ddf),
        "warp_before_grad": _warp_value_and_grad(tf, _warp_before, t_image, t_ddf),
    }
    for fn in fns.values():  # trace and warm up
        tf.nest.map_structure(np.asarray, fn())
    lines = [
        "| round | load | " + " | ".join(f"{k} (s)" for k in fns) + " | warp / map_coordinates | "
        "warp_before / map_coordinates | warp_grad / warp_before_grad |",
        "|---:|---:|" + "---:|" * (len(fns) + 3),
    ]
    ratios = {"warp": [], "before": [], "grad": []}
    for r in range(rounds):
        load = float(open("/proc/loadavg").read().split()[0])
        times = {}
        for name in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            t0 = time.perf_counter()
            tf.nest.map_structure(np.asarray, fns[name]())
            times[name] = time.perf_counter() - t0
        row = [
            times["warp"] / times["map_coordinates"],
            times["warp_before"] / times["map_coordinates"],
            times["warp_grad"] / times["warp_before_grad"],
        ]
        for key, value in zip(ratios, row):
            ratios[key].append(value)
        cells = " | ".join(f"{times[k]:.3f}" for k in fns)
        lines.append(f"| {r + 1} | {load:.2f} | {cells} | {row[0]:.2f} | {row[1]:.2f} | {row[2]:.2f} |")
    medians = " | ".join(f"{statistics.median(v):.2f}" for v in ratios.values())
    lines.append(f"| median | | {' | '.join('' for _ in fns)} | {medians} |")
    return "\n".join(lines) + "\n"


def run_case(name: str, repeat: int) -> dict:
    """Runs one case in this process; returns times (s) and peak memory (MiB)."""
    import numpy as np

    import tfreg  # noqa: F401  (before TensorFlow, whose CPU kernels it chooses: tfreg.cpu_kernels)

    rng = np.random.default_rng(0)
    image = rng.random((1, *SHAPE, 1), dtype=np.float32)
    fixed = np.clip(image + 0.1 * rng.standard_normal(image.shape, dtype=np.float32), 0, 1)
    ddf = (3.0 * rng.standard_normal((1, *SHAPE, 3))).astype(np.float32)

    if name == "map_coordinates":
        from scipy import ndimage

        grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in SHAPE], indexing="ij"), 0)
        coords = grid + np.moveaxis(ddf[0], -1, 0)
        vol = image[0, ..., 0]
        fn = lambda: ndimage.map_coordinates(vol, coords, order=1, mode="constant", cval=0.0)  # noqa: E731
    else:
        import tensorflow as tf

        from tfreg.ops.integrate import integrate_dvf
        from tfreg.ops.warp import warp
        from tfreg.registry import REGISTRY

        t_image, t_fixed, t_ddf = (tf.constant(x) for x in (image, fixed, ddf))
        small_dvf = tf.constant(ddf * 0.3)
        if name in ("warp", "warp_before"):
            warp_fn = warp if name == "warp" else _warp_before
            g = tf.function(lambda: warp_fn(t_image, t_ddf))
        elif name in ("warp_grad", "warp_before_grad"):
            warp_fn = warp if name == "warp_grad" else _warp_before
            g = _warp_value_and_grad(tf, warp_fn, t_image, t_ddf)
        elif name == "integrate_dvf":
            g = tf.function(lambda: integrate_dvf(small_dvf, num_steps=7))
        elif name == "seven_warps":
            # Seven different fields, as in an integration where every step warps by a new DDF; one
            # shared field would let the graph compute the sampling coordinates once for all seven.
            fields = [tf.constant(ddf * (0.3 + 0.01 * k)) for k in range(7)]

            def seven():
                out = small_dvf
                for field in fields:
                    out = warp(out, field)
                return out

            g = tf.function(seven)
        else:
            base = name.replace("_grad", "")
            if base == "gmi_dense":
                loss = lambda t, p: _dense_gmi(tf, t, p)  # noqa: E731
            else:
                built = REGISTRY.build_loss({"name": base})
                loss = lambda t, p: built(t, p)  # noqa: E731
            if name.endswith("_grad"):
                var = tf.Variable(t_image)

                def value_and_grad():
                    with tf.GradientTape() as tape:
                        value = tf.reduce_mean(loss(t_fixed, var))
                    return value, tape.gradient(value, var)

                g = tf.function(value_and_grad)
            else:
                g = tf.function(lambda: loss(t_fixed, t_image))

        def fn():
            out = g()
            # Force completion: TF ops are asynchronous only on GPU, but be explicit.
            tf.nest.map_structure(lambda t: t.numpy(), out)
            return out

    _reset_peak()
    before = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    peak = _rss_kib("VmHWM")
    return {
        "case": name,
        "first_s": first,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "peak_mib": (peak - before) / 1024.0,
    }


def _in_subprocess(name: str, repeat: int) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, __file__, "--case", name, "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(results: list, repeat: int) -> str:
    by = {r["case"]: r for r in results}
    lines = [
        f"Volume {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} (batch 1), float32, "
        f"CPU: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; median of {repeat} runs after one warm-up; peak = RSS above the "
        f"pre-call level, in a fresh process per case.",
        "",
        "| case | what | median time (s) | first call (s) | peak memory (MiB) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| `{r['case']}` | {CASES[r['case']]} | {r['median_s']:.3f} | {r['first_s']:.3f} | {r['peak_mib']:.0f} |"
        )
    lines.append("")
    checks = []
    if "warp" in by and "map_coordinates" in by:
        ratio = by["warp"]["median_s"] / by["map_coordinates"]["median_s"]
        checks.append(f"- warp / map_coordinates time: {ratio:.2f} (target <= 1)")
    for suffix in ("", "_grad"):
        a, b = by.get("warp" + suffix), by.get("warp_before" + suffix)
        if a and b:
            checks.append(
                f"- warp{suffix} / warp_before{suffix}: time {a['median_s'] / b['median_s']:.2f}, "
                f"peak memory {a['peak_mib'] / max(b['peak_mib'], 1e-9):.2f}"
            )
    if "integrate_dvf" in by and "seven_warps" in by:
        ratio = by["integrate_dvf"]["median_s"] / by["seven_warps"]["median_s"]
        checks.append(f"- integrate_dvf / seven warps time: {ratio:.2f} (target <= 1)")
    for suffix in ("", "_grad"):
        a, b = by.get("gmi" + suffix), by.get("gmi_dense" + suffix)
        if a and b:
            checks.append(
                f"- gmi{suffix} / dense peak memory: {a['peak_mib'] / max(b['peak_mib'], 1e-9):.3f} "
                f"(target <= 0.2); time ratio {a['median_s'] / b['median_s']:.2f}"
            )
    return "\n".join(lines + checks) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=sorted(CASES), help="run one case in this process (internal)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="cases to run (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case after the warm-up")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument(
        "--warp-ratios", type=int, metavar="ROUNDS", help="only the warp time ratios, all cases in one process"
    )
    args = parser.parse_args()
    if args.warp_ratios:
        print(warp_ratios(args.warp_ratios))
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.repeat)))
        return
    results = []
    for name in args.cases:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.append(_in_subprocess(name, args.repeat))
    table = _table(results, args.repeat)
    print(table)
    if args.write:
        write_block("bench_core", table)


if __name__ == "__main__":
    main()

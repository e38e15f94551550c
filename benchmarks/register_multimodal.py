"""Evidence that the multi-modal losses register: recover a known deformation across contrasts.

A real brain slice (``brain_scan/test_scan.npz`` in ``$TFREG_TEST_DATA``, default ``<repo>/../shared/data``)
is the moving image. The fixed image is a smoothly deformed copy of it rendered in a synthetic second
contrast (a non-monotone intensity map: tissue contrast inverted, background kept dark, plus noise), so
intensities do not correspond and SSD is the wrong criterion. For each similarity, a dense
displacement field is optimised directly (no network): ``u = G_sigma * theta`` (Gaussian-smoothed
parameters, the regulariser), ``loss = sim(fixed, warp(moving, u))``, Adam on ``theta``. The table
reports the mean and the 90th percentile of the end-point error ``|u - u_true|`` (voxels) inside the
brain (moving intensity > 0.05), starting from the identity.

    python benchmarks/register_multimodal.py            # 2-D slice, Markdown table on stdout
    python benchmarks/register_multimodal.py --steps 150 --scale 2

This is a script, not a test: it takes about a minute per loss on two busy CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402  (the script drives the optimisation with a GradientTape)

from tfreg.losses.image import SumSquaredDifference  # noqa: E402
from tfreg.losses.macmind import MacMINDLoss  # noqa: E402
from tfreg.losses.mi import MutualInformationLoss  # noqa: E402
from tfreg.losses.mind import MINDSSCLoss  # noqa: E402
from tfreg.ops.filters import gaussian_smooth  # noqa: E402
from tfreg.ops.warp import warp  # noqa: E402


def load_slice(scale: int) -> np.ndarray:
    root = Path(os.environ.get("TFREG_TEST_DATA", REPO.parent / "shared" / "data"))
    path = root / "brain_scan" / "test_scan.npz"
    if not path.is_file():
        print(f"skipped: {path} not found (set TFREG_TEST_DATA to the shared/data folder)")
        sys.exit(0)
    vol = np.load(path)["vol"].astype(np.float32)
    img = vol[vol.shape[0] // 2]  # the middle slice along the first axis: 192 x 224
    if scale > 1:  # block mean, so the slice stays a faithful (less noisy) image
        h, w = (s // scale * scale for s in img.shape)
        img = img[:h, :w].reshape(h // scale, scale, w // scale, scale).mean((1, 3))
    return img / img.max()


def smooth_field(shape, amplitude: float, sigma: float, seed: int) -> np.ndarray:
    """A smooth random DDF (voxels) with maximum norm ``amplitude``."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(1, *shape, 2)).astype(np.float32)
    field = np.asarray(gaussian_smooth(noise, sigma, boundary="replicate"))
    return (field * amplitude / np.linalg.norm(field, axis=-1).max()).astype(np.float32)


def second_contrast(img: np.ndarray, seed: int) -> np.ndarray:
    """T1-to-T2-like map: brain intensities inverted (non-monotone overall), background stays dark."""
    rng = np.random.default_rng(seed)
    tissue = np.clip((img - 0.05) / 0.95, 0, 1)
    out = np.where(img > 0.05, 1.0 - 0.8 * tissue**1.5, img)
    return np.clip(out + 0.02 * rng.normal(size=img.shape), 0, 1).astype(np.float32)


def register(loss, fixed, moving, steps: int, lr: float, sigma: float):
    theta = tf.Variable(tf.zeros((1, *fixed.shape[1:3], 2)))
    opt = tf.keras.optimizers.Adam(lr)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            u = gaussian_smooth(theta, sigma, boundary="replicate")
            value = tf.reduce_mean(loss(fixed, warp(moving, u, boundary="replicate")))
        opt.apply_gradients([(tape.gradient(value, theta), theta)])
        return value

    for _ in range(steps):
        step()
    return np.asarray(gaussian_smooth(theta, sigma, boundary="replicate"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2, help="down-sampling factor of the 192x224 slice")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.1, help="Adam learning rate (voxels per step)")
    parser.add_argument("--amplitude", type=float, default=6.0, help="max true displacement, voxels")
    parser.add_argument("--only", nargs="*", help="subset of the loss names")
    args = parser.parse_args()

    moving = load_slice(args.scale)
    u_true = smooth_field(moving.shape, args.amplitude, sigma=8.0 / args.scale * 2, seed=1)
    fixed = second_contrast(np.asarray(warp(moving[None, ..., None], u_true, boundary="replicate"))[0, ..., 0], seed=2)
    mask = moving > 0.05
    losses = {
        "ssd": SumSquaredDifference(reduction=None),
        "mi (gaussian, 32 bins)": MutualInformationLoss(num_bins=32, spatial_dims=2, reduction=None),
        "mi (bspline, 32 bins)": MutualInformationLoss(num_bins=32, kernel="bspline", spatial_dims=2, reduction=None),
        "mind-ssc": MINDSSCLoss(spatial_dims=2, reduction=None),
        "macmind": MacMINDLoss(spatial_dims=2, reduction=None),
        "macmind (L=1, R1=3)": MacMINDLoss(distance=1, patch_size=3, spatial_dims=2, reduction=None),
    }
    fixed_t = tf.constant(fixed[None, ..., None])
    moving_t = tf.constant(moving[None, ..., None])
    err0 = np.linalg.norm(u_true[0], axis=-1)[mask]
    rows = [("identity (no registration)", err0.mean(), np.percentile(err0, 90), 0.0)]
    for name, loss in losses.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        t0 = time.perf_counter()
        u = register(loss, fixed_t, moving_t, args.steps, args.lr, sigma=4.0 / args.scale * 2)
        err = np.linalg.norm(u[0] - u_true[0], axis=-1)[mask]
        rows.append((name, err.mean(), np.percentile(err, 90), time.perf_counter() - t0))
        print(f"  {name}: {err.mean():.3f}", file=sys.stderr, flush=True)
    print(
        f"2-D brain slice {moving.shape[0]}x{moving.shape[1]} (middle slice of test_scan.npz, /{args.scale}), "
        f"true DDF max {args.amplitude} voxels, synthetic inverted contrast, {args.steps} Adam steps "
        f"(lr {args.lr}), u = Gaussian-smoothed parameters; error inside the brain, voxels.\n"
    )
    print("| similarity | mean error | 90th pct error | time (s) |")
    print("|---|---|---|---|")
    for name, mean, p90, sec in rows:
        print(f"| {name} | {mean:.3f} | {p90:.3f} | {sec:.1f} |")


if __name__ == "__main__":
    main()

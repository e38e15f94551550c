"""van Ulsen's rigidity-penalty effect, offline on a CT/MR-like phantom built from real anatomy (issue 14, item 6).

"Multi-modal deep learning based 3D image registration for osseous anatomies" (MSc thesis, TU Delft, 2022,
Table 4.1) trains one small U-Net four ways on rigidly pre-aligned CT/MR pairs of the lumbar spine: US
(-MI + 2 gradient), US-RP (+ 0.2 L_RP on the moving vertebrae), WS (-0.5 MI - 0.5 Dice + 2 gradient) and
WS-RP (+ 0.4 L_RP). The effect it reports: inside the vertebrae, the standard deviation of det J falls 3.8x
(US -> US-RP, 0.095 -> 0.025) and 7.5x (WS -> WS-RP, 0.151 -> 0.020) while the pooled Dice moves by at most
0.002 (0.924 -> 0.923, 0.939 -> 0.937), and the mean det J goes from about 1.017 to 1.000.

This script repeats the four trainings at one budget on 2 CPU cores::

    python benchmarks/bench_rigidity.py                  # full run (about 38 minutes)
    python benchmarks/bench_rigidity.py --quick          # smoke run (about a minute)
    python benchmarks/bench_rigidity.py --json out.json --seeds 0 1 --steps 130

Data (nothing downloaded; ``$TFREG_TEST_DATA``, default ``../shared/data``; skipped with a message when the
brain scan is absent): ``data_scripts/rigid_phantom.py`` on ``brain_scan``'s T1 and aseg. The two putamina
are the "bones": bright in the moving "CT", dark in the fixed "MR". Each pair's ground-truth field moves
each putamen rigidly (rotations up to 5 degrees, translations up to 1.5 voxels relative to the tissue
around it) and the rest smoothly (up to 2 voxels), so the truth's det J inside the bones is exactly 1
(standard deviation 0).

Protocol, per seed: the configs are the repository's ``config/rigidity_{us,us_rp,ws,ws_rp}.yaml`` train
sections (model ``ddf``, backbone ``thesis_unet``, the losses with their weights, the rigidity mask on the
union of the unwarped moving structures, every label channel per sample) at the phantom's size; each
trains for the same number of steps, batch 1, on training pairs drawn with replacement in the same order,
with the same initial weights. Batch-norm statistics are recomputed on 16 training pairs before inference
(after a few hundred steps Keras' moving averages lag the weights; see bench_dfsa_ablation.py).

Evaluation (NumPy/SciPy/tfreg.metrics, independent of tfreg's losses and warp), on held-out pairs: the
predicted DDF warps each moving structure's mask linearly (scipy ``map_coordinates``, order 1, as the thesis
warps labels trilinearly), thresholded at 0.5; per structure and pooled (their union, the thesis' "L543"):
DSC, MSD and HD99 (mm, the pooled surface distances of both directions), the mean and standard deviation of
det J (central differences) inside the FIXED structure (the field's grid), and the folding percentage over
all voxels. Per method: the median and IQR over pairs of the seed-mean per pair (the thesis' "average over
folds"), the spread of the seeds' medians, and Wilcoxon signed-rank tests (US vs US-RP, WS vs WS-RP, paired
over test pairs) of sigma det J and of the pooled DSC.

Deviations forced by the budget: a 64^3 phantom of about 2.4 x 2.5 x 3.0 mm voxels instead of 320x320x96
CT/MR at 1 mm; two rigid structures instead of three vertebrae; the steps (default 130) instead of 1000
epochs of 31 pairs; and the learning rate (see ``Settings.learning_rate``), the same for all four methods.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import yaml
from scipy import ndimage, stats

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(path))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level is set)
from bench_dfsa_ablation import load_wssamnet_bench, recalibrate_batch_norm  # noqa: E402

from data_scripts.rigid_phantom import MotionParams, make_phantom_pair, prepare_base  # noqa: E402
from tfreg.metrics import dice, jacobian_determinant, surface_distances  # noqa: E402
from tfreg.registry import REGISTRY  # noqa: E402

METHODS = ("us", "us_rp", "ws", "ws_rp")
#: the thesis' Table 4.1, pooled vertebrae L543 (median +- IQR over its 9 test pairs): method -> measure -> value
THESIS_L543 = {
    "rigid": {
        "dsc": (0.908, 0.040),
        "msd_mm": (0.568, 0.282),
        "hd99_mm": (3.000, 2.000),
        "jd_mean": (1.000, 0.000),
        "jd_std": (0.000, 0.000),
    },
    "us": {
        "dsc": (0.924, 0.037),
        "msd_mm": (0.451, 0.229),
        "hd99_mm": (2.236, 0.914),
        "jd_mean": (1.016, 0.030),
        "jd_std": (0.095, 0.029),
    },
    "us_rp": {
        "dsc": (0.923, 0.030),
        "msd_mm": (0.503, 0.230),
        "hd99_mm": (2.449, 1.535),
        "jd_mean": (1.001, 0.011),
        "jd_std": (0.025, 0.034),
    },
    "ws": {
        "dsc": (0.939, 0.024),
        "msd_mm": (0.364, 0.158),
        "hd99_mm": (2.237, 1.293),
        "jd_mean": (1.017, 0.022),
        "jd_std": (0.151, 0.054),
    },
    "ws_rp": {
        "dsc": (0.937, 0.023),
        "msd_mm": (0.372, 0.185),
        "hd99_mm": (2.000, 0.597),
        "jd_mean": (0.998, 0.003),
        "jd_std": (0.020, 0.006),
    },
}
MEASURES = ("dsc", "msd_mm", "hd99_mm", "jd_mean", "jd_std")
#: the baselines of the thesis' two comparisons
COMPARISONS = (("us", "us_rp"), ("ws", "ws_rp"))


@dataclass(frozen=True)
class Settings:
    """Sizes of one run: phantom shape (voxels), training and test pairs, steps per run, learning rate, seeds.

    The learning rate: the thesis' 4e-4 moved the field too little in a few hundred steps to test anything
    (pilot runs, see benchmarks/README.md); a larger one is used for all four methods alike.
    """

    shape: Tuple[int, int, int] = (64, 64, 64)
    train_pairs: int = 24
    test_pairs: int = 8
    steps: int = 130
    learning_rate: float = 2.0e-3
    seeds: Tuple[int, ...] = (0, 1)
    calibration_pairs: int = 16
    #: the phantom's rigid region margin and blending ramp (voxels; data_scripts/rigid_phantom.py's defaults)
    margin: float = 2.0
    ramp: float = 5.0


FULL = Settings()
QUICK = Settings(
    shape=(32, 32, 32), train_pairs=3, test_pairs=2, steps=3, seeds=(0,), calibration_pairs=2, margin=1.0, ramp=2.0
)


@dataclass
class Pairs:
    """Arrays of several phantom pairs: images ``(N, *S)``, one-hot labels ``(N, *S, K)``, ddfs ``(N, *S, 3)``."""

    moving_image: np.ndarray
    fixed_image: np.ndarray
    moving_label: np.ndarray
    fixed_label: np.ndarray
    ddf: np.ndarray
    spacing: Tuple[float, ...]

    def batch(self, rows: Sequence[int]) -> dict:
        """The model's input dict for these pairs (labels stacked, channels last)."""
        rows = list(rows)
        return {
            "moving_image": self.moving_image[rows],
            "fixed_image": self.fixed_image[rows],
            "moving_label": self.moving_label[rows],
            "fixed_label": self.fixed_label[rows],
            "indices": np.zeros((len(rows), 2), np.float32),
        }


def one_hot(label_map: np.ndarray, count: int) -> np.ndarray:
    return np.stack([label_map == k for k in range(1, count + 1)], axis=-1).astype(np.float32)


def make_pairs(base, first: int, count: int, settings: Settings, seed: int = 0) -> Pairs:
    """Pairs ``first .. first + count - 1`` of the phantom (different indices: different draws)."""
    motion = MotionParams(margin=settings.margin, ramp=settings.ramp)
    drawn = [make_phantom_pair(base, seed=seed, index=first + i, motion=motion) for i in range(count)]
    k = base.num_rigid
    return Pairs(
        moving_image=np.stack([p.moving_image for p in drawn]).astype(np.float32),
        fixed_image=np.stack([p.fixed_image for p in drawn]).astype(np.float32),
        moving_label=np.stack([one_hot(p.moving_label, k) for p in drawn]),
        fixed_label=np.stack([one_hot(p.fixed_label, k) for p in drawn]),
        ddf=np.stack([p.ddf for p in drawn]).astype(np.float32),
        spacing=tuple(float(s) for s in base.geometry.spacing),
    )


def train_section(method: str) -> dict:
    with open(REPO / "config" / f"rigidity_{method}.yaml") as f:
        return yaml.safe_load(f)["train"]


def build_model(method: str, shape: Tuple[int, ...]):
    section = train_section(method)
    model_class = REGISTRY.get("model_class", section["method"])
    config = {k: v for k, v in section.items() if k in model_class.config_keys}
    return REGISTRY.build_model(
        {
            "name": section["method"],
            "moving_image_size": shape,
            "fixed_image_size": shape,
            "index_size": 2,
            "labeled": True,
            "batch_size": 1,
            "config": config,
        }
    )


def train(method: str, train_pairs: Pairs, settings: Settings, seed: int):
    """One configuration trained ``settings.steps`` single-pair steps; returns (model, record)."""
    keras.utils.set_random_seed(seed)
    model = build_model(method, settings.shape)
    model(train_pairs.batch([0]), training=False)  # variables, from the same seed for every method
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate))
    order = np.random.default_rng(1000 + seed).integers(0, len(train_pairs.moving_image), settings.steps)
    start = time.perf_counter()
    losses = []
    for step, row in enumerate(order):
        logs = model.train_on_batch(train_pairs.batch([row]), return_dict=True)
        losses.append(float(logs["loss"]))
    seconds = time.perf_counter() - start
    calibration = np.random.default_rng(2000 + seed).integers(
        0, len(train_pairs.moving_image), settings.calibration_pairs
    )
    recalibrate_batch_norm(model, train_pairs.batch(calibration))
    return model, {
        "seconds": seconds,
        "seconds_per_step": seconds / max(len(order), 1),
        "loss_first": losses[0],
        "loss_last_20": float(np.mean(losses[-20:])),
    }


def predict_ddfs(model, pairs: Pairs) -> np.ndarray:
    out = [np.asarray(model(pairs.batch([i]), training=False)["ddf"])[0] for i in range(len(pairs.moving_image))]
    return np.stack(out)


def warp_masks(moving_label: np.ndarray, ddf: np.ndarray) -> np.ndarray:
    """``moving_label (*S, K)`` sampled at ``x + ddf(x)`` (linear, zero outside), thresholded at 0.5."""
    grid = np.meshgrid(*[np.arange(s, dtype=np.float64) for s in ddf.shape[:-1]], indexing="ij")
    coords = [g + ddf[..., a] for a, g in enumerate(grid)]
    warped = [
        ndimage.map_coordinates(moving_label[..., k], coords, order=1, mode="constant")
        for k in range(moving_label.shape[-1])
    ]
    return np.stack(warped, axis=-1) >= 0.5


def structure_measures(fixed: np.ndarray, warped: np.ndarray, det: np.ndarray, spacing) -> Dict[str, float]:
    """DSC, MSD, HD99 (mm) of one structure, and det J mean/std inside the fixed structure."""
    a_to_b, b_to_a = surface_distances(fixed, warped, spacing)
    pooled = np.concatenate([a_to_b, b_to_a])
    inside = det[fixed]
    return {
        "dsc": dice(fixed, warped),
        "msd_mm": float(pooled.mean()) if pooled.size else float("nan"),
        "hd99_mm": float(np.percentile(pooled, 99)) if pooled.size else float("nan"),
        "jd_mean": float(inside.mean()),
        "jd_std": float(inside.std()),
    }


def evaluate(pairs: Pairs, ddfs: Optional[np.ndarray]) -> Dict[str, np.ndarray]:
    """Per structure name (``s1..sK``, ``pooled``): ``(pairs, measures)``; ``folding_pct``: ``(pairs,)``.

    ``ddfs`` None evaluates the identity (the unregistered pairs, after no pre-alignment)."""
    count, k = pairs.moving_label.shape[0], pairs.moving_label.shape[-1]
    names = [f"s{i + 1}" for i in range(k)] + ["pooled"]
    out = {name: np.zeros((count, len(MEASURES))) for name in names}
    out["folding_pct"] = np.zeros(count)
    for p in range(count):
        ddf = np.zeros(pairs.ddf[p].shape, np.float32) if ddfs is None else ddfs[p]
        det = jacobian_determinant(ddf)
        out["folding_pct"][p] = 100.0 * np.count_nonzero(det <= 0) / det.size
        fixed = pairs.fixed_label[p] >= 0.5
        warped = warp_masks(pairs.moving_label[p], ddf)
        for i in range(k):
            values = structure_measures(fixed[..., i], warped[..., i], det, pairs.spacing)
            out[f"s{i + 1}"][p] = [values[m] for m in MEASURES]
        values = structure_measures(fixed.any(-1), warped.any(-1), det, pairs.spacing)
        out["pooled"][p] = [values[m] for m in MEASURES]
    return out


def summarise(per_seed: Dict[int, Dict[str, np.ndarray]]) -> dict:
    """Median and IQR over pairs of the seed-mean per pair, and each seed's median, per structure and measure."""
    seeds = sorted(per_seed)
    result = {}
    for name in per_seed[seeds[0]]:
        stacked = np.stack([per_seed[s][name] for s in seeds])  # (seeds, pairs[, measures])
        pair_means = stacked.mean(axis=0)
        if name == "folding_pct":
            result[name] = {"median": float(np.median(pair_means)), "max": float(pair_means.max())}
            continue
        q1, median, q3 = np.percentile(pair_means, [25, 50, 75], axis=0)
        seed_medians = np.median(stacked, axis=1)
        result[name] = {
            m: {
                "median": float(median[i]),
                "iqr": float(q3[i] - q1[i]),
                "per_seed": [float(v) for v in seed_medians[:, i]],
                "per_pair": [float(v) for v in pair_means[:, i]],
            }
            for i, m in enumerate(MEASURES)
        }
    return result


def wilcoxon(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples (NaN with fewer than 2 pairs or no difference)."""
    diff = np.asarray(b) - np.asarray(a)
    if diff.size < 2 or not np.any(diff):
        return float("nan")
    return float(stats.wilcoxon(a, b).pvalue)


def markdown(result: dict) -> str:
    """Our pooled-structure table beside the thesis' L543 row, then the comparisons."""
    rows = [
        "| Method | DSC | MSD (mm) | HD99 (mm) | mean det J | sigma det J | folding % | thesis DSC "
        "| thesis sigma det J |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("identity",) + METHODS + ("truth",):
        measures = result["summary"][name]
        cells = [f"{measures['pooled'][m]['median']:.3f} +- {measures['pooled'][m]['iqr']:.3f}" for m in MEASURES]
        thesis = THESIS_L543.get("rigid" if name == "identity" else name)
        paper = [f"{thesis[m][0]:.3f} +- {thesis[m][1]:.3f}" for m in ("dsc", "jd_std")] if thesis else ["-", "-"]
        rows.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {measures['folding_pct']['median']:.4f} | "
            + " | ".join(paper)
            + " |"
        )
    rows += [
        "",
        "| Comparison | sigma det J ratio (ours) | thesis ratio | DSC change (ours) | thesis DSC change | "
        "p sigma det J | p DSC |",
        "|---|---|---|---|---|---|---|",
    ]
    for base, rp in COMPARISONS:
        ours = result["comparisons"][f"{base}->{rp}"]
        thesis_ratio = THESIS_L543[base]["jd_std"][0] / THESIS_L543[rp]["jd_std"][0]
        thesis_dsc = THESIS_L543[rp]["dsc"][0] - THESIS_L543[base]["dsc"][0]
        rows.append(
            f"| {base} -> {rp} | {ours['jd_std_ratio']:.2f} (seeds: "
            + ", ".join(f"{v:.2f}" for v in ours["jd_std_ratio_per_seed"])
            + f") | {thesis_ratio:.1f} | {ours['dsc_change']:+.4f} | {thesis_dsc:+.3f} | "
            f"{ours['p_jd_std']:.3g} | {ours['p_dsc']:.3g} |"
        )
    return "\n".join(rows)


def run(settings: Settings, json_path: Optional[Path]) -> Optional[dict]:
    scan = load_wssamnet_bench().data_root() / "brain_scan" / "test_scan.npz"
    if not scan.is_file():
        print(f"skipped: {scan} not found (set TFREG_TEST_DATA)")
        return None
    with np.load(scan) as npz:
        base = prepare_base(npz["vol"], npz["seg"], shape=settings.shape)
    train_pairs = make_pairs(base, 0, settings.train_pairs, settings)
    test_pairs = make_pairs(base, 10_000, settings.test_pairs, settings)
    print(
        f"phantom {settings.shape} at {train_pairs.spacing} mm: {settings.train_pairs} training and "
        f"{settings.test_pairs} test pairs",
        flush=True,
    )
    load = os.getloadavg()
    result = {
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(settings).items()},
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(load),
        "keras_backend": keras.backend.backend(),
        "runs": {},
    }
    per_method: Dict[str, Dict[int, Dict[str, np.ndarray]]] = {m: {} for m in METHODS}
    start = time.perf_counter()
    for seed in settings.seeds:
        for method in METHODS:
            model, record = train(method, train_pairs, settings, seed)
            per_method[method][seed] = evaluate(test_pairs, predict_ddfs(model, test_pairs))
            record["pooled_dsc"] = float(per_method[method][seed]["pooled"][:, 0].mean())
            record["pooled_jd_std"] = float(per_method[method][seed]["pooled"][:, MEASURES.index("jd_std")].mean())
            result["runs"][f"{method}_seed{seed}"] = record
            print(
                f"seed {seed} {method}: DSC {record['pooled_dsc']:.4f}, sigma det J {record['pooled_jd_std']:.4f} "
                f"({record['seconds']:.0f} s, {record['seconds_per_step']:.2f} s/step)",
                flush=True,
            )
    result["seconds_total"] = time.perf_counter() - start
    result["load_average_at_end"] = list(os.getloadavg())
    summary = {
        "identity": summarise({0: evaluate(test_pairs, None)}),
        "truth": summarise({0: evaluate(test_pairs, test_pairs.ddf)}),
    }
    summary.update({m: summarise(per_method[m]) for m in METHODS})
    result["summary"] = summary
    comparisons = {}
    for base_name, rp in COMPARISONS:
        a, b = summary[base_name]["pooled"], summary[rp]["pooled"]
        per_seed = [x / max(y, 1e-12) for x, y in zip(a["jd_std"]["per_seed"], b["jd_std"]["per_seed"])]
        comparisons[f"{base_name}->{rp}"] = {
            "jd_std_ratio": a["jd_std"]["median"] / max(b["jd_std"]["median"], 1e-12),
            "jd_std_ratio_per_seed": per_seed,
            "dsc_change": b["dsc"]["median"] - a["dsc"]["median"],
            "p_jd_std": wilcoxon(a["jd_std"]["per_pair"], b["jd_std"]["per_pair"]),
            "p_dsc": wilcoxon(a["dsc"]["per_pair"], b["dsc"]["per_pair"]),
        }
    result["comparisons"] = comparisons
    result["table"] = markdown(result)
    print(result["table"])
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1))
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with tiny sizes")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1)")
    parser.add_argument("--steps", type=int, default=None, help="training steps of each run (default 130)")
    parser.add_argument("--learning-rate", type=float, default=None, help="Adam's learning rate (default 2e-3)")
    parser.add_argument("--test-pairs", type=int, default=None, help="held-out pairs (default 8)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    changes = {}
    if args.seeds is not None:
        changes["seeds"] = tuple(args.seeds)
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.learning_rate is not None:
        changes["learning_rate"] = args.learning_rate
    if args.test_pairs is not None:
        changes["test_pairs"] = args.test_pairs
    if changes:
        settings = Settings(**{**vars(settings), **changes})
    run(settings, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

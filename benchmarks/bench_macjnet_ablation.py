"""macJNet's ablations (Tables 3, 4, 5, 7 and 8), offline on real brain anatomy with a synthetic second contrast.

Zhou et al. 2023 ("macJNet: weakly-supervised multimodal image deformable registration using joint learning
framework and multi-sampling cascaded MIND") register MR to CT livers with LapIRN + attention gates, trained
jointly and alternately with two segmentation networks, 30 % of the pairs labelled. Their liver Dice: MI 92.89 <
MIND 94.61 < macMIND 94.75 in the joint framework (Table 3); registration network alone 93.64 < joint 94.75
(Table 5); labelled fraction 0 % 93.64 < 30 % 94.75 < 100 % 94.91 (Table 7). This script repeats those
comparisons with tfreg's configs and API on a 2-core CPU::

    python benchmarks/bench_macjnet_ablation.py            # full run (about 45 minutes)
    python benchmarks/bench_macjnet_ablation.py --quick    # smoke run (a few minutes)
    python benchmarks/bench_macjnet_ablation.py --seeds 0 1 2 --json out.json

Data (nothing downloaded; ``$TFREG_TEST_DATA``, default ``../shared/data``; skipped with a message when absent):
the simulated subjects of benchmarks/bench_wssamnet_ablation.py (brain_scan's T1 with its aseg and nilearn's
MNI152 template, each deformed by its own random affine + smooth transform, with a random bias field and gamma,
resampled onto a coarse grid; four labels: cortex, subcortical GM, white matter, CSF). In 2-D (the default, see
below) each subject is the axial slice through the middle of its volume. A pair is (moving: subject ``a`` in a
synthetic second contrast, fixed: subject ``b`` as T1), ``a != b``: the "MR" (moving) and "CT" (fixed) roles of
the paper. The second contrast is register_multimodal.py's non-monotone map (brain intensities inverted, the
background kept dark) plus a fresh smooth bias field (+-15 %) and Gaussian noise (sigma 0.02). The label
networks train on is white matter only (the paper trains on the liver only; white matter is the largest
structure); subcortical grey matter stands in for the tumour (evaluation only). Test pairs come from held-out
subjects.

Protocol, per seed (the paper's stages; every run is ``tfreg.engine.train.train`` on the repository's configs
merged with an override written to a temporary folder):

1. Registration network alone (Reg-SubNet, unsupervised): ``config/macjnet_reg_pretrain.yaml`` (LapIRN with
   attention gates, progressive) with macMIND, and with MIND and MI (``config/macjnet_ablations/{mind,mi}.yaml``).
2. Segmenters (MR: moving, CT: fixed): ``config/macjnet_seg_{mr,ct}.yaml`` on the labelled pairs only, for 30 %
   and 100 % of the training pairs (the same pairs the joint model sees: :func:`tfreg.models.joint.labeled_pairs`
   with the run's seed).
3. Joint (``config/macjnet_joint.yaml``, alternating, ``init_from`` stages 1 and 2): macMIND 30 %, MIND 30 %,
   MI 30 % (each from its own stage-1 network) and macMIND 100 %.

Evaluation (NumPy/SciPy and tfreg.metrics, not the training losses): the predicted DDF warps the moving integer
label map by nearest neighbour; white-matter Dice ("liver"), subcortical-GM Dice ("tumour"), HD95 of white
matter (mm), mean centroid distance of the four labels (mm, TRE's stand-in: no landmarks), folding per mille
(det J <= 0) and normalised MI of the image pair; the segmenters' white-matter Dice on the held-out subjects
before and after the joint stage (Table 8). Mean +- std over test pairs of the seed-mean, and std over seeds.

Deviations forced by the budget (2 CPU cores, the issue's 45 minutes for everything): 2-D slices of 64 x 80
pixels at 2.5 mm (``--ndim 3`` runs 24 x 32 x 24 volumes of 7 mm), LapIRN with 8 instead of 28 channels and 2
residual blocks instead of 5, segmenters with 3 levels of 8-16-32 channels, a few hundred steps per stage
instead of 30001-60001 / 200 epochs, and learning rates of 1e-3 (registration pre-training, segmenters) and
2e-4 / 1e-4 (joint: the paper's 2:1 ratio, 10x its rates) instead of 1e-4 and 2e-5 / 1e-5. These were fixed
before any variant was compared.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.bench_wssamnet_ablation import (  # noqa: E402
    LABEL_NAMES,
    _load,
    _write_yaml,
    brain_scan_anatomy,
    data_root,
    dice_per_label,
    make_subjects,
    mni_anatomy,
    summary,
    warp_label_map,
)

#: the structure the networks train on (white matter: the "liver") and the evaluation-only one ("tumour")
TRAIN_LABEL = LABEL_NAMES.index("white_matter") + 1
SMALL_LABEL = LABEL_NAMES.index("subcortical_gm") + 1
SIMILARITIES = {"macmind": None, "mind": "macjnet_ablations/mind.yaml", "mi": "macjnet_ablations/mi.yaml"}
#: the runs compared: name -> (similarity, labelled fraction; None = the registration network alone)
RUNS = {
    "reg_macmind": ("macmind", None),
    "reg_mind": ("mind", None),
    "reg_mi": ("mi", None),
    "joint_macmind_30": ("macmind", 0.3),
    "joint_mind_30": ("mind", 0.3),
    "joint_mi_30": ("mi", 0.3),
    "joint_macmind_100": ("macmind", 1.0),
}
#: the paper's liver Dice (%) of each run (Tables 3, 4, 5, 7)
PAPER_LIVER_DICE = {
    "reg_macmind": 93.64,
    "reg_mind": 93.64,
    "reg_mi": None,
    "joint_macmind_30": 94.75,
    "joint_mind_30": 94.61,
    "joint_mi_30": 92.89,
    "joint_macmind_100": 94.91,
}


@dataclass(frozen=True)
class Settings:
    """One benchmark size. ``shape``/``spacing_mm``: the simulated 3-D subjects' grid; ``ndim`` 2 takes their
    middle axial slice. Pair counts, steps per stage, learning rates, network widths, seeds."""

    ndim: int = 2
    shape: Tuple[int, int, int] = (64, 80, 64)
    spacing_mm: float = 2.5
    train_per_brain: int = 8
    test_per_brain: int = 4
    train_pairs: int = 20
    test_pairs: int = 16
    reg_steps: int = 300
    seg_steps: int = 200
    joint_steps: int = 200
    reg_learning_rate: float = 1e-3
    seg_learning_rate: float = 1e-3
    joint_learning_rates: Tuple[float, float] = (2e-4, 1e-4)
    lapirn_channels: int = 8
    lapirn_blocks: int = 2
    seg_channels: Tuple[int, ...] = (8, 16, 32)
    seeds: Tuple[int, ...] = (0, 1, 2)
    macmind_weight: float = 20.0
    runs: Tuple[str, ...] = tuple(RUNS)


FULL = Settings()
QUICK = Settings(
    shape=(32, 40, 32),
    spacing_mm=5.0,
    train_per_brain=3,
    test_per_brain=2,
    train_pairs=6,
    test_pairs=4,
    reg_steps=6,
    seg_steps=6,
    joint_steps=6,
    lapirn_channels=4,
    lapirn_blocks=1,
    seg_channels=(4, 8),
    seeds=(0,),
)
THREE_D = Settings(ndim=3, shape=(24, 32, 24), spacing_mm=7.0)


def load_register_multimodal():
    """benchmarks/register_multimodal.py (the home of the synthetic second contrast) as a module."""
    name = "register_multimodal"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "register_multimodal.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def second_contrast(image: np.ndarray, seed: int, spacing_mm: float) -> np.ndarray:
    """The moving ("MR") contrast of a T1 image ``(*S)`` in [0, 1]: register_multimodal's non-monotone map, a
    smooth multiplicative bias field (log amplitude up to 0.15, sigma 40 mm) and noise; min-max to [0, 1]."""
    from scipy import ndimage

    out = load_register_multimodal().second_contrast(image, seed)
    rng = np.random.default_rng([seed, 7])
    bias = ndimage.gaussian_filter(rng.normal(size=image.shape), 40.0 / spacing_mm)
    bias *= 0.15 / max(float(np.abs(bias).max()), 1e-12)
    out = out * np.exp(bias) + 0.02 * rng.normal(size=image.shape)
    out = np.clip(out, 0.0, None)
    return (out / max(float(out.max()), 1e-12)).astype(np.float32)


@dataclass
class Pairs:
    """``moving``/``fixed`` images ``(P, *S)`` float32 in [0, 1] and integer label maps ``(P, *S)`` uint8."""

    moving: np.ndarray
    fixed: np.ndarray
    moving_labels: np.ndarray
    fixed_labels: np.ndarray


def make_pairs(subjects, count: int, settings: Settings, seed: int) -> Pairs:
    """``count`` (moving = subject ``a`` in the second contrast, fixed = subject ``b`` T1) pairs, ``a != b``."""
    rng = np.random.default_rng(seed)
    images, labels = subjects.images, subjects.labels
    if settings.ndim == 2:
        middle = images.shape[-1] // 2
        images, labels = images[..., middle], labels[..., middle]
    n = len(images)
    chosen = []
    while len(chosen) < count:
        a, b = (int(v) for v in rng.choice(n, size=2, replace=False))
        if (a, b) not in chosen:
            chosen.append((a, b))
    moving = np.stack(
        [second_contrast(images[a], seed * 1000 + i, settings.spacing_mm) for i, (a, _) in enumerate(chosen)]
    )
    return Pairs(moving, images[[b for _, b in chosen]], labels[[a for a, _ in chosen]], labels[[b for _, b in chosen]])


def write_paired(folder: Path, pairs: Pairs, rows: Sequence[int]) -> str:
    """DeepReg's paired layout with the :data:`TRAIN_LABEL` mask as the one label channel."""
    from tfreg.data.image_io import save_image

    for i in rows:
        name = f"pair_{i:03d}.nii.gz"
        save_image(pairs.moving[i], str(folder / "moving_images" / name))
        save_image(pairs.fixed[i], str(folder / "fixed_images" / name))
        save_image((pairs.moving_labels[i] == TRAIN_LABEL).astype(np.uint8), str(folder / "moving_labels" / name))
        save_image((pairs.fixed_labels[i] == TRAIN_LABEL).astype(np.uint8), str(folder / "fixed_labels" / name))
    return str(folder)


# ---------------------------------------------------------------------- training through tfreg
def _dataset(train_dir: str, shape: Sequence[int], seed: int) -> dict:
    split = {"dir": train_dir, "format": "nifti", "labeled": True}
    return {
        "train": split,
        "valid": None,
        "moving_image_shape": list(shape),
        "fixed_image_shape": list(shape),
        "seed": int(seed),
    }


def _epochs(num_pairs: int, steps: int) -> int:
    return max(int(np.ceil(steps / num_pairs)), 1)


def _train(work: Path, name: str, configs: Sequence[str], override: dict, seed: int):
    """``train`` on ``configs`` + ``override``; returns (model, checkpoint prefix, record)."""
    import keras

    from tfreg.engine.train import train

    paths = [str(REPO / "config" / c) for c in configs] + [_write_yaml(override, work / f"{name}.yaml")]
    keras.utils.set_random_seed(seed)
    record = _load("start")
    t0 = time.perf_counter()
    model, exp = train(gpu="", config_path=paths, log_dir=str(work / "logs"), exp_name=name, verbose=0)
    epochs = override["train"]["epochs"]
    record.update(seconds=time.perf_counter() - t0, epochs=epochs, configs=list(configs), **_load("end"))
    return model, os.path.join(exp, "save", f"ckpt-{epochs}"), record


def _macmind_weight(similarity: str, settings: Settings) -> dict:
    """``{"loss": {"image": {"weight": w}}}`` when macMIND's weight differs from the configs' 20, else ``{}``."""
    if similarity != "macmind" or settings.macmind_weight == 20.0:
        return {}
    return {"loss": {"image": {"weight": float(settings.macmind_weight)}}}


def train_registration(work, similarity, data_dir, num_pairs, shape, settings: Settings, seed: int):
    """Stage 1: the registration network alone (progressive LapIRN, unsupervised)."""
    epochs = _epochs(num_pairs, settings.reg_steps)
    first, second = max(epochs // 4, 1), max(epochs // 4, 1)
    override = {
        "dataset": _dataset(data_dir, shape, seed),
        "train": {
            "backbone": {"num_channels": settings.lapirn_channels, "num_residual_blocks": settings.lapirn_blocks},
            "optimizer": {"name": "Adam", "learning_rate": settings.reg_learning_rate},
            "trainer": {"level_epochs": [first, second], "freeze_epochs": min(1, first)},
            **_macmind_weight(similarity, settings),
            "epochs": max(epochs, first + second + 1),
            "save_period": max(epochs, first + second + 1),
        },
    }
    configs = ["macjnet_reg_pretrain.yaml"] + ([SIMILARITIES[similarity]] if SIMILARITIES[similarity] else [])
    return _train(work, f"reg_{similarity}_seed{seed}", configs, override, seed)


def train_segmenter(work, role, data_dir, num_pairs, shape, settings: Settings, seed: int, tag: str):
    """Stage 2: one modality's segmenter on the labelled pairs (``role``: ``mr`` moving, ``ct`` fixed)."""
    epochs = _epochs(num_pairs, settings.seg_steps)
    override = {
        "dataset": _dataset(data_dir, shape, seed),
        "train": {
            "backbone": {"channels": list(settings.seg_channels)},
            "optimizer": {"name": "Adam", "learning_rate": settings.seg_learning_rate},
            "epochs": epochs,
            "save_period": epochs,
        },
    }
    return _train(work, f"seg_{role}_{tag}_seed{seed}", [f"macjnet_seg_{role}.yaml"], override, seed)


def train_joint(work, similarity, fraction, data_dir, num_pairs, shape, inits, settings: Settings, seed: int):
    """Stage 3: the joint, alternating stage from the registration and segmenter checkpoints ``inits``."""
    epochs = _epochs(num_pairs, 2 * settings.joint_steps)  # one registration and one segmentation step per pair
    reg_ckpt, mr_ckpt, ct_ckpt = inits
    seg = {f"{role}_segmenter/{part}": part for role in ("moving",) for part in ("backbone", "head")}
    override = {
        "dataset": _dataset(data_dir, shape, seed),
        "train": {
            "backbone": {"num_channels": settings.lapirn_channels, "num_residual_blocks": settings.lapirn_blocks},
            "segmenter": {"backbone": {"channels": list(settings.seg_channels)}},
            "joint": {"labeled_fraction": float(fraction), "seed": int(seed)},
            "optimizers": {
                "registration": {"name": "Adam", "learning_rate": settings.joint_learning_rates[0]},
                "segmentation": {"name": "Adam", "learning_rate": settings.joint_learning_rates[1]},
            },
            **_macmind_weight(similarity, settings),
            "init_from": [
                {"path": reg_ckpt, "parts": ["backbone"]},
                {"path": mr_ckpt, "parts": seg},
                {"path": ct_ckpt, "parts": {k.replace("moving", "fixed"): v for k, v in seg.items()}},
            ],
            "epochs": epochs,
            "save_period": epochs,
        },
    }
    configs = ["macjnet_joint.yaml"] + ([SIMILARITIES[similarity]] if SIMILARITIES[similarity] else [])
    tag = f"joint_{similarity}_{int(round(fraction * 100))}_seed{seed}"
    return _train(work, tag, configs, override, seed)


# ---------------------------------------------------------------------- evaluation (NumPy/SciPy, tfreg.metrics)
def predict_ddfs(model, pairs: Pairs) -> np.ndarray:
    """The model's DDFs ``(P, *S, ndim)`` (voxels), in inference mode, one pair at a time."""
    out = []
    for i in range(len(pairs.moving)):
        inputs = {
            "moving_image": pairs.moving[i : i + 1],
            "fixed_image": pairs.fixed[i : i + 1],
            "indices": np.zeros((1, 2), np.float32),
        }
        out.append(np.asarray(model(inputs, training=False)["ddf"])[0])
    return np.stack(out)


def _centroids(label_map: np.ndarray, spacing: float) -> np.ndarray:
    return np.stack(
        [
            np.argwhere(label_map == k + 1).mean(axis=0) * spacing
            if np.any(label_map == k + 1)
            else np.full(label_map.ndim, np.nan)
            for k in range(len(LABEL_NAMES))
        ]
    )


def evaluate(pairs: Pairs, ddfs: Optional[np.ndarray], spacing: float) -> Dict[str, np.ndarray]:
    """Per-pair measures ``(P,)``: ``wm`` / ``sgm`` / ``mean`` Dice, ``hd95_wm`` (mm), ``tre`` (mm, mean centroid
    distance of the four labels), ``folding`` (per mille, det J <= 0), ``nmi`` (fixed vs warped moving image)."""
    from tfreg.metrics.intensity import mutual_information
    from tfreg.metrics.jacobian import folding_fraction
    from tfreg.metrics.surface import hausdorff_distance

    rows = {k: [] for k in ("wm", "sgm", "mean", "hd95_wm", "tre", "folding", "nmi")}
    ndim = pairs.moving.ndim - 1
    for i in range(len(pairs.moving)):
        ddf = np.zeros(pairs.moving.shape[1:] + (ndim,), np.float32) if ddfs is None else ddfs[i]
        warped = warp_label_map(pairs.moving_labels[i], ddf)
        fixed = pairs.fixed_labels[i]
        dice = dice_per_label(warped, fixed)
        rows["wm"].append(dice[TRAIN_LABEL - 1])
        rows["sgm"].append(dice[SMALL_LABEL - 1])
        rows["mean"].append(float(np.nanmean(dice)))
        rows["hd95_wm"].append(
            hausdorff_distance(warped == TRAIN_LABEL, fixed == TRAIN_LABEL, spacing=[spacing] * ndim, percentile=95)
        )
        rows["tre"].append(
            float(np.nanmean(np.linalg.norm(_centroids(warped, spacing) - _centroids(fixed, spacing), axis=-1)))
        )
        rows["folding"].append(1000.0 * folding_fraction(ddf))
        from scipy import ndimage

        grid = np.indices(ddf.shape[:-1], dtype=np.float64) + np.moveaxis(ddf, -1, 0)
        image = ndimage.map_coordinates(pairs.moving[i], grid, order=1, mode="constant")
        rows["nmi"].append(mutual_information(pairs.fixed[i], image, bins=64, normalized=True))
    return {k: np.asarray(v, np.float64) for k, v in rows.items()}


def segmenter_dice(segmenter, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """White-matter Dice ``(N,)`` of a segmenter layer's thresholded prediction on ``images`` ``(N, *S)``."""
    out = []
    for image, label in zip(images, labels):
        probability = np.asarray(segmenter(image[None, ..., None], training=False))[0, ..., 0]
        predicted = np.where(probability >= 0.5, TRAIN_LABEL, 0)
        out.append(dice_per_label(predicted, label)[TRAIN_LABEL - 1])
    return np.asarray(out)


def pretrained_segmenter_dice(model, role: str, images, labels) -> np.ndarray:
    """The same for a segmentation model's network (``role``: ``moving``/``fixed``)."""
    out = []
    for image, label in zip(images, labels):
        batch = {f"{role}_image": image[None], "moving_image": image[None], "fixed_image": image[None]}
        probability = np.asarray(model(batch, training=False)[f"{role}_segmentation"])[0, ..., 0]
        out.append(dice_per_label(np.where(probability >= 0.5, TRAIN_LABEL, 0), label)[TRAIN_LABEL - 1])
    return np.asarray(out)


# ---------------------------------------------------------------------- report
def aggregate(per_seed: Dict[int, Dict[str, np.ndarray]]) -> dict:
    """Each measure over pairs (of the seed-mean per pair) and over seeds (of each seed's pair mean)."""
    seeds = sorted(per_seed)
    out = {}
    for key in per_seed[seeds[0]]:
        stack = np.stack([per_seed[s][key] for s in seeds])  # (seeds, pairs)
        out[key] = {"pairs": summary(np.nanmean(stack, axis=0)), "seeds": summary(np.nanmean(stack, axis=1))}
        out[key]["seed_means"] = [float(v) for v in np.nanmean(stack, axis=1)]
    return out


def markdown(result: dict) -> str:
    rows = result["aggregate"]
    lines = [
        '| run | WM Dice ("liver") | paper liver DSC | SGM Dice ("tumour") | mean Dice (4) | WM HD95 mm | '
        "TRE* mm | folding per mille | NMI | std of WM Dice over seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ["before"] + list(RUNS):
        if name not in rows:
            continue
        a = rows[name]
        paper = PAPER_LIVER_DICE.get(name)
        cells = [f"{a[k]['pairs']['mean']:.3f} +- {a[k]['pairs']['std']:.3f}" for k in ("wm",)]
        cells.append("-" if paper is None else f"{paper:.2f}")
        cells += [f"{a[k]['pairs']['mean']:.3f}" for k in ("sgm", "mean", "hd95_wm", "tre", "folding", "nmi")]
        cells.append(f"{a['wm']['seeds']['std']:.3f}" if name != "before" else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    seg = result.get("segmenters", {})
    if seg:
        lines.append("")
        lines.append(
            "Segmenters' white-matter Dice on the held-out test pairs (mean over seeds and images): "
            + ", ".join(f"{k} {v:.3f}" for k, v in seg.items())
            + "."
        )
    lines.append("")
    lines.append("Paired differences (per seed: mean over the same test pairs; mean +- std over seeds):")
    for a, b in result["comparisons"]:
        d = result["differences"][f"{a} - {b}"]
        lines.append(
            f"- {a} - {b}: WM Dice {d['wm']['mean']:+.4f} +- {d['wm']['std']:.4f}; "
            f"HD95 {d['hd95_wm']['mean']:+.3f} +- {d['hd95_wm']['std']:.3f} mm"
        )
    return "\n".join(lines)


COMPARISONS = (
    ("joint_macmind_30", "joint_mind_30"),  # Table 3: macMIND > MIND
    ("joint_mind_30", "joint_mi_30"),  # Table 3: MIND > MI
    ("reg_macmind", "reg_mind"),  # Table 4 (unsupervised)
    ("joint_macmind_30", "reg_macmind"),  # Table 5 / 7: joint (30 %) > registration alone (0 %)
    ("joint_macmind_100", "joint_macmind_30"),  # Table 7: more labels help
)


def run(settings: Settings, json_path: Path, keep: Optional[Path] = None) -> Optional[dict]:
    from tfreg.models.joint import labeled_pairs

    root = data_root()
    if not (root / "brain_scan" / "test_scan.npz").is_file():
        print(f"skipped: {root / 'brain_scan' / 'test_scan.npz'} not found (set TFREG_TEST_DATA to shared/data)")
        return None
    try:
        import nilearn  # noqa: F401
    except ImportError:
        print("skipped: nilearn (which bundles the MNI152 template) is not installed: pip install -e '.[demo]'")
        return None
    started = time.perf_counter()
    result = {
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items()},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
        "paper_liver_dice": PAPER_LIVER_DICE,
        **_load("start"),
    }
    work = Path(tempfile.mkdtemp(prefix="macjnet_ablation_")) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        anatomies = [brain_scan_anatomy(root), mni_anatomy()]
        train_subjects = make_subjects(anatomies, settings, settings.train_per_brain, seed=1000)
        test_subjects = make_subjects(anatomies, settings, settings.test_per_brain, seed=2000)
        train = make_pairs(train_subjects, settings.train_pairs, settings, seed=11)
        test = make_pairs(test_subjects, settings.test_pairs, settings, seed=22)
        shape = train.moving.shape[1:]
        n = settings.train_pairs
        all_dir = write_paired(work / "data" / "all", train, range(n))
        result["data"] = {
            "seconds": time.perf_counter() - t0,
            "shape": list(shape),
            "train_pairs": n,
            "test_pairs": settings.test_pairs,
        }
        print(
            f"[data] {n} train / {settings.test_pairs} test pairs {shape}, {result['data']['seconds']:.0f} s",
            flush=True,
        )
        spacing = settings.spacing_mm
        per_run: Dict[str, Dict[int, Dict[str, np.ndarray]]] = {"before": {}}
        per_run.update({name: {} for name in RUNS})
        seg_scores: Dict[str, List[float]] = {}
        records = []
        for seed in settings.seeds:
            per_run["before"][seed] = evaluate(test, None, spacing)
            reg = {}
            wanted = [name for name in RUNS if name in settings.runs]
            for similarity in [s for s in SIMILARITIES if any(RUNS[n][0] == s for n in wanted)]:
                model, ckpt, record = train_registration(work, similarity, all_dir, n, shape, settings, seed)
                reg[similarity] = ckpt
                if f"reg_{similarity}" not in wanted:
                    continue
                per_run[f"reg_{similarity}"][seed] = evaluate(test, predict_ddfs(model, test), spacing)
                records.append(dict(record, run=f"reg_{similarity}", seed=seed))
                print(
                    f"[reg_{similarity} seed {seed}] WM Dice {np.mean(per_run[f'reg_{similarity}'][seed]['wm']):.4f} "
                    f"in {record['seconds']:.0f} s (load {record['load_end_1min']:.1f})",
                    flush=True,
                )
            segs = {}
            for fraction in sorted({RUNS[n][1] for n in wanted if RUNS[n][1] is not None}):
                rows = np.flatnonzero(labeled_pairs(n, fraction, seed)).tolist()
                tag = f"{int(round(fraction * 100))}"
                data_dir = write_paired(work / "data" / f"labelled_{tag}_seed{seed}", train, rows)
                ckpts = []
                for role, image_role in (("mr", "moving"), ("ct", "fixed")):
                    model, ckpt, record = train_segmenter(work, role, data_dir, len(rows), shape, settings, seed, tag)
                    images = test.moving if image_role == "moving" else test.fixed
                    labels = test.moving_labels if image_role == "moving" else test.fixed_labels
                    dice = pretrained_segmenter_dice(model, image_role, images, labels)
                    seg_scores.setdefault(f"{role.upper()} pre-trained {tag} %", []).append(float(dice.mean()))
                    records.append(dict(record, run=f"seg_{role}_{tag}", seed=seed, dice=float(dice.mean())))
                    ckpts.append(ckpt)
                segs[fraction] = ckpts
            for name, (similarity, fraction) in RUNS.items():
                if fraction is None or name not in wanted:
                    continue
                inits = (reg[similarity],) + tuple(segs[fraction])
                model, _, record = train_joint(work, similarity, fraction, all_dir, n, shape, inits, settings, seed)
                per_run[name][seed] = evaluate(test, predict_ddfs(model, test), spacing)
                tag = f"{int(round(fraction * 100))} %"
                for role, segmenter, images, labels in (
                    ("MR", model.moving_segmenter, test.moving, test.moving_labels),
                    ("CT", model.fixed_segmenter, test.fixed, test.fixed_labels),
                ):
                    if similarity == "macmind":
                        seg_scores.setdefault(f"{role} joint {tag}", []).append(
                            float(segmenter_dice(segmenter, images, labels).mean())
                        )
                records.append(dict(record, run=name, seed=seed))
                print(
                    f"[{name} seed {seed}] WM Dice {np.mean(per_run[name][seed]['wm']):.4f} "
                    f"in {record['seconds']:.0f} s (load {record['load_end_1min']:.1f})",
                    flush=True,
                )
            shutil.rmtree(work / "logs", ignore_errors=True)
        result["runs"] = records
        per_run = {name: by_seed for name, by_seed in per_run.items() if by_seed}
        result["aggregate"] = {name: aggregate(by_seed) for name, by_seed in per_run.items() if by_seed}
        result["raw"] = {
            name: {str(s): {k: v.tolist() for k, v in m.items()} for s, m in by_seed.items()}
            for name, by_seed in per_run.items()
        }
        result["segmenters"] = {k: float(np.mean(v)) for k, v in seg_scores.items()}
        result["comparisons"] = [list(c) for c in COMPARISONS if c[0] in per_run and c[1] in per_run]
        result["differences"] = {
            f"{a} - {b}": {
                key: summary([float(np.nanmean(per_run[a][s][key] - per_run[b][s][key])) for s in settings.seeds])
                for key in ("wm", "sgm", "hd95_wm", "tre", "folding")
            }
            for a, b in COMPARISONS
            if a in per_run and b in per_run
        }
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = time.perf_counter() - started
    result.update(_load("end"))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1))
    print()
    print(markdown(result))
    print(
        f"\nTotal {result['seconds'] / 60:.1f} min; load average at start {result['load_start_1min']:.2f} / "
        f"{result['load_start_5min']:.2f}, at end {result['load_end_1min']:.2f} / {result['load_end_5min']:.2f}; "
        f"raw results: {json_path}"
    )
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny grid, a few steps, one seed")
    parser.add_argument("--ndim", type=int, choices=(2, 3), help="2-D slices (default) or 3-D volumes")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--steps", type=int, nargs=3, metavar=("REG", "SEG", "JOINT"), help="steps per stage")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), help="only these runs (default all)")
    parser.add_argument(
        "--macmind-weight",
        type=float,
        help="macMIND's loss weight (default the configs' 20 on the channel sum; 20/288 = the mean over channels)",
    )
    parser.add_argument("--json", type=Path, help="raw results (default benchmarks/results/macjnet_ablation*.json)")
    parser.add_argument("--keep", type=Path, help="work folder to keep (data, logs); default a temporary one")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else (THREE_D if args.ndim == 3 else FULL)
    changes = {}
    if args.quick and args.ndim:
        changes["ndim"] = args.ndim
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if args.runs:
        changes["runs"] = tuple(args.runs)
    if args.macmind_weight is not None:
        changes["macmind_weight"] = args.macmind_weight
    if args.steps:
        changes.update(reg_steps=args.steps[0], seg_steps=args.steps[1], joint_steps=args.steps[2])
    if changes:
        settings = Settings(**dict(vars(settings), **changes))
    suffix = "_quick" if args.quick else ("_3d" if settings.ndim == 3 else "")
    run(settings, args.json or REPO / "benchmarks" / "results" / f"macjnet_ablation{suffix}.json", args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

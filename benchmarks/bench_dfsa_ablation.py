"""He, He and Cao 2022's ablations (fused scales, attention), offline on real brain anatomy (issue 13, item 7).

"Deformable image registration with attention-guided fusion of multi-scale deformation fields" registers chest
X-rays (lungs) with a dense multi-branch network whose per-scale fields are fused by DFSA blocks, fed with
images hard-masked by a frozen segmenter. Two of its ablations:

- the number of fused scales (Fig. 9, box plots only): every measure (DSC, HD, ASSD, JAC) improves from 1
  to 4 fused scales;
- attention (Table 4): with the hard attention, DSC rises by 0.013 (JSRT), 0.020 (Montgomery) and 0.022
  (Shenzhen), HD and ASSD fall, and the number of folded pixels falls.

This script repeats both on 2-D brain slices with tfreg's own API on a 2-core CPU::

    python benchmarks/bench_dfsa_ablation.py                 # full run (about 30 minutes)
    python benchmarks/bench_dfsa_ablation.py --quick         # smoke run (a few minutes)
    python benchmarks/bench_dfsa_ablation.py --json out.json --seeds 0 1 2 --reg-steps 200

Data (nothing downloaded; ``$TFREG_TEST_DATA``, default ``../shared/data``; skipped with a message when the
brain scan is absent): the two brains of ``benchmarks/bench_wssamnet_ablation.py`` (``brain_scan``'s T1 with
its aseg, and nilearn's MNI152 template with its tissue maps), each deformed per "subject" by a random
small affine and smooth deformation with a random bias field and gamma, and resampled onto ONE axial slice
of 64 x 64 pixels of 3 mm through the centre of the brain's bounding box (a 64 x 64 x 1 grid: the 3-D
deformation also moves the slice through the volume, as a different subject would). The chest X-rays' lungs
become the cerebral white matter (the four-label map's label 3): a large structure with a detailed
outline, surrounded by tissue (cortex, deep grey matter, CSF) that the hard attention removes from the
registration network's input, as it removes the ribs, heart and clavicles around the lungs. The
segmenter's target and every measure are on that ROI.

Protocol, per seed (the configs are the repository's ``config/dfsa_segmenter_jsrt.yaml``,
``config/dfsa_label_autoencoder.yaml`` and ``config/dfsa_jsrt.yaml`` train sections, with the sizes below):

1. the attention segmenter (``segmentation`` model, ``unet_segmenter`` of about 1.9 M parameters, sigmoid,
   CE + 1.75 contour) on the training subjects' images and WM masks;
2. the label auto-encoder (``label_autoencoder``, CE + 2.0 contour, label-swap noise) on the WM masks; its
   encoder is the frozen ``embedding`` loss' network;
3. each variant (fused scales 1, 2, 3, 4 with attention; 4 without) trains a ``dfsa`` model with the frozen
   segmenter and the paper's loss ``-(NCC + SSIM) + CE + 0.1 AE + 3.5 TV`` for the same number of steps, on
   random training pairs drawn with replacement (AC-RegNet's sampling), same optimiser, batch and seed.

Evaluation (NumPy/SciPy only, independent of tfreg's losses and warp) on every ordered pair of the held-out
subjects (the paper tests "all pairs of the test set"): the predicted DDF warps the moving WM mask by nearest
neighbour; DSC; Hausdorff distance (the maximum, not a percentile) and ASSD between the mask boundaries in
mm (3 mm pixels); JAC = the number of pixels with ``det(I + grad u) <= 0`` (central differences). Mean and
std over pairs (of the seed-mean per pair) and the std of the seeds' means. The identity is reported too.

Deviations forced by the budget (2 CPU cores, < 40 minutes in all):
brain slices instead of chest X-rays; 64 x 64 for training AND testing (the paper tests at 256 x 256, which
tfreg supports with ``tfreg_predict --full_resolution``, but there is no 256 x 256 ground truth here without
inventing one); batch 8 instead of 32; 200 registration steps instead of 18,000; 100 steps for the
segmenter and the auto-encoder (batches of 4 pairs, 8 images). After those few steps Keras' batch-norm
moving statistics (momentum 0.99) still lag the weights, so each network's statistics are recomputed on one
batch of 64 training pairs before it is used in inference mode (:func:`recalibrate_batch_norm`); without
that the segmenter's inference-mode Dice was 0.08 (0.92 in training mode). Three pilot runs (seed 0, 200
steps, on this data) set these choices: (1) TV in voxel units without the recalibration left the test DSC
at the identity's (0.584) to 8 digits; (2) TV in voxel units with it gave 0.574; (3) TV in the [-1, 1]
units of the paper's AC-RegNet code (``tv`` with ``units: normalized``, as the repository's configs now
weigh it) with it gave 0.653 (``scales_4``) and 0.641 (``no_attention``). Nothing else was tuned.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level is set)

#: the ROI: label 3 (white matter) of bench_wssamnet_ablation's four-label map
ROI_LABEL = 3
#: the variants: name -> (fused scales, hard attention)
VARIANTS = {
    "scales_1": (1, True),
    "scales_2": (2, True),
    "scales_3": (3, True),
    "scales_4": (4, True),
    "no_attention": (4, False),
}
#: He, He and Cao 2022 Table 4 (mean (std) over test pairs): dataset -> {no_attention, attention} ->
#: (DSC, HD mm, ASSD mm, JAC pixels)
PAPER_TABLE4 = {
    "JSRT": {"no_attention": (0.957, 15.010, 1.823, 125.859), "attention": (0.970, 9.230, 1.244, 48.236)},
    "MONT": {"no_attention": (0.943, 17.235, 2.183, 658.791), "attention": (0.963, 13.385, 1.722, 263.380)},
    "SHEN": {"no_attention": (0.935, 18.518, 2.483, 63.923), "attention": (0.957, 11.720, 1.637, 57.464)},
}
MEASURES = ("dsc", "hd_mm", "assd_mm", "jac")


@dataclass(frozen=True)
class Settings:
    """Sizes of one run: slice shape (pixels) and spacing (mm); subjects per brain (train, test); steps of the
    segmenter, the auto-encoder and each registration run; batch size; learning rate (all three stages,
    AC-RegNet's Adam 1e-3); seeds; channels of the segmenter and of the registration network."""

    shape: Tuple[int, int] = (64, 64)
    spacing_mm: float = 3.0
    train_per_brain: int = 20
    test_per_brain: int = 5
    seg_steps: int = 100
    ae_steps: int = 100
    reg_steps: int = 200
    batch_size: int = 8
    learning_rate: float = 1.0e-3
    seeds: Tuple[int, ...] = (0, 1, 2)
    seg_channels: Tuple[int, ...] = (16, 32, 64, 128, 256)
    reg_channels: Tuple[int, ...] = (16, 32, 64, 128)


FULL = Settings()
QUICK = Settings(
    train_per_brain=3,
    test_per_brain=2,
    seg_steps=2,
    ae_steps=2,
    reg_steps=2,
    batch_size=4,
    seeds=(0,),
    seg_channels=(4, 8),
    reg_channels=(4, 4, 8, 8),
)


def load_wssamnet_bench():
    """benchmarks/bench_wssamnet_ablation.py as a module: its brains, subjects and label maps are reused."""
    name = "bench_wssamnet_ablation"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_wssamnet_ablation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------- data
@dataclass
class Slices:
    """One split: ``images`` ``(N, X, Y)`` float32 in [0, 1] and ``masks`` ``(N, X, Y)`` float32 {0, 1} (the
    ROI), ``sources`` the brain of each subject."""

    images: np.ndarray
    masks: np.ndarray
    sources: List[str]


def make_slices(anatomies, settings: Settings, per_brain: int, seed: int) -> Slices:
    """``per_brain`` subjects per brain on a ``shape + (1,)`` grid (one axial slice), squeezed to 2-D."""
    bench = load_wssamnet_bench()
    grid = bench.Settings(shape=tuple(settings.shape) + (1,), spacing_mm=settings.spacing_mm)
    subjects = bench.make_subjects(anatomies, grid, per_brain, seed)
    return Slices(
        subjects.images[..., 0],
        (subjects.labels[..., 0] == ROI_LABEL).astype(np.float32),
        list(subjects.sources),
    )


def all_ordered_pairs(count: int) -> List[Tuple[int, int]]:
    """Every ordered (moving, fixed) pair of distinct subjects: ``count (count - 1)`` pairs."""
    return [(m, f) for m in range(count) for f in range(count) if m != f]


class RandomPairs(keras.utils.PyDataset):
    """``steps`` batches of random (moving, fixed) training pairs of distinct subjects, drawn with replacement
    (AC-RegNet's ``random_pairs``), reproducible from ``seed``; each batch is tfreg's input dict."""

    def __init__(self, slices: Slices, steps: int, batch_size: int, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        count = len(slices.images)
        self.slices, self.steps = slices, steps
        self.moving = rng.integers(0, count, (steps, batch_size))
        self.fixed = (self.moving + rng.integers(1, count, (steps, batch_size))) % count  # never the moving one

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        m, f = self.moving[index], self.fixed[index]
        return {
            "moving_image": self.slices.images[m],
            "fixed_image": self.slices.images[f],
            "moving_label": self.slices.masks[m],
            "fixed_label": self.slices.masks[f],
            "indices": np.zeros((len(m), 3), np.float32),
        }


# ---------------------------------------------------------------------- evaluation (NumPy/SciPy only)
def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    inside = mask > 0.5
    return inside & ~ndimage.binary_erosion(inside, border_value=0)


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: float) -> Tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each boundary pixel of ``a`` to the boundary of ``b``, and back."""
    ba, bb = boundary(a), boundary(b)
    to_b = ndimage.distance_transform_edt(~bb, sampling=spacing)
    to_a = ndimage.distance_transform_edt(~ba, sampling=spacing)
    return to_b[ba], to_a[bb]


def folded_pixels(ddf: np.ndarray) -> int:
    """Pixels with ``det(I + grad u) <= 0``, ``u`` ``(X, Y, 2)`` in pixels, central differences (one-sided
    at the border, :func:`numpy.gradient`)."""
    grads = [np.gradient(ddf[..., c], axis=(0, 1)) for c in range(2)]  # grads[c][a] = d u_c / d x_a
    det = (1 + grads[0][0]) * (1 + grads[1][1]) - grads[0][1] * grads[1][0]
    return int(np.count_nonzero(det <= 0))


def pair_measures(fixed_mask: np.ndarray, warped_mask: np.ndarray, ddf: Optional[np.ndarray], spacing: float):
    """``(dsc, hd_mm, assd_mm, jac)`` of one pair; JAC 0 for the identity (``ddf`` None)."""
    a, b = fixed_mask > 0.5, warped_mask > 0.5
    dsc = 2.0 * np.logical_and(a, b).sum() / max(int(a.sum()) + int(b.sum()), 1)
    d_ab, d_ba = surface_distances(a, b, spacing)
    hd = float(max(d_ab.max(), d_ba.max()))
    assd = float((d_ab.sum() + d_ba.sum()) / (len(d_ab) + len(d_ba)))
    return float(dsc), hd, assd, 0 if ddf is None else folded_pixels(ddf)


def evaluate(test: Slices, pairs, ddfs: Optional[np.ndarray], spacing: float) -> np.ndarray:
    """``(P, 4)`` measures of every pair (identity when ``ddfs`` is None)."""
    rows = []
    for i, (m, f) in enumerate(pairs):
        ddf = None if ddfs is None else ddfs[i]
        # the WSSAMNet++ benchmark's nearest-neighbour warp: mask(p + ddf(p)), edges replicated
        warped = test.masks[m] if ddf is None else load_wssamnet_bench().warp_label_map(test.masks[m], ddf)
        rows.append(pair_measures(test.masks[f], warped, ddf, spacing))
    return np.asarray(rows, np.float64)


# ---------------------------------------------------------------------- training through tfreg
def train_section(name: str) -> dict:
    """The ``train`` section of the repository's ``config/<name>.yaml``."""
    import yaml

    with open(REPO / "config" / f"{name}.yaml") as stream:
        return yaml.safe_load(stream)["train"]


def model_keys(model_class, section: dict) -> dict:
    """The keys of a ``train`` section that ``model_class`` reads (the optimiser, epochs, ... are the engine's)."""
    return {k: v for k, v in section.items() if k in model_class.config_keys}


def fit(model, data, steps: int, learning_rate: float) -> float:
    """Adam at ``learning_rate`` for ``steps`` batches of ``data``; returns the seconds."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def calibration_batch(train: Slices, pairs: int = 64, seed: int = 99) -> dict:
    """``pairs`` random training pairs as one input dict (the same for every run)."""
    return RandomPairs(train, 1, pairs, seed)[0]


def recalibrate_batch_norm(model, inputs: dict) -> None:
    """Set every batch-norm layer's moving statistics to those of ``inputs`` (one batch, ``training=True``,
    momentum 0), then restore the momenta: "precise BN" (Wu and Johnson 2021).

    With Keras' momentum 0.99 the moving statistics lag the weights by about a hundred steps, so after this
    benchmark's few hundred steps a network is far worse in inference mode than in training mode (the
    segmenter: Dice 0.08 against 0.92 after 100 steps). A full-length training does not need this. Frozen
    parts of a model (the dfsa model's segmenter) run in inference mode and keep their statistics.
    """
    # Keras has no public recursive layer walk; _flatten_layers is what Model.summary uses
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        model(inputs, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def pretrain(model_class, config_name: str, train: Slices, steps: int, settings: Settings, seed: int, **changes):
    """One of the frozen networks: ``model_class`` from ``config/<config_name>.yaml``'s train section (with
    ``changes`` to its keys), trained ``steps`` batches of ``batch_size // 2`` pairs, batch norm recalibrated
    (for the auto-encoder with its label-swap noise on, as in training mode); returns (model, record)."""
    section = dict(train_section(config_name), **changes)
    keras.utils.set_random_seed(seed)
    model = model_class(
        settings.shape, settings.shape, index_size=3, labeled=True, config=model_keys(model_class, section)
    )
    pairs = RandomPairs(train, steps, settings.batch_size // 2, seed)
    seconds = fit(model, pairs, steps, settings.learning_rate)
    recalibrate_batch_norm(model, calibration_batch(train))
    return model, {"seconds": seconds, "steps": steps}


def train_segmenter(train: Slices, settings: Settings, seed: int):
    """The attention segmenter (``config/dfsa_segmenter_jsrt.yaml``, ``seg_channels``); (model, record)."""
    from tfreg.models import SegmentationModel

    backbone = dict(train_section("dfsa_segmenter_jsrt")["backbone"], channels=list(settings.seg_channels))
    return pretrain(
        SegmentationModel, "dfsa_segmenter_jsrt", train, settings.seg_steps, settings, seed, backbone=backbone
    )


def train_autoencoder(train: Slices, settings: Settings, seed: int):
    """The label auto-encoder (``config/dfsa_label_autoencoder.yaml``); returns (encoder, record)."""
    from tfreg.models import LabelAutoencoder

    model, record = pretrain(LabelAutoencoder, "dfsa_label_autoencoder", train, settings.ae_steps, settings, seed)
    return model.encoder, record


def train_registration(train: Slices, variant: str, segmenter, encoder, settings: Settings, seed: int):
    """One ablation run (``config/dfsa_jsrt.yaml``'s train section with the variant's fused scales and
    attention); returns (model, record)."""
    from tfreg.models import DFSAModel

    scales, attention = VARIANTS[variant]
    section = train_section("dfsa_jsrt")
    section.pop("init_from", None)  # the segmenter's weights are copied below
    section["backbone"] = dict(section["backbone"], channels=list(settings.reg_channels), fused_branches=scales)
    section["segmenter"] = dict(section["segmenter"])
    section["segmenter"]["backbone"] = dict(section["segmenter"]["backbone"], channels=list(settings.seg_channels))
    if not attention:
        section["attention"] = {"name": "none"}
    section["loss"] = dict(section["loss"])
    section["loss"]["label"] = [
        dict(entry, encoder=encoder) if entry["name"] == "embedding" else entry for entry in section["loss"]["label"]
    ]
    keras.utils.set_random_seed(seed)
    model = DFSAModel(settings.shape, settings.shape, index_size=3, labeled=True, config=model_keys(DFSAModel, section))
    data = RandomPairs(train, settings.reg_steps, settings.batch_size, seed)
    model(data[0])  # build, then load the frozen segmenter
    model.segmenter.backbone.set_weights(segmenter.backbone.get_weights())
    model.segmenter.head.set_weights(segmenter.head.get_weights())
    record = load_wssamnet_bench()._load("start")  # the 1/5/15-min load averages
    record.update(seconds=fit(model, data, settings.reg_steps, settings.learning_rate), steps=settings.reg_steps)
    recalibrate_batch_norm(model, calibration_batch(train))
    record.update(load_wssamnet_bench()._load("end"))
    record["registration_parameters"] = int(sum(int(np.prod(v.shape)) for v in model.backbone.trainable_variables))
    return model, record


def segmenter_dice(model, test: Slices) -> float:
    """Mean Dice of the segmenter's binary masks (``p >= 0.5``) against the held-out ROI masks."""
    out = model(
        {"moving_image": test.images, "fixed_image": test.images, "indices": np.zeros((len(test.images), 3))},
        training=False,
    )
    predicted = np.asarray(out["moving_segmentation"])[..., 0] >= 0.5
    truth = test.masks > 0.5
    inter = np.logical_and(predicted, truth).sum(axis=(1, 2))
    return float(np.mean(2.0 * inter / np.maximum(predicted.sum(axis=(1, 2)) + truth.sum(axis=(1, 2)), 1)))


# ---------------------------------------------------------------------- results
def aggregate(per_seed: Dict[int, np.ndarray]) -> Dict[str, dict]:
    """Per measure: mean and std over pairs of the seed-mean per pair, and the std of the seeds' means."""
    stacked = np.stack([per_seed[s] for s in sorted(per_seed)])  # (seeds, pairs, 4)
    pair_means = stacked.mean(axis=0)
    seed_means = stacked.mean(axis=1)
    return {
        name: {
            "mean": float(pair_means[:, i].mean()),
            "std_pairs": float(pair_means[:, i].std()),
            "std_seeds": float(seed_means[:, i].std()),
            "per_seed": [float(v) for v in seed_means[:, i]],
        }
        for i, name in enumerate(MEASURES)
    }


def markdown(result: dict) -> str:
    """The results table (ours, then the paper's Table 4)."""
    rows = [
        "| Variant | fused scales | attention | DSC | HD (mm) | ASSD (mm) | JAC (pixels) | DSC per seed |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(stats):
        return f"{stats['mean']:.3f} ({stats['std_pairs']:.3f}; seeds {stats['std_seeds']:.3f})"

    for name in ["identity"] + list(VARIANTS):
        stats = result["measures"][name]
        scales, attention = VARIANTS.get(name, ("-", "-"))
        rows.append(
            f"| {name} | {scales} | {attention} | "
            + " | ".join(cell(stats[m]) for m in MEASURES)
            + " | "
            + ", ".join(f"{v:.3f}" for v in stats["dsc"]["per_seed"])
            + " |"
        )
    rows += ["", "| Paper (Table 4) | attention | DSC | HD (mm) | ASSD (mm) | JAC |", "|---|---|---|---|---|---|"]
    for dataset, entries in PAPER_TABLE4.items():
        for key, values in entries.items():
            rows.append(f"| {dataset} | {key == 'attention'} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    return "\n".join(rows)


def run(settings: Settings, json_path: Optional[Path]) -> Optional[dict]:
    """The whole benchmark; None (with a message) when the brain scan is absent."""
    bench = load_wssamnet_bench()
    root = bench.data_root()
    if not (root / "brain_scan" / "test_scan.npz").is_file():
        print(f"skipped: {root / 'brain_scan' / 'test_scan.npz'} not found (set TFREG_TEST_DATA)")
        return None
    keras.utils.set_random_seed(1234)
    anatomies = [bench.brain_scan_anatomy(root), bench.mni_anatomy()]
    train = make_slices(anatomies, settings, settings.train_per_brain, seed=1000)
    test = make_slices(anatomies, settings, settings.test_per_brain, seed=2000)
    pairs = all_ordered_pairs(len(test.images))
    print(f"{len(train.images)} training and {len(test.images)} test subjects, {len(pairs)} ordered test pairs")
    result = {
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(settings).items()},
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "keras_backend": keras.backend.backend(),
        "test_pairs": len(pairs),
        "runs": {},
        "segmenter_dice": {},
    }
    identity = evaluate(test, pairs, None, settings.spacing_mm)
    measures: Dict[str, Dict[int, np.ndarray]] = {name: {} for name in VARIANTS}
    start = time.perf_counter()
    for seed in settings.seeds:
        segmenter, seg_record = train_segmenter(train, settings, seed)
        encoder, ae_record = train_autoencoder(train, settings, seed)
        result["runs"][f"segmenter_seed{seed}"] = seg_record
        result["runs"][f"autoencoder_seed{seed}"] = ae_record
        for variant in VARIANTS:
            model, record = train_registration(train, variant, segmenter, encoder, settings, seed)
            if variant == "scales_4":
                result["segmenter_dice"][seed] = segmenter_dice(model, test)
            measures[variant][seed] = evaluate(
                test, pairs, load_wssamnet_bench().predict_ddfs(model, test, pairs, 32), settings.spacing_mm
            )
            record["dsc"] = float(measures[variant][seed][:, 0].mean())
            result["runs"][f"{variant}_seed{seed}"] = record
            print(f"seed {seed} {variant}: DSC {record['dsc']:.4f} ({record['seconds']:.0f} s)", flush=True)
    result["seconds_total"] = time.perf_counter() - start
    result["measures"] = {"identity": aggregate({0: identity})}
    result["measures"].update({name: aggregate(measures[name]) for name in VARIANTS})
    result["table"] = markdown(result)
    print(result["table"])
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=1))
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with tiny sizes")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1 2)")
    parser.add_argument("--reg-steps", type=int, default=None, help="steps of each registration run")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    changes = {}
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if args.reg_steps:
        changes["reg_steps"] = args.reg_steps
    if changes:
        settings = Settings(**{**vars(settings), **changes})
    run(settings, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

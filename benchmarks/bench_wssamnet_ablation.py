"""WSSAMNet++'s Table I ablation, offline on real brain anatomy (issue 12, deliverable 6).

"Leveraging Segmentation to Improve Medical Image Registration" (WSSAMNet++) registers OASIS brains
(4 coarse labels) with a RegUNet fed four ways: the original images, the frozen segmenter's predicted
masks only, the images and masks concatenated, and the images with contour attention
(``O = |Lap(M)| M + I``). Its Dice: attention 0.750 > images 0.736 > concat 0.731 > masks only 0.724.
This script repeats that ablation with tfreg's own API on a 2-core CPU::

    python benchmarks/bench_wssamnet_ablation.py                 # full run (about 30 minutes)
    python benchmarks/bench_wssamnet_ablation.py --quick         # smoke run (a few minutes)
    python benchmarks/bench_wssamnet_ablation.py --json out.json --seeds 0 1 2 --reg-steps 120

Data (nothing downloaded; ``$TFREG_TEST_DATA``, default ``../shared/data``; skipped with a message when the
brain scan is absent). Two real brains supply the anatomy:

- ``brain_scan/test_scan.npz``: VoxelMorph's skull-stripped T1 (1 mm) with FreeSurfer aseg labels, mapped to
  four OASIS-like labels (:data:`ASEG_GROUPS`): cortex (cerebral and cerebellar cortex), subcortical grey
  matter (thalamus, caudate, putamen, pallidum, hippocampus, amygdala, accumbens, ventral DC), white matter
  (cerebral and cerebellar white matter, brainstem, white-matter hypointensities, corpus callosum, optic
  chiasm) and CSF (lateral, inferior lateral, 3rd, 4th and 5th ventricles, CSF, choroid plexus). Vessels
  (30, 62) and non-white-matter hypointensities (80) stay background. Its axes are turned into MNI's
  (:func:`to_mni_axes`) so the two brains share one orientation.
- nilearn's MNI152 2009 template (T1, grey- and white-matter probability maps, brain mask, 2 mm): a second,
  different brain. Its labels: white matter = the WM probability; CSF = brain mask - GM - WM; the GM
  probability is subcortical grey matter inside a box around the deep nuclei (MNI x in [-32, 32], y in
  [-42, 26], z in [-28, 18] mm) at more than 10 mm inside the brain mask, cortex elsewhere. That rule is a
  crude stand-in for an atlas (there is none offline): it also calls some medial temporal and ventral
  frontal cortex "subcortical".

"Subjects": each brain is deformed by its own random transform (demos/mni152_brain/demo_data.py's
``random_transform``/``deform``: a small affine part and a smooth displacement field) and given a random
bias field and gamma (``change_intensity``), then resampled onto a 32 x 40 x 32 grid of 5 mm (the brain's
bounding box, anti-aliased; ``--quick``: 24 x 28 x 24 of 7 mm). Half of the subjects come from each brain,
so a pair is either two deformed copies of one brain or a genuinely different-subject pair (brain_scan vs
MNI152). Labels are the argmax of (background, 4 tissue probabilities) after warping. Training subjects
and held-out test subjects are drawn independently; test pairs are a fixed random subset of the ordered
test-subject pairs, balanced over the three pair types.

Protocol (the configs are the repository's ``config/wssamnet_pp_oasis_*.yaml``, merged with an override
written to a temporary folder, and trained with :func:`tfreg.engine.train.train`):

1. One segmentation U-Net (``config/wssamnet_pp_oasis_segmenter.yaml``: ``unet_segmenter``, 4 sigmoid
   classes, Dice) is trained once (seed 0) and shared by every registration run and seed, as the paper
   pre-trains one frozen segmenter. Its per-label Dice on the held-out subjects is reported.
2. For each seed and each variant (``none``/images, ``contour``, ``mask_only``, ``concat``) a ``wssamnet``
   model with the frozen shared segmenter loaded through ``train.init_from`` and DeepReg's ``unet``
   registration backbone is trained for the same number of steps, with the same optimizer, batch and seed
   (``keras.utils.set_random_seed`` and ``dataset.seed``), loss = Dice on the warped labels + bending 0.5.
3. Evaluation (NumPy/SciPy only, independent of tfreg's losses and warp): the predicted DDF warps the
   moving integer label map by nearest neighbour (``moving(p + ddf(p))``, voxels); per-label Dice against
   the fixed labels, mean over the 4 labels per pair; then mean, std and IQR over pairs (of the seed-mean
   pair Dice) and std over the seeds' means. The Dice before registration (identity) is reported too.

Deviations forced by the budget (2 CPU cores, < 40 minutes in all), fixed before any variant was compared:
the grid is 5x coarser per axis than OASIS (160 x 192 x 224 at 1 mm; a 48 x 56 x 48 grid measured 10 s
per registration step on the shared cores); the segmenter has 3 levels of [8, 16, 32] channels instead of
[16, 32, 64, 128]; batch 2 instead of 4; the segmenter trains 120 steps and each registration run 40
steps, far from convergence; the learning rate is 3e-3 instead of the paper's 1e-4. The rate was set by
two stopped full runs, judged only on whether training moved at all: at 1e-3, 42 steps left the
zero-initialised DDF head at the identity (images, seed 0: Dice 0.6006 against 0.6005 before
registration); at 1e-2 (DeepReg's rate for its unpaired labeled DDF config) training diverged (images
0.452, contour attention 0.0001). Everything else follows the configs.

Output: a Markdown table on stdout and a JSON of every raw number (``--json``, default
``benchmarks/results/wssamnet_ablation[_quick].json``), with ``os.getloadavg()`` beside every timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: the four coarse labels, channel order of the label files (integer label ``k + 1`` in label maps)
LABEL_NAMES = ("cortex", "subcortical_gm", "white_matter", "csf")
#: FreeSurfer aseg label numbers of each coarse label (the rest, e.g. vessels 30/62 and 80, is background)
ASEG_GROUPS = {
    "cortex": (3, 42, 8, 47),
    "subcortical_gm": (10, 49, 11, 50, 12, 51, 13, 52, 17, 53, 18, 54, 26, 58, 28, 60),
    "white_matter": (2, 41, 7, 46, 16, 77, 85, 251, 252, 253, 254, 255),
    "csf": (4, 43, 5, 44, 14, 15, 72, 24, 31, 63),
}
#: MNI152 grey matter inside this box (MNI x, y, z ranges, mm; basal ganglia, thalamus, hippocampus and
#: amygdala) and deeper than MNI_DEEP_GM_DEPTH_MM inside the brain mask counts as subcortical grey matter
MNI_DEEP_GM_BOX = ((-32.0, 32.0), (-42.0, 26.0), (-28.0, 18.0))
MNI_DEEP_GM_DEPTH_MM = 10.0
#: the ablation's variants: name -> (repository config suffix, attention name); Table I's order
VARIANTS = {
    "images": ("images", "none"),
    "contour": ("contour", "contour"),
    "mask_only": ("masks", "mask_only"),
    "concat": ("concat", "concat"),
}
#: WSSAMNet++ Table I (OASIS, RegUNet, 4 labels): Dice mean and +- (std over test pairs, presumably)
PAPER = {"images": (0.736, 0.018), "contour": (0.750, 0.013), "mask_only": (0.724, 0.021), "concat": (0.731, 0.016)}
PAPER_ORDER = ("contour", "images", "concat", "mask_only")
PAIR_TYPES = ("scan-scan", "mni-mni", "scan-mni")


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. Attributes: grid shape (voxels) and spacing (mm); subjects per brain in the
    train and test splits; test pairs (a multiple of 3: balanced over pair types); training steps of the
    segmenter and of each registration run; batch size; learning rate; seeds; segmenter channels."""

    shape: Tuple[int, int, int] = (32, 40, 32)
    spacing_mm: float = 5.0
    train_per_brain: int = 12
    test_per_brain: int = 4
    test_pairs: int = 24
    seg_steps: int = 120
    reg_steps: int = 40
    batch_size: int = 2
    learning_rate: float = 3.0e-3
    seeds: Tuple[int, ...] = (0, 1, 2)
    seg_channels: Tuple[int, ...] = (8, 16, 32)


FULL = Settings()
QUICK = Settings(
    shape=(24, 28, 24),
    spacing_mm=7.0,
    train_per_brain=3,
    test_per_brain=2,
    test_pairs=6,
    seg_steps=4,
    reg_steps=2,
    seeds=(0,),
    seg_channels=(4, 8),
)


def data_root() -> Path:
    """``$TFREG_TEST_DATA``, else ``../shared/data`` next to the repository."""
    return Path(os.environ.get("TFREG_TEST_DATA", REPO.parent / "shared" / "data"))


def load_demo_data():
    """demos/mni152_brain/demo_data.py as a module (demos/ is not an installed package)."""
    name = "mni152_demo_data"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "demos" / "mni152_brain" / "demo_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------- labels and anatomy
def coarse_labels(aseg: np.ndarray) -> np.ndarray:
    """FreeSurfer aseg numbers ``(*S)`` -> integer map ``(*S)`` uint8: 0 background, ``k + 1`` for
    :data:`LABEL_NAMES` ``[k]`` (see :data:`ASEG_GROUPS`)."""
    aseg = np.rint(np.asarray(aseg)).astype(np.int64)
    out = np.zeros(aseg.shape, np.uint8)
    for k, name in enumerate(LABEL_NAMES):
        out[np.isin(aseg, ASEG_GROUPS[name])] = k + 1
    return out


def to_mni_axes(volume: np.ndarray) -> np.ndarray:
    """brain_scan's voxel axes ``(160, 192, 224)`` = (right->left, superior->inferior, posterior->anterior)
    turned into MNI152's (left->right, posterior->anterior, inferior->superior): ``(160, 224, 192, ...)``.

    The axes were read off the aseg: the left cerebellum (8) lies at higher axis-0 indices than the right
    (47), the brainstem (16) at higher axis-1 indices than the ventricles (4), the cerebellum at lower
    axis-2 indices than the brainstem.
    """
    return np.flip(np.swapaxes(volume, 1, 2), axis=(0, 2))


def label_probabilities(label_map: np.ndarray, num_labels: int = len(LABEL_NAMES)) -> np.ndarray:
    """Integer map ``(*S)`` -> one-hot float32 ``(*S, num_labels)`` (background has no channel)."""
    return np.stack([label_map == k + 1 for k in range(num_labels)], axis=-1).astype(np.float32)


def to_label_map(probabilities: np.ndarray) -> np.ndarray:
    """Tissue probabilities ``(*S, L)`` (summing to at most 1) -> integer map ``(*S)`` uint8: the argmax of
    (background = 1 - sum, tissues), 0 for background."""
    background = 1.0 - probabilities.sum(axis=-1, keepdims=True)
    return np.argmax(np.concatenate([background, probabilities], axis=-1), axis=-1).astype(np.uint8)


def brain_scan_anatomy(root: Path):
    """The brain_scan subject as demo_data's ``Anatomy``: image ``(160, 224, 192)`` in [0, 1] and the four
    coarse labels one-hot ``(160, 224, 192, 4)``, MNI axes, 1 mm."""
    demo = load_demo_data()
    from tfreg.data.geometry import ImageGeometry

    with np.load(root / "brain_scan" / "test_scan.npz") as archive:
        image = to_mni_axes(archive["vol"].astype(np.float32))
        labels = label_probabilities(to_mni_axes(coarse_labels(archive["seg"])))
    return demo.Anatomy("brain_scan", np.ascontiguousarray(image), labels, ImageGeometry.identity(3))


def mni_label_probabilities(grey: np.ndarray, white: np.ndarray, mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """MNI152's four label probabilities ``(*S, 4)`` from its GM/WM probability maps and brain mask ``(*S)``.

    Subcortical GM: the GM probability inside :data:`MNI_DEEP_GM_BOX` (MNI mm, from the voxel-to-RAS ``(4, 4)``
    ``affine``) at more than :data:`MNI_DEEP_GM_DEPTH_MM` from the outside of the mask (``mask > 0.5``,
    Euclidean); cortex: the rest of the GM probability. White matter: the WM probability. CSF:
    ``mask - GM - WM`` clipped to [0, 1]. All are zero outside the mask.
    """
    inside = mask > 0.5
    spacing = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    depth = ndimage.distance_transform_edt(inside, sampling=spacing)
    ijk = np.indices(mask.shape, dtype=np.float64).reshape(3, -1)
    xyz = (np.asarray(affine)[:3, :3] @ ijk + np.asarray(affine)[:3, 3:]).reshape((3,) + mask.shape)
    in_box = np.all([(xyz[a] >= lo) & (xyz[a] <= hi) for a, (lo, hi) in enumerate(MNI_DEEP_GM_BOX)], axis=0)
    deep = in_box & (depth > MNI_DEEP_GM_DEPTH_MM)
    grey, white = grey * inside, white * inside
    csf = np.clip(inside - grey - white, 0.0, 1.0)
    return np.stack([grey * ~deep, grey * deep, white, csf], axis=-1).astype(np.float32)


def mni_anatomy():
    """nilearn's MNI152 2009 template at 2 mm as demo_data's ``Anatomy`` with :func:`mni_label_probabilities`."""
    demo = load_demo_data()
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=2)
    grey = datasets.load_mni152_gm_template(resolution=2).get_fdata(dtype=np.float32)
    white = datasets.load_mni152_wm_template(resolution=2).get_fdata(dtype=np.float32)
    mask = datasets.load_mni152_brain_mask(resolution=2).get_fdata(dtype=np.float32)
    image = np.clip(template.get_fdata(dtype=np.float32), 0.0, None) * (mask > 0.5)
    labels = mni_label_probabilities(grey, white, mask, template.affine)
    return demo.Anatomy("mni152", image / image.max(), labels, demo.geometry_from_ras_affine(template.affine))


# ---------------------------------------------------------------------- subjects and pairs
def make_subject(grid, params, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """One simulated subject: ``grid``'s brain under a random transform and intensity change.

    Returns: image ``(X, Y, Z)`` float32 min-max normalised to [0, 1] (as tfreg's loaders do) and integer
    label map ``(X, Y, Z)`` uint8 (:func:`to_label_map`).
    """
    demo = load_demo_data()
    image, probabilities = demo.deform(grid, demo.random_transform(rng, params))
    image = demo.change_intensity(image, rng, params)
    low, high = float(image.min()), float(image.max())
    image = (image - low) / max(high - low, 1e-12)
    return image.astype(np.float32), to_label_map(probabilities)


@dataclass
class Subjects:
    """Simulated subjects of one split: ``images`` ``(N, X, Y, Z)`` float32, ``labels`` ``(N, X, Y, Z)``
    uint8 integer maps, ``sources`` the brain of each (``brain_scan`` or ``mni152``)."""

    images: np.ndarray
    labels: np.ndarray
    sources: List[str] = field(default_factory=list)


def make_subjects(anatomies: Sequence, settings: Settings, per_brain: int, seed: int) -> Subjects:
    """``per_brain`` subjects of each anatomy on the settings' grid, alternating brains; reproducible."""
    demo = load_demo_data()
    params = demo.Params(shape=tuple(settings.shape), spacing_mm=settings.spacing_mm)
    grids = [demo.make_output_grid(a, settings.shape, settings.spacing_mm) for a in anatomies]
    images, labels, sources = [], [], []
    for i in range(per_brain):
        for anatomy, grid in zip(anatomies, grids):
            rng = np.random.default_rng([seed, i, len(sources)])
            image, label = make_subject(grid, params, rng)
            images.append(image)
            labels.append(label)
            sources.append(anatomy.name)
    return Subjects(np.stack(images), np.stack(labels), sources)


def pair_type(source_a: str, source_b: str) -> str:
    """``scan-scan``, ``mni-mni`` or ``scan-mni`` (either order)."""
    kinds = sorted("scan" if s == "brain_scan" else "mni" for s in (source_a, source_b))
    return {("scan", "scan"): "scan-scan", ("mni", "mni"): "mni-mni"}.get(tuple(kinds), "scan-mni")


def test_pairs(sources: Sequence[str], count: int, seed: int) -> List[Tuple[int, int]]:
    """``count`` ordered (moving, fixed) index pairs of distinct subjects, balanced over :data:`PAIR_TYPES`
    (``count // 3`` each, drawn without replacement), in a seeded random order."""
    rng = np.random.default_rng(seed)
    by_type = {t: [] for t in PAIR_TYPES}
    for m in range(len(sources)):
        for f in range(len(sources)):
            if m != f:
                by_type[pair_type(sources[m], sources[f])].append((m, f))
    pairs = []
    for t in PAIR_TYPES:
        options = by_type[t]
        take = min(count // len(PAIR_TYPES), len(options))
        pairs += [options[i] for i in rng.choice(len(options), size=take, replace=False)]
    return pairs


def write_unpaired(folder: Path, subjects: Subjects) -> str:
    """DeepReg's unpaired layout: ``folder/images/subject_NNN.nii.gz`` ``(X, Y, Z)`` and
    ``folder/labels/subject_NNN.nii.gz`` one-hot uint8 ``(X, Y, Z, 4)``."""
    from tfreg.data.image_io import save_image

    for i, (image, label) in enumerate(zip(subjects.images, subjects.labels)):
        name = f"subject_{i:03d}.nii.gz"
        save_image(image, str(folder / "images" / name))
        save_image(label_probabilities(label).astype(np.uint8), str(folder / "labels" / name))
    return str(folder)


# ---------------------------------------------------------------------- evaluation (NumPy/SciPy only)
def dice_per_label(a: np.ndarray, b: np.ndarray, num_labels: int = len(LABEL_NAMES)) -> np.ndarray:
    """Binary Dice ``2|A n B| / (|A| + |B|)`` of each label ``1..num_labels`` of integer maps ``a``, ``b``
    (same shape): ``(num_labels,)``; NaN for a label absent from both."""
    out = np.full(num_labels, np.nan)
    for k in range(num_labels):
        x, y = a == k + 1, b == k + 1
        total = int(x.sum()) + int(y.sum())
        if total:
            out[k] = 2.0 * np.logical_and(x, y).sum() / total
    return out


def warp_label_map(label_map: np.ndarray, ddf: np.ndarray) -> np.ndarray:
    """``label_map(p + ddf(p))`` by nearest neighbour (edges replicated): integer map ``(*S)`` warped by a
    DDF ``(*S, ndim)`` in voxels (tfreg's and DeepReg's convention)."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in label_map.shape], indexing="ij"), axis=0)
    coords = grid + np.moveaxis(ddf, -1, 0)
    return ndimage.map_coordinates(label_map, coords, order=0, mode="nearest").astype(label_map.dtype)


def segmentation_label_map(probabilities: np.ndarray) -> np.ndarray:
    """A sigmoid head's ``(*S, L)`` probabilities -> integer map: the most probable label where it
    exceeds 0.5, else background."""
    best = np.argmax(probabilities, axis=-1)
    return np.where(np.max(probabilities, axis=-1) > 0.5, best + 1, 0).astype(np.uint8)


def summary(values: Sequence[float]) -> Dict[str, float]:
    """Mean, std (ddof 0), median and interquartile range of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(median), "iqr": float(q3 - q1)}


# ---------------------------------------------------------------------- training through tfreg
def _load(tag: str) -> Dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {f"load_{tag}_1min": one, f"load_{tag}_5min": five, f"load_{tag}_15min": fifteen}


def _write_yaml(config: dict, path: Path) -> str:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _epochs(num_images: int, batch_size: int, steps: int) -> Tuple[int, int]:
    """(epochs, steps per epoch) giving at least ``steps`` steps with DeepReg's unpaired sampling
    (``num_images // 2`` pairs per epoch)."""
    per_epoch = max((num_images // 2) // batch_size, 1)
    return max(math.ceil(steps / per_epoch), 1), per_epoch


def _dataset(train_dir: str, settings: Settings, seed: int) -> dict:
    split = {"dir": train_dir, "format": "nifti", "labeled": True}
    return {"train": split, "valid": None, "image_shape": list(settings.shape), "seed": int(seed)}


def train_segmenter(work: Path, train_dir: str, num_images: int, settings: Settings, seed: int = 0):
    """The shared segmenter: config/wssamnet_pp_oasis_segmenter.yaml + the override; returns
    (model, checkpoint prefix, record)."""
    import keras

    from tfreg.engine.train import train

    epochs, per_epoch = _epochs(num_images, max(settings.batch_size // 2, 1), settings.seg_steps)
    override = {
        "dataset": dict(_dataset(train_dir, settings, seed), sample_label="all"),
        "train": {
            "backbone": {"channels": list(settings.seg_channels)},
            "optimizer": {"name": "Adam", "learning_rate": settings.learning_rate},
            "preprocess": {"batch_size": max(settings.batch_size // 2, 1)},
            "epochs": epochs,
            "save_period": epochs,
        },
    }
    paths = [str(REPO / "config" / "wssamnet_pp_oasis_segmenter.yaml"), _write_yaml(override, work / "seg.yaml")]
    keras.utils.set_random_seed(seed)
    record = _load("start")
    t0 = time.perf_counter()
    model, exp = train(gpu="", config_path=paths, log_dir=str(work / "logs"), exp_name="segmenter", verbose=0)
    record.update(seconds=time.perf_counter() - t0, epochs=epochs, steps=epochs * per_epoch, **_load("end"))
    return model, os.path.join(exp, "save", f"ckpt-{epochs}"), record


def train_registration(
    work: Path, variant: str, seed: int, train_dir: str, num_images: int, seg_ckpt: str, settings: Settings
):
    """One ablation run: config/wssamnet_pp_oasis_<variant>.yaml + the override; returns (model, record)."""
    import keras

    from tfreg.engine.train import train

    suffix, attention = VARIANTS[variant]
    epochs, per_epoch = _epochs(num_images, settings.batch_size, settings.reg_steps)
    override = {
        "dataset": _dataset(train_dir, settings, seed),
        "train": {
            "segmenter": {"backbone": {"channels": list(settings.seg_channels)}},
            "init_from": {"path": seg_ckpt},
            "optimizer": {"name": "Adam", "learning_rate": settings.learning_rate},
            "preprocess": {"batch_size": settings.batch_size},
            "epochs": epochs,
            "save_period": epochs,
        },
    }
    name = f"{variant}_seed{seed}"
    paths = [str(REPO / "config" / f"wssamnet_pp_oasis_{suffix}.yaml"), _write_yaml(override, work / f"{name}.yaml")]
    keras.utils.set_random_seed(seed)
    record = _load("start")
    t0 = time.perf_counter()
    model, _ = train(gpu="", config_path=paths, log_dir=str(work / "logs"), exp_name=name, verbose=0)
    if model.attention_name != attention:
        raise RuntimeError(f"{name}: the config built attention {model.attention_name!r}, expected {attention!r}")
    record.update(seconds=time.perf_counter() - t0, epochs=epochs, steps=epochs * per_epoch, **_load("end"))
    record["registration_parameters"] = int(sum(int(np.prod(v.shape)) for v in model.backbone.trainable_variables))
    return model, record


def predict_ddfs(model, subjects: Subjects, pairs: Sequence[Tuple[int, int]], batch_size: int) -> np.ndarray:
    """The model's DDFs ``(P, X, Y, Z, 3)`` (voxels) for ``pairs`` of ``subjects``, in inference mode."""
    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        inputs = {
            "moving_image": subjects.images[[m for m, _ in chunk]],
            "fixed_image": subjects.images[[f for _, f in chunk]],
            "indices": np.zeros((len(chunk), 3), np.float32),
        }
        out.append(np.asarray(model(inputs, training=False)["ddf"]))
    return np.concatenate(out, axis=0)


def evaluate_pairs(subjects: Subjects, pairs, ddfs: Optional[np.ndarray]) -> np.ndarray:
    """Per-pair, per-label Dice ``(P, 4)`` of the warped moving labels (identity when ``ddfs`` is None)."""
    rows = []
    for i, (m, f) in enumerate(pairs):
        moving = subjects.labels[m] if ddfs is None else warp_label_map(subjects.labels[m], ddfs[i])
        rows.append(dice_per_label(moving, subjects.labels[f]))
    return np.asarray(rows)


def evaluate_segmenter(model, subjects: Subjects) -> np.ndarray:
    """Per-subject, per-label Dice ``(N, 4)`` of the segmenter's label maps on ``subjects``."""
    rows = []
    for image, label in zip(subjects.images, subjects.labels):
        batch = image[None]
        probabilities = np.asarray(
            model({"moving_image": batch, "fixed_image": batch}, training=False)["moving_segmentation"]
        )[0]
        rows.append(dice_per_label(segmentation_label_map(probabilities), label))
    return np.asarray(rows)


# ---------------------------------------------------------------------- report
def aggregate(runs: Dict[str, Dict[int, np.ndarray]]) -> Dict[str, dict]:
    """Per variant: over pairs (the seed-mean of each pair's label-mean Dice) and over seeds (each seed's
    mean over pairs and labels), plus the per-label means."""
    out = {}
    for variant, by_seed in runs.items():
        seeds = sorted(by_seed)
        per_pair = np.stack([np.nanmean(by_seed[s], axis=1) for s in seeds])  # (seeds, pairs)
        out[variant] = {
            "pairs": summary(per_pair.mean(axis=0)),
            "seeds": summary(per_pair.mean(axis=1)),
            "per_label": {
                name: float(np.nanmean(np.stack([by_seed[s][:, k] for s in seeds])))
                for k, name in enumerate(LABEL_NAMES)
            },
            "seed_means": [float(x) for x in per_pair.mean(axis=1)],
        }
    return out


def markdown(result: dict) -> str:
    """The README table: ours (mean +- std over pairs, IQR, std over seeds) beside the paper's."""
    agg = result["aggregate"]
    lines = [
        "| input (attention) | Dice, ours: mean +- std over pairs | IQR over pairs | std over seeds | "
        + " | ".join(LABEL_NAMES)
        + " | paper (Table I) |",
        "|---|---:|---:|---:|" + "---:|" * len(LABEL_NAMES) + "---:|",
    ]
    before = result["before"]
    lines.append(
        f"| before registration (identity) | {before['pairs']['mean']:.3f} +- {before['pairs']['std']:.3f} | "
        f"{before['pairs']['iqr']:.3f} | - | "
        + " | ".join(f"{before['per_label'][n]:.3f}" for n in LABEL_NAMES)
        + " | - |"
    )
    for variant in VARIANTS:
        a = agg[variant]
        paper = PAPER[variant]
        lines.append(
            f"| {variant} (`{VARIANTS[variant][1]}`) | {a['pairs']['mean']:.3f} +- {a['pairs']['std']:.3f} | "
            f"{a['pairs']['iqr']:.3f} | {a['seeds']['std']:.3f} | "
            + " | ".join(f"{a['per_label'][n]:.3f}" for n in LABEL_NAMES)
            + f" | {paper[0]:.3f} +- {paper[1]:.3f} |"
        )
    seg = result["segmenter"]
    lines.append("")
    lines.append(
        "Segmenter Dice on the held-out subjects (mean over subjects): "
        + ", ".join(f"{n} {seg['per_label'][n]:.3f}" for n in LABEL_NAMES)
        + f"; mean {seg['mean']:.3f}."
    )
    order = sorted(VARIANTS, key=lambda v: -agg[v]["pairs"]["mean"])
    lines.append(f"Our order: {' > '.join(order)}; the paper's: {' > '.join(PAPER_ORDER)}.")
    diffs = result["differences_vs_images"]
    lines.append(
        "Paired difference to images (per seed: mean over the same pairs; mean +- std over seeds): "
        + ", ".join(f"{v} {d['mean']:+.4f} +- {d['std']:.4f}" for v, d in diffs.items())
        + "."
    )
    return "\n".join(lines)


def run(settings: Settings, json_path: Path, keep: Optional[Path] = None) -> Optional[dict]:
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
        "labels": list(LABEL_NAMES),
        "aseg_groups": {k: list(v) for k, v in ASEG_GROUPS.items()},
        "mni_deep_gm_box_mm": MNI_DEEP_GM_BOX,
        "mni_deep_gm_depth_mm": MNI_DEEP_GM_DEPTH_MM,
        "paper": {k: list(v) for k, v in PAPER.items()},
        **_load("start"),
    }
    work = Path(tempfile.mkdtemp(prefix="wssamnet_ablation_")) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        anatomies = [brain_scan_anatomy(root), mni_anatomy()]
        train_subjects = make_subjects(anatomies, settings, settings.train_per_brain, seed=1000)
        test_subjects = make_subjects(anatomies, settings, settings.test_per_brain, seed=2000)
        train_dir = write_unpaired(work / "data" / "train", train_subjects)
        num_train = len(train_subjects.sources)
        pairs = test_pairs(test_subjects.sources, settings.test_pairs, seed=3000)
        result["data"] = {
            "seconds": time.perf_counter() - t0,
            "train_subjects": num_train,
            "test_subjects": len(test_subjects.sources),
            "test_pairs": [
                [int(m), int(f), pair_type(test_subjects.sources[m], test_subjects.sources[f])] for m, f in pairs
            ],
            "label_fractions_train": [float((train_subjects.labels == k + 1).mean()) for k in range(len(LABEL_NAMES))],
        }
        print(
            f"[data] {num_train} train / {len(test_subjects.sources)} test subjects {settings.shape}, "
            f"{len(pairs)} test pairs, {result['data']['seconds']:.0f} s",
            flush=True,
        )

        before = evaluate_pairs(test_subjects, pairs, None)
        result["before"] = {
            "pairs": summary(np.nanmean(before, axis=1)),
            "per_label": {n: float(np.nanmean(before[:, k])) for k, n in enumerate(LABEL_NAMES)},
            "raw": before.tolist(),
        }

        segmenter, seg_ckpt, seg_record = train_segmenter(work, train_dir, num_train, settings)
        seg_dice = evaluate_segmenter(segmenter, test_subjects)
        result["segmenter"] = dict(
            seg_record,
            per_label={n: float(np.nanmean(seg_dice[:, k])) for k, n in enumerate(LABEL_NAMES)},
            mean=float(np.nanmean(seg_dice)),
            raw=seg_dice.tolist(),
        )
        print(
            f"[segmenter] Dice {result['segmenter']['mean']:.3f} in {seg_record['seconds']:.0f} s "
            f"(load {seg_record['load_end_1min']:.1f})",
            flush=True,
        )

        runs: Dict[str, Dict[int, np.ndarray]] = {v: {} for v in VARIANTS}
        records = []
        for seed in settings.seeds:
            for variant in VARIANTS:
                model, record = train_registration(work, variant, seed, train_dir, num_train, seg_ckpt, settings)
                dice = evaluate_pairs(
                    test_subjects, pairs, predict_ddfs(model, test_subjects, pairs, settings.batch_size)
                )
                runs[variant][seed] = dice
                record.update(variant=variant, seed=seed, mean_dice=float(np.nanmean(dice)), raw=dice.tolist())
                records.append(record)
                print(
                    f"[{variant} seed {seed}] Dice {record['mean_dice']:.4f} in {record['seconds']:.0f} s "
                    f"({record['steps']} steps, load {record['load_end_1min']:.1f})",
                    flush=True,
                )
                shutil.rmtree(work / "logs" / f"{variant}_seed{seed}", ignore_errors=True)
                del model
        result["runs"] = records
        result["aggregate"] = aggregate(runs)
        images = np.stack([np.nanmean(runs["images"][s]) for s in settings.seeds])
        result["differences_vs_images"] = {
            v: summary(np.stack([np.nanmean(runs[v][s]) for s in settings.seeds]) - images)
            for v in VARIANTS
            if v != "images"
        }
        by_type = {}
        for t in PAIR_TYPES:
            rows = [
                i
                for i, (m, f) in enumerate(pairs)
                if pair_type(test_subjects.sources[m], test_subjects.sources[f]) == t
            ]
            by_type[t] = {"before": float(np.nanmean(before[rows]))}
            by_type[t].update(
                {v: float(np.nanmean(np.stack([runs[v][s][rows] for s in settings.seeds]))) for v in VARIANTS}
            )
        result["by_pair_type"] = by_type
        order = sorted(VARIANTS, key=lambda v: -result["aggregate"][v]["pairs"]["mean"])
        result["order"] = order
        result["reproduces_paper_order"] = tuple(order) == PAPER_ORDER
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
        f"{result['load_start_5min']:.2f} / {result['load_start_15min']:.2f}, at end {result['load_end_1min']:.2f} / "
        f"{result['load_end_5min']:.2f} / {result['load_end_15min']:.2f}; raw results: {json_path}"
    )
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny grid, a few steps, one seed")
    parser.add_argument("--seeds", type=int, nargs="+", help="registration seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--reg-steps", type=int, help="training steps per registration run")
    parser.add_argument("--seg-steps", type=int, help="training steps of the segmenter")
    parser.add_argument("--json", type=Path, help="raw results (default benchmarks/results/wssamnet_ablation*.json)")
    parser.add_argument("--keep", type=Path, help="work folder to keep (data, logs); default a temporary one")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    changes = {}
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if args.reg_steps:
        changes["reg_steps"] = args.reg_steps
    if args.seg_steps:
        changes["seg_steps"] = args.seg_steps
    if changes:
        settings = Settings(**dict(vars(settings), **changes))
    default = REPO / "benchmarks" / "results" / f"wssamnet_ablation{'_quick' if args.quick else ''}.json"
    run(settings, args.json or default, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

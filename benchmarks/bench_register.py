"""Pairwise registration by instance optimisation (``tfreg_register``) beside SimpleITK's Demons and B-spline
registration, scored on brain label maps with a known answer (issue 18, item 3).

::

    python benchmarks/bench_register.py                         # 3 pairs per modality, every method
    python benchmarks/bench_register.py --pairs 5 --out results/bench_register.json --write
    python benchmarks/bench_register.py --methods tfreg-lncc sitk-demons --modalities mono
    python benchmarks/bench_register.py --quick                 # a 32^3 crop, few iterations: checks it runs

Data. VoxelMorph's ``brain_scan/test_scan.npz`` (in ``$TFREG_TEST_DATA``, default ``<repo>/../shared/data``;
image ``vol`` in [0, 1] and FreeSurfer aseg labels ``seg``) reduced to 80x96x112
(``synthetic_pairs.downsample``: Gaussian anti-aliasing, sigma 1 voxel, then every 2nd voxel). Pair ``k``
is ``data_scripts/synthetic_pairs.synthetic_pair`` drawn from seed ``--seed + k``, i.e. what
``python data_scripts/synthetic_pairs.py test_scan.npz OUT --num-pairs 1 --downsample 2 --seed S
--max-rotation 5 --max-scale 0.05 --max-shear 0.03 --max-translation 3`` writes (``--second-modality``
for the multi-modal pairs): both images are smooth random deformations of the scan (up to 4 voxels per
component, control points every 16 voxels) and the fixed one also went through a random affine map
(rotation up to 5 degrees per angle, scale +-5 %, shear up to 0.03, translation up to 3 voxels); the
ground-truth DDF ``u`` maps fixed voxel ``x`` to moving voxel ``x + u(x)``. The multi-modal pair (same
seed, so the same deformations) gives the fixed image a second contrast: each aseg region's mean
intensity replaced by a random one, half of the texture kept.

Scores, per pair and method, from the method's DDF (voxels, on the fixed grid): the moving label map
warped by it with nearest-neighbour interpolation (``synthetic_pairs.sample_at``, edges replicated)
against the fixed label map, over the 30 label numbers of ``brain_scan/labels.npz`` present in the fixed
map: the mean per-label Dice (``tfreg.metrics.dice``), the mean per-label HD95 (``hausdorff_distance``,
95th percentile of both directed surface-distance sets pooled, voxel = 1 mm: the grid is 2 mm of the
original scan, so multiply by 2 for the scan's millimetres), the folding fraction (``det J <= 0``,
central differences, ``folding_fraction``) and the wall time of the method (``time.perf_counter``, from
the arrays in memory to the DDF; TensorFlow's import is not counted, each level's graph tracing is).
Reference rows: ``identity`` (no registration) and ``ground truth`` (the known DDF: the ceiling, below 1
because both label maps were resampled by nearest neighbour). The table gives mean +- standard deviation
over the pairs and the 1-minute load average (``/proc/loadavg``, what ``uptime`` prints first) before and
after each method, averaged over the pairs.

Methods (:data:`METHODS`; the settings are :func:`tfreg_settings` and :func:`sitk_settings`):

- ``tfreg-lncc`` (mono), ``tfreg-mi`` and ``tfreg-mind`` (multi): ``register_arrays`` of
  :mod:`tfreg.registration.optimise` (what ``tfreg_register --control_points 4`` runs): a displacement
  field (``ddf``) parameterised by a cubic B-spline with a control point every 4 voxels, over the pyramid
  4-2-1 with ``OptimisationSettings``' default steps per level (100, 60, 20) and learning rate (0.2), no
  affine stage, the diffusion regulariser (weight 1); image loss LNCC (window 7), MI (32 bins) or
  MIND-SSC, weight 1 (the choice of these settings on pair 0 is noted in :func:`tfreg_settings`).
  ``--tfreg KEY=VALUE`` replaces any of these; the raw results hold each stage's steps and seconds.
- ``sitk-demons`` (mono): SimpleITK's affine registration (below), the moving image resampled by it, then
  ``FastSymmetricForcesDemonsRegistrationFilter`` over the pyramid 4-2-1 (Gaussian-smoothed, shrunk images;
  the displacement field of a level resampled onto the next one as its initial field; 100, 60 and 30
  iterations), Gaussian smoothing of the displacement field (standard deviation 1.5 voxels) after every
  iteration; the affine map composed with the demons field.
- ``sitk-bspline`` (mono: mean squares; multi: Mattes mutual information, 32 bins): SimpleITK's
  ``ImageRegistrationMethod`` with the affine result as the moving initial transform and a cubic B-spline
  transform with a control point about every 10 voxels (mesh 8x10x11 at 80x96x112; multi-modal: every 20
  voxels, mesh 4x5x6, and 2.7 k, 11 k and 17 k samples, as Mattes MI needs more samples per parameter),
  optimised by L-BFGS-B (50 iterations per level at most, projected-gradient tolerance 1e-9) over the
  same pyramid.
- The affine stage of both SimpleITK methods: ``AffineTransform`` started at the images' geometric centres,
  the same metric as the method, regular-step gradient descent (step 2 mm, relaxation 0.5, minimum step
  0.001, 100 iterations per level at most) with scales from the physical shift, pyramid 4-2-1 (smoothing
  2-1-0 voxels), random samples per level: 20 %, 3 % and 0.5 % of the level's voxels (about 2.7 k, 3.2 k and
  4.3 k; multi-modal 20 %, 10 % and 2 %: 2.7 k, 11 k and 17 k).

Targets (issue 18): mono, ``tfreg-lncc``'s Dice at least ``sitk-demons``' and within 0.03 of the ground
truth, under 30 s per pair; multi, the best tfreg Dice above ``sitk-bspline``'s by at least 0.1; no folding.
The script prints each target's outcome under the table. Raw results: ``--out`` (JSON), rewritten after
every method; ``--write`` replaces the ``bench_register`` block of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # data_scripts and this working tree's tfreg
sys.path.insert(1, str(HERE))  # sibling: readme_block
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import SimpleITK as sitk  # noqa: E402
from readme_block import write_block  # noqa: E402

import tfreg  # noqa: E402,F401  (before TensorFlow: tfreg sets the oneDNN option)
from data_scripts.synthetic_pairs import AffineRange, downsample, sample_at, synthetic_pair  # noqa: E402
from tfreg.data.geometry import ImageGeometry  # noqa: E402
from tfreg.data.image_io import _array_from_sitk  # noqa: E402  (one home for SimpleITK's axis order)
from tfreg.data.transform_io import physical_to_voxel_ddf  # noqa: E402
from tfreg.metrics.jacobian import folding_fraction  # noqa: E402
from tfreg.metrics.overlap import dice  # noqa: E402
from tfreg.metrics.per_label import per_label  # noqa: E402
from tfreg.metrics.surface import hausdorff_distance  # noqa: E402

MODALITIES = ("mono", "multi")
#: Reduction of the 160x192x224 scan: 80x96x112.
DOWNSAMPLE = 2
#: The synthetic deformations (module docstring).
MAX_DISPLACEMENT = 4.0
CONTROL_SPACING = 16.0
AFFINE = AffineRange(rotation=5.0, scale=0.05, shear=0.03, translation=3.0)
#: ``--quick``: a central crop of this size (voxels per axis) of the 80x96x112 volume.
QUICK_CROP = 32
#: Pyramid shared by every method (downsampling factors, coarse to fine); ``--quick`` uses (2, 1).
LEVELS = (4, 2, 1)
QUICK_LEVELS = (2, 1)


class Method(NamedTuple):
    """A row of the table: what registers a pair and on which modalities.

    ``run(fixed, moving, modality, quick, overrides) -> (ddf, details)``: the ``(*S, 3)`` voxel DDF and a
    JSON-able dict kept in the raw results (e.g. the seconds of each stage); ``overrides`` replace fields of
    tfreg's settings (``--tfreg KEY=VALUE``).
    """

    label: str
    modalities: Tuple[str, ...]
    run: Optional[Callable[..., Tuple[np.ndarray, Dict[str, Any]]]]  # None: a reference row from the pair


# ------------------------------------------------------------------------------------------------ data
def data_root() -> Path:
    return Path(os.environ.get("TFREG_TEST_DATA", str(REPO.parent / "shared" / "data")))


def load_brain(crop: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """The scan at 80x96x112 (``crop``: its central ``crop``^3 part), its aseg map and the 30 evaluated labels.

    Returns ``(image float32 in [0, 1], label map int64, label numbers)``.
    """
    folder = data_root() / "brain_scan"
    with np.load(folder / "test_scan.npz") as scan:
        vol, seg = scan["vol"], scan["seg"]
    with np.load(folder / "labels.npz") as labels:
        label_values = [int(v) for v in labels["labels"]]
    image = downsample(vol, DOWNSAMPLE).astype(np.float32)
    label_map = downsample(np.rint(seg).astype(np.int64), DOWNSAMPLE, labels=True)
    if crop is not None:
        corner = [(s - crop) // 2 for s in image.shape]
        window = tuple(slice(c, c + crop) for c in corner)
        image, label_map = image[window], label_map[window]
    return image, label_map, label_values


def make_pair(image: np.ndarray, label_map: np.ndarray, seed: int, modality: str) -> Dict[str, np.ndarray]:
    """Pair ``seed`` (module docstring); ``multi`` re-draws the same deformations with a second contrast."""
    return synthetic_pair(
        image,
        np.random.default_rng(seed),
        label_map,
        max_displacement=MAX_DISPLACEMENT,
        control_spacing=CONTROL_SPACING,
        second_modality=modality == "multi",
        affine=AFFINE,
    )


# ------------------------------------------------------------------------------------------------ tfreg
def tfreg_settings(similarity: str, quick: bool, overrides: Optional[Dict[str, Any]] = None):
    """The :class:`OptimisationSettings` of ``tfreg-<similarity>`` (``lncc``, ``mi`` or ``mind``), with
    ``overrides`` (field -> value) replacing the benchmark's choices."""
    import dataclasses

    from tfreg.registration.optimise import OptimisationSettings

    image = {
        "lncc": {"name": "lncc", "kernel_size": 7, "weight": 1.0},
        "mi": {"name": "mi", "num_bins": 32, "weight": 1.0},
        "mind": {"name": "mind-ssc", "weight": 1.0},
    }[similarity]
    settings = OptimisationSettings(
        model="ddf",
        loss={"image": image, "regularization": {"name": "gradient", "weight": 1.0}},
        levels=QUICK_LEVELS if quick else LEVELS,
        # the steps per level and the learning rate are tfreg_register's defaults unless --quick
        **({"iterations": (5, 3)} if quick else {}),
        # A B-spline field (a control point every 4 voxels), no affine stage: on pair 0 (load 1.4-2.8) this
        # gave Dice 0.837 / 0.761 / 0.527 (LNCC / MIND-SSC / MI) against 0.825 / 0.711 / 0.438 for the dense
        # field, 0.706 / 0.449 (MIND-SSC / MI) with Gaussian smoothing 1.5, and 0.825 / 0.690 / 0.450 for
        # the dense field after a 60-step affine stage (whose MIND-SSC result, 0.556, was below identity).
        control_points=4,
        affine_iterations=0,
        verbose=0,
    )
    return dataclasses.replace(settings, **(overrides or {}))


def tfreg_method(similarity: str) -> Callable[..., Tuple[np.ndarray, Dict[str, Any]]]:
    def run(fixed: np.ndarray, moving: np.ndarray, modality: str, quick: bool, overrides=None):
        from tfreg.registration.optimise import register_arrays

        result = register_arrays(fixed, moving, tfreg_settings(similarity, quick, overrides))
        stages = [
            {
                "stage": h["stage"],
                "factor": h["factor"],
                "iterations": h["iterations"],
                "seconds": round(h["seconds"], 2),
            }
            for h in result.history
        ]
        return result.ddf, {"stages": stages, "final_loss": result.history[-1]["loss"][-1:]}

    return run


# ------------------------------------------------------------------------------------------------ SimpleITK
def sitk_settings(quick: bool) -> Dict[str, Any]:
    """The SimpleITK baselines' settings (module docstring); ``quick`` only lowers the iterations."""
    levels = QUICK_LEVELS if quick else LEVELS
    return {
        "quick": quick,
        "shrink": list(levels),
        "smoothing": [f / 2 for f in levels],  # voxels, the pyramid's sigma of tfreg's optimise module
        "affine_iterations": 10 if quick else 100,
        # random samples per level, fractions of the level's voxels. Mono: about 2.7 k, 3.2 k and 4.3 k at
        # 80x96x112 (elastix's B-spline default is 2048 random samples per iteration): ITK's B-spline
        # metric costs about 0.1 ms per sample with the 10-voxel mesh (2 busy cores), so 17 k samples at
        # full resolution took 2.3 s per evaluation (trial). Multi: Mattes MI's 32x32 joint histogram
        # from so few samples drove the 10-voxel mesh below its own affine start (Dice 0.56 vs 0.71, trial
        # pair 0); a 20-voxel mesh with 2.7 k, 11 k and 17 k samples reached 0.68 in 76 s
        "sampling": {"mono": [0.2, 0.03, 0.005], "multi": [0.2, 0.1, 0.02]},
        "mi_bins": 32,
        "demons_iterations": [10, 5] if quick else [100, 60, 30],
        "demons_sigma": 1.5,
        # voxels between control points: the mesh has round(size / spacing) intervals per axis
        "bspline_spacing": {"mono": 10.0, "multi": 20.0},
        "bspline_iterations": 10 if quick else 50,
        # L-BFGS-B's projected-gradient tolerance: its usual 1e-5 stops the mean-squares metric of [0, 1]
        # images at the first iteration (gradients ~1e-4 per control point)
        "bspline_gradient_tolerance": 1e-9,
    }


def to_sitk(array: np.ndarray) -> sitk.Image:
    """``(i, j, k)`` float array -> a SimpleITK image (index ``(x, y, z) = (i, j, k)``), spacing 1, origin 0."""
    return sitk.GetImageFromArray(np.transpose(np.asarray(array, dtype=np.float32)))


def transform_to_ddf(transform: sitk.Transform, reference: sitk.Image) -> np.ndarray:
    """A SimpleITK transform (fixed point -> moving point) as tfreg's voxel DDF ``(i, j, k, 3)`` on ``reference``."""
    field = sitk.TransformToDisplacementField(
        transform,
        sitk.sitkVectorFloat64,
        reference.GetSize(),
        reference.GetOrigin(),
        reference.GetSpacing(),
        reference.GetDirection(),
    )
    geometry = ImageGeometry(
        reference.GetSpacing(), reference.GetOrigin(), np.reshape(reference.GetDirection(), (3, 3))
    )
    return physical_to_voxel_ddf(_array_from_sitk(field), geometry).astype(np.float32)


def _metric(method: sitk.ImageRegistrationMethod, modality: str, settings: Dict[str, Any]) -> None:
    if modality == "mono":
        method.SetMetricAsMeanSquares()
    else:
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings["mi_bins"])
    method.SetMetricSamplingStrategy(method.RANDOM)
    sampling = [0.2] * len(settings["shrink"]) if settings["quick"] else settings["sampling"][modality]
    method.SetMetricSamplingPercentagePerLevel(sampling, seed=0)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel(settings["shrink"])
    method.SetSmoothingSigmasPerLevel(settings["smoothing"])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()


def sitk_affine(fixed: sitk.Image, moving: sitk.Image, modality: str, settings: Dict[str, Any]) -> sitk.Transform:
    """The affine stage of both SimpleITK baselines (module docstring)."""
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = sitk.ImageRegistrationMethod()
    _metric(method, modality, settings)
    # regular-step gradient descent: gradient descent with the per-iteration learning-rate estimate stopped
    # after 10 iterations at a worse overlap than no registration on these pairs (trial, 80x96x112)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0,
        minStep=1e-3,
        numberOfIterations=settings["affine_iterations"],
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed, moving)


def sitk_demons(fixed_array: np.ndarray, moving_array: np.ndarray, modality: str, quick: bool, overrides=None):
    """``sitk-demons``: affine, then multi-resolution fast symmetric-forces demons (module docstring)."""
    start = time.perf_counter()
    settings = sitk_settings(quick)
    fixed, moving = to_sitk(fixed_array), to_sitk(moving_array)
    affine = sitk_affine(fixed, moving, modality, settings)
    moving = sitk.Resample(moving, fixed, affine, sitk.sitkLinear, 0.0)
    affine_seconds = time.perf_counter() - start
    field = None
    for factor, sigma, iterations in zip(settings["shrink"], settings["smoothing"], settings["demons_iterations"]):
        level_fixed, level_moving = fixed, moving
        if factor > 1:
            level_fixed = sitk.Shrink(sitk.SmoothingRecursiveGaussian(fixed, sigma), [factor] * 3)
            level_moving = sitk.Shrink(sitk.SmoothingRecursiveGaussian(moving, sigma), [factor] * 3)
        demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
        demons.SetNumberOfIterations(iterations)
        demons.SmoothDisplacementFieldOn()
        # ITK smooths the field with a Gaussian in voxels of the level (its spacing is not used)
        demons.SetStandardDeviations(settings["demons_sigma"])
        if field is None:
            field = demons.Execute(level_fixed, level_moving)
        else:
            # physical displacements: resampling onto the finer grid keeps their values
            initial = sitk.Resample(field, level_fixed, sitk.Transform(), sitk.sitkLinear, 0.0, field.GetPixelID())
            field = demons.Execute(level_fixed, level_moving, initial)
    # moving point = affine(x + d(x)): CompositeTransform applies its last-added transform first
    composite = sitk.CompositeTransform(3)
    composite.AddTransform(affine)
    composite.AddTransform(sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64)))
    return transform_to_ddf(composite, fixed), {"affine_seconds": round(affine_seconds, 2)}


def sitk_bspline(fixed_array: np.ndarray, moving_array: np.ndarray, modality: str, quick: bool, overrides=None):
    """``sitk-bspline``: affine, then a multi-resolution cubic B-spline with L-BFGS-B (module docstring)."""
    start = time.perf_counter()
    settings = sitk_settings(quick)
    fixed, moving = to_sitk(fixed_array), to_sitk(moving_array)
    affine = sitk_affine(fixed, moving, modality, settings)
    affine_seconds = time.perf_counter() - start
    mesh = [max(1, round(n / settings["bspline_spacing"][modality])) for n in fixed.GetSize()]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    method = sitk.ImageRegistrationMethod()
    _metric(method, modality, settings)
    method.SetOptimizerAsLBFGSB(
        gradientConvergenceTolerance=settings["bspline_gradient_tolerance"],
        numberOfIterations=settings["bspline_iterations"],
        maximumNumberOfCorrections=5,
        maximumNumberOfFunctionEvaluations=1000,
        costFunctionConvergenceFactor=1e7,
    )
    method.SetMovingInitialTransform(affine)
    # one mesh for every level: L-BFGS-B refuses a mesh refined between levels (SetInitialTransformAsBSpline's
    # scaleFactors: "size of scales must equal number of local parameters"), and L-BFGS2 with it stops at
    # once ("already minimized": the mean-squares gradient of [0, 1] images is below its tolerance)
    method.SetInitialTransform(bspline, inPlace=True)
    method.Execute(fixed, moving)
    composite = sitk.CompositeTransform(3)
    composite.AddTransform(affine)
    composite.AddTransform(bspline)  # applied first: moving point = affine(bspline(x))
    details = {
        "affine_seconds": round(affine_seconds, 2),
        "mesh": mesh,
        "stop": method.GetOptimizerStopConditionDescription(),
    }
    return transform_to_ddf(composite, fixed), details


#: name -> the method; ``identity`` and ``ground truth`` are computed from the pair.
METHODS: Dict[str, Method] = {
    "identity": Method("identity (no registration)", MODALITIES, None),
    "ground-truth": Method("ground truth (ceiling)", MODALITIES, None),
    "tfreg-lncc": Method("tfreg_register, LNCC, B-spline 4 vox", ("mono",), tfreg_method("lncc")),
    "tfreg-mi": Method("tfreg_register, MI, B-spline 4 vox", ("multi",), tfreg_method("mi")),
    "tfreg-mind": Method("tfreg_register, MIND-SSC, B-spline 4 vox", ("multi",), tfreg_method("mind")),
    "sitk-demons": Method("SimpleITK Demons", ("mono",), sitk_demons),
    "sitk-bspline": Method("SimpleITK B-spline (MSE / Mattes MI)", MODALITIES, sitk_bspline),
}
REFERENCES = ("identity", "ground-truth")


# ------------------------------------------------------------------------------------------------ scoring
def warp_labels(label_map: np.ndarray, ddf: np.ndarray) -> np.ndarray:
    """``label_map`` sampled at ``grid + ddf`` by nearest neighbour (edges replicated)."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in label_map.shape], indexing="ij"), axis=-1)
    return sample_at(label_map, grid + ddf, order=0)


def score(pair: Dict[str, np.ndarray], ddf: np.ndarray, label_values: Sequence[int]) -> Dict[str, float]:
    """Mean Dice and HD95 over the labels present in the fixed map, and the DDF's folding fraction."""
    fixed_labels = pair["fixed_label_map"]
    warped = warp_labels(pair["moving_label_map"], ddf)
    present = [v for v in label_values if np.any(fixed_labels == v)]
    dices = per_label(dice, fixed_labels, warped, labels=present)
    hd95 = per_label(hausdorff_distance, fixed_labels, warped, labels=present, percentile=95)
    return {
        "dice": float(np.mean(list(dices.values()))),
        "hd95": float(np.nanmean(list(hd95.values()))),
        "folding": folding_fraction(ddf),
        "labels": len(present),
    }


def load_average() -> float:
    """The 1-minute load average (``/proc/loadavg``, what ``uptime`` prints first)."""
    return os.getloadavg()[0]


def run_one(
    name: str, pair: Dict[str, np.ndarray], modality: str, label_values, quick: bool, overrides=None
) -> Dict[str, Any]:
    """One method on one pair: its scores, seconds and loads, or the error it raised."""
    result: Dict[str, Any] = {"method": name, "modality": modality, "load_before": load_average()}
    start = time.perf_counter()
    try:
        if name == "identity":
            ddf = np.zeros_like(pair["ddf"])
        elif name == "ground-truth":
            ddf = pair["ddf"]
        else:
            ddf, details = METHODS[name].run(pair["fixed_image"], pair["moving_image"], modality, quick, overrides)
            result["details"] = details
        result["seconds"] = time.perf_counter() - start
        result.update(score(pair, ddf, label_values))
    except Exception as error:  # a failed method is a row, not the end of the run
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]
        traceback.print_exc()
    result["load_after"] = load_average()
    return result


def run_benchmark(
    methods: Sequence[str],
    modalities: Sequence[str],
    pairs: int,
    seed: int,
    quick: bool,
    out: Optional[str] = None,
    log: Callable[[str], None] = print,
    overrides: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """Every (modality, pair, method): :func:`run_one`'s results, pair seeds ``seed, seed + 1, ...``."""
    image, label_map, label_values = load_brain(QUICK_CROP if quick else None)
    names = list(REFERENCES) + [m for m in methods if m not in REFERENCES]
    results = []
    for modality in modalities:
        for k in range(pairs):
            pair = make_pair(image, label_map, seed + k, modality)
            for name in names:
                if modality not in METHODS[name].modalities:
                    continue
                result = dict(run_one(name, pair, modality, label_values, quick, overrides), pair=k, seed=seed + k)
                results.append(result)
                figures = result.get("error") or (
                    f"Dice {result['dice']:.3f}  HD95 {result['hd95']:.2f}  folding {result['folding']:.2e}  "
                    f"{result['seconds']:.1f} s"
                )
                log(f"{modality} pair {k} {name}: {figures}  (load {result['load_before']:.2f})")
                if out:
                    Path(out).parent.mkdir(parents=True, exist_ok=True)
                    Path(out).write_text(json.dumps(results, indent=1))
    return results


# ------------------------------------------------------------------------------------------------ table
def _mean_std(values: Sequence[float], digits: int) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f}"


def summary(results: Sequence[Dict[str, Any]], modality: str, name: str) -> Optional[Dict[str, Any]]:
    """The successful runs of ``name`` on ``modality``: lists of each figure (None when there were none)."""
    rows = [r for r in results if r["modality"] == modality and r["method"] == name]
    if not rows:
        return None
    ok = [r for r in rows if "error" not in r]
    out = {key: [r[key] for r in ok] for key in ("dice", "hd95", "folding", "seconds", "load_before", "load_after")}
    out["errors"] = [r["error"] for r in rows if "error" in r]
    out["runs"] = len(rows)
    return out


def table(results: Sequence[Dict[str, Any]], header: str = "") -> str:
    """Markdown: per modality, one row per method (mean +- std over the pairs), then the targets."""
    lines = [header] if header else []
    notes = []
    for modality in MODALITIES:
        names = [n for n in METHODS if summary(results, modality, n)]
        if not names:
            continue
        lines += [
            "",
            f"**{modality}-modal** ({summary(results, modality, names[0])['runs']} pairs)",
            "",
            "| method | Dice | HD95 (voxels) | folding (%) | s / pair | load before / after |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in names:
            s = summary(results, modality, name)
            cells = [
                _mean_std(s["dice"], 3),
                _mean_std(s["hd95"], 2),
                _mean_std([100 * f for f in s["folding"]], 3),
                "-" if name in REFERENCES else _mean_std(s["seconds"], 1),
                f"{statistics.mean(s['load_before']):.1f} / {statistics.mean(s['load_after']):.1f}"
                if s["dice"]
                else "-",
            ]
            if s["errors"]:
                notes.append(f"- [{len(notes) + 1}] {modality} {name}: {s['errors'][0]}")
                cells[0] += f" ({len(s['errors'])} failed [{len(notes)}])"
            lines.append(f"| {METHODS[name].label} | " + " | ".join(cells) + " |")
    lines += [""] + notes + ([""] if notes else []) + targets(results)
    return "\n".join(lines) + "\n"


def targets(results: Sequence[Dict[str, Any]]) -> List[str]:
    """Issue 18's targets, each as a line with its outcome (``not measured`` when a figure is missing)."""

    def mean(modality, name, key):
        s = summary(results, modality, name)
        return statistics.mean(s[key]) if s and s[key] else None

    def line(text, ok):
        return f"- {text}: " + ("not measured" if ok is None else ("met" if ok else "NOT met"))

    out = ["Targets:"]
    lncc, demons, ceiling = (mean("mono", n, "dice") for n in ("tfreg-lncc", "sitk-demons", "ground-truth"))
    seconds = mean("mono", "tfreg-lncc", "seconds")
    out.append(line("mono: tfreg-lncc Dice >= SimpleITK Demons'", None if None in (lncc, demons) else lncc >= demons))
    out.append(
        line(
            "mono: tfreg-lncc Dice within 0.03 of the ceiling",
            None if None in (lncc, ceiling) else lncc >= ceiling - 0.03,
        )
    )
    out.append(line("mono: tfreg-lncc under 30 s per pair", None if seconds is None else seconds < 30))
    multi = [d for d in (mean("multi", "tfreg-mi", "dice"), mean("multi", "tfreg-mind", "dice")) if d is not None]
    bspline = mean("multi", "sitk-bspline", "dice")
    out.append(
        line(
            "multi: best tfreg Dice >= SimpleITK Mattes-MI B-spline's + 0.1",
            None if not multi or bspline is None else max(multi) >= bspline + 0.1,
        )
    )
    folds = [
        f
        for m in MODALITIES
        for n in METHODS
        if n.startswith("tfreg")
        for f in (summary(results, m, n) or {}).get("folding", [])
    ]
    out.append(line("no folding (every tfreg DDF)", None if not folds else max(folds) == 0))
    return out


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """``["iterations=[50,30,20]", "model=\"dvf\""]`` -> ``{"iterations": (50, 30, 20), "model": "dvf"}``.

    Values are JSON (a bare word that is not JSON is taken as a string); lists become tuples.
    """
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--tfreg expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        overrides[key] = tuple(value) if isinstance(value, list) else value
    return overrides


def header_line(args) -> str:
    return (
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} CPU cores visible, SimpleITK {sitk.Version.VersionString()}, "
        f"{'80x96x112' if not args.quick else f'{QUICK_CROP}^3 crop (--quick)'}, seeds {args.seed}.."
        f"{args.seed + args.pairs - 1}; mean +- std over pairs; load = 1-minute load average."
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="pairs per modality (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first pair (pair k: seed + k)")
    parser.add_argument(
        "--methods", nargs="+", choices=[m for m in METHODS if m not in REFERENCES], help="default: all"
    )
    parser.add_argument("--modalities", nargs="+", choices=MODALITIES, default=list(MODALITIES))
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_CROP}^3 crop and few iterations")
    parser.add_argument(
        "--tfreg",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help='override tfreg\'s OptimisationSettings fields, JSON values (e.g. iterations=[50,30,20] model="dvf")',
    )
    parser.add_argument("--out", help="raw results (JSON), rewritten after every method")
    parser.add_argument("--write", action="store_true", help="replace the bench_register block of benchmarks/README.md")
    args = parser.parse_args(argv)
    if not (data_root() / "brain_scan" / "test_scan.npz").is_file():
        print(f"skipped: {data_root() / 'brain_scan' / 'test_scan.npz'} not found (set TFREG_TEST_DATA)")
        return 0
    methods = args.methods or [m for m in METHODS if m not in REFERENCES]
    overrides = parse_overrides(args.tfreg)
    try:  # a misspelt field or a bad value: refused before any pair is made
        tfreg_settings("lncc", args.quick, overrides)
    except (TypeError, ValueError) as error:
        parser.error(f"--tfreg: {error}")
    results = run_benchmark(methods, args.modalities, args.pairs, args.seed, args.quick, args.out, overrides=overrides)
    text = table(results, header_line(args) + (f" tfreg overrides: {overrides}." if overrides else ""))
    print(text)
    if args.write:
        write_block("bench_register", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rigid pre-alignment of a moving image to a fixed one with SimpleITK (2-D and 3-D).

Two ways, as used before deformable registration of CT/MR pairs (van Ulsen's thesis, "Multi-modal deep
learning based 3D image registration for osseous anatomies", pre-aligns on the L5 vertebra label):

- :func:`align_on_labels`: binary images of chosen label values (their union) in both label maps; a
  centred initialiser on the masks' moments (their centres of mass superposed), then a mean-squares
  metric over every voxel, multi-resolution;
- :func:`align_on_images`: the images themselves with Mattes mutual information (random voxel sampling
  with a fixed seed, so reruns give the same transform), centred initialiser on the grids' centres.

Both return a :class:`RigidResult` whose transform (``sitk.Euler3DTransform`` or ``sitk.Euler2DTransform``)
maps a point of the fixed image's physical space (mm) to the moving image's, ITK's convention: resampling
the moving image through it onto the fixed grid aligns it (:func:`tfreg.data.resampling.resample_onto`).
The affine stage (:mod:`tfreg.data.affine_alignment`) shares the registration set-up and result type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from tfreg.checks import check_int, check_number

#: default multi-resolution schedule: shrink factors (voxels) and Gaussian smoothing sigmas (voxels)
SHRINK_FACTORS = (4, 2, 1)
SMOOTHING_SIGMAS = (2.0, 1.0, 0.0)


@dataclass(frozen=True)
class RegistrationSettings:
    """Optimiser and metric settings shared by both alignments.

    Attributes:
        shrink_factors: per level, the factor (voxels) the images are down-sampled by.
        smoothing_sigmas: per level, the Gaussian sigma (voxels) applied before down-sampling.
        iterations: maximum number of iterations per level (regular-step gradient descent).
        mi_bins: histogram bins of the Mattes mutual information (image alignment).
        sampling_percentage: fraction of voxels (0, 1] the MI is evaluated on (image alignment).
        seed: seed of the MI's random voxel sampling (any integer >= 0, 0 included, gives the same voxels on
            every run; SimpleITK receives ``seed + 1``, its 0 meaning the wall clock).
        threads: threads of the registration (default 1: ITK's multi-threaded metric sums are reduced in
            a varying order, so with more threads reruns differ in about the third decimal of a parameter;
            with one they are identical, at some cost in speed).
    """

    shrink_factors: Sequence[int] = SHRINK_FACTORS
    smoothing_sigmas: Sequence[float] = SMOOTHING_SIGMAS
    iterations: int = 200
    mi_bins: int = 32
    sampling_percentage: float = 0.25
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        shrink = tuple(check_int(s, "shrink_factors", minimum=1) for s in self.shrink_factors)
        sigmas = tuple(check_number(s, "smoothing_sigmas") for s in self.smoothing_sigmas)
        if not shrink or len(shrink) != len(sigmas):
            raise ValueError(
                f"shrink_factors and smoothing_sigmas must have one entry per level and as many entries, got "
                f"{list(shrink)} and {list(sigmas)}"
            )
        object.__setattr__(self, "shrink_factors", shrink)
        object.__setattr__(self, "smoothing_sigmas", sigmas)
        check_int(self.iterations, "iterations", minimum=1)
        check_int(self.mi_bins, "mi_bins", minimum=2)
        check_number(self.sampling_percentage, "sampling_percentage", 0.0, 1.0, exclusive_minimum=True)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.threads, "threads", minimum=1)


@dataclass(frozen=True)
class RigidResult:
    """A transform found by (or given to) the pre-alignment: rigid, or affine
    (:func:`tfreg.data.affine_alignment.align_affine_on_images`).

    Attributes:
        transform: ``sitk.Euler3DTransform``/``sitk.Euler2DTransform`` (rigid) or ``sitk.AffineTransform``,
            fixed -> moving physical points (mm).
        method: ``label``, ``image`` or ``none``.
        metric: ``mean_squares`` (label), ``mattes_mutual_information`` (image) or None.
        metric_value: the final metric value (lower is better for both), None for ``none``.
        iterations: optimiser iterations of the last level (0 for ``none``).
        stop_condition: the optimiser's stop reason (``""`` for ``none``).
        stages: JSON-ready records (:meth:`to_dict`) of the earlier stages this transform was started from,
            e.g. the rigid stage before an affine one; empty for a single stage.
    """

    transform: sitk.Transform
    method: str
    metric: Optional[str] = None
    metric_value: Optional[float] = None
    iterations: int = 0
    stop_condition: str = ""
    stages: Tuple[Dict[str, object], ...] = ()

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready description: parameters, centre, matrix, translation and offset (mm), angles, metric.

        The transform maps a fixed point ``x`` to ``matrix @ (x - centre) + centre + translation``
        ``= matrix @ x + offset``, rigid or affine alike. Angles are radians (3-D: rotations about x, y, z,
        applied in ITK's Euler3D order; 2-D: one angle); an affine matrix has none (``None``: read
        ``matrix``), and its parameters are the matrix row by row, then the translation. ``stages`` lists
        the earlier stages' records.
        """
        transform = self.transform
        ndim = transform.GetDimension()
        matrix = np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(ndim, ndim)
        centre = np.asarray(transform.GetCenter(), dtype=np.float64)
        translation = np.asarray(transform.GetTranslation(), dtype=np.float64)
        params = list(transform.GetParameters())
        rigid = isinstance(transform, (sitk.Euler2DTransform, sitk.Euler3DTransform))
        angles = (params[:3] if ndim == 3 else params[:1]) if rigid else None
        return {
            "type": transform.GetName(),
            "maps": "fixed physical point (mm) -> moving physical point (mm), ITK convention",
            "method": self.method,
            "parameters": params,
            "fixed_parameters": list(transform.GetFixedParameters()),
            "angles_rad": angles,
            "angles_deg": [float(np.degrees(a)) for a in angles] if rigid else None,
            "centre_mm": centre.tolist(),
            "matrix": matrix.tolist(),
            "translation_mm": translation.tolist(),
            "offset_mm": (centre + translation - matrix @ centre).tolist(),
            "metric": self.metric,
            "metric_value": self.metric_value,
            "iterations": self.iterations,
            "stop_condition": self.stop_condition,
            "stages": list(self.stages),
        }


def euler_transform(ndim: int) -> sitk.Transform:
    """The identity rigid transform of a ``ndim``-D space (``Euler2DTransform`` or ``Euler3DTransform``)."""
    if ndim == 2:
        return sitk.Euler2DTransform()
    if ndim == 3:
        return sitk.Euler3DTransform()
    raise ValueError(f"rigid alignment handles 2-D and 3-D images, got {ndim}-D")


def identity_result(ndim: int) -> RigidResult:
    """The result of ``align: none``: the identity transform."""
    return RigidResult(transform=euler_transform(ndim), method="none")


def binary_mask(label: sitk.Image, values: Sequence[int]) -> sitk.Image:
    """Float32 image, 1 where ``label`` holds one of ``values``, else 0 (same grid as ``label``)."""
    array = sitk.GetArrayViewFromImage(label)
    mask = sitk.GetImageFromArray(np.isin(array, np.asarray(list(values))).astype(np.float32))
    mask.CopyInformation(label)
    return mask


def _registration(settings: RegistrationSettings) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetNumberOfThreads(settings.threads)
    method.SetInterpolator(sitk.sitkLinear)
    # step lengths expressed as physical shifts, so that radians and mm are balanced
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=1e-4,
        numberOfIterations=settings.iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    method.SetSmoothingSigmasPerLevel(list(settings.smoothing_sigmas))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return method


def mattes_registration(settings: RegistrationSettings) -> sitk.ImageRegistrationMethod:
    """The registration method of ``settings`` with a Mattes mutual information metric on a random sample of
    ``sampling_percentage`` of the voxels drawn with ``seed`` (the same voxels on every run)."""
    method = _registration(settings)
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.mi_bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    # SimpleITK reads the seed 0 as "seed from the wall clock" (sitk.sitkWallClock): every seed is shifted by
    # one so that the default seed 0 draws the same voxels on every run too
    method.SetMetricSamplingPercentage(settings.sampling_percentage, settings.seed + 1)
    return method


def run_registration(
    method: sitk.ImageRegistrationMethod,
    fixed: sitk.Image,
    moving: sitk.Image,
    initial: sitk.Transform,
    name: str,
    metric: str,
) -> RigidResult:
    """Execute ``method`` from ``initial`` on the registration's own thread count; the optimised transform
    (Euler or affine, not wrapped in a composite) with the final metric value and the optimiser's report."""
    method.SetInitialTransform(initial, inPlace=False)
    # the metric and the pyramid filters it creates take the global default, not the method's own count
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(method.GetNumberOfThreads())
    try:
        found = method.Execute(fixed, moving)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)
    # Execute returns a composite transform holding the optimised copy of the initial transform
    transform = found.Downcast()
    while isinstance(transform, sitk.CompositeTransform):
        transform = transform.GetNthTransform(0).Downcast()
    return RigidResult(
        transform=transform,
        method=name,
        metric=metric,
        metric_value=float(method.GetMetricValue()),
        iterations=int(method.GetOptimizerIteration()),
        stop_condition=method.GetOptimizerStopConditionDescription(),
    )


def align_on_labels(
    fixed_label: sitk.Image,
    moving_label: sitk.Image,
    values: Sequence[int],
    settings: Optional[RegistrationSettings] = None,
) -> RigidResult:
    """Rigid transform aligning the union of label ``values`` in ``moving_label`` to that in ``fixed_label``.

    Args:
        fixed_label: integer label map of the fixed image (2-D or 3-D SimpleITK image).
        moving_label: integer label map of the moving image (same dimension, any grid).
        values: label values whose union is aligned (e.g. ``[5]`` for one vertebra).
        settings: optimiser settings (default :class:`RegistrationSettings`).

    Raises:
        ValueError: when one of the masks is empty (the caller names the files before this point).
    """
    settings = settings or RegistrationSettings()
    fixed = binary_mask(fixed_label, values)
    moving = binary_mask(moving_label, values)
    for role, mask in (("fixed", fixed), ("moving", moving)):
        if not sitk.GetArrayViewFromImage(mask).any():
            raise ValueError(f"the {role} label map holds none of the alignment label values {list(values)}")
    # ITK's moments initialiser: rotation centre at the fixed mask's centre of mass, translation between the centres
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, euler_transform(fixed.GetDimension()), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    method = _registration(settings)
    method.SetMetricAsMeanSquares()
    method.SetMetricSamplingStrategy(method.NONE)  # every voxel: deterministic
    return run_registration(method, fixed, moving, initial, "label", "mean_squares")


def align_on_images(
    fixed_image: sitk.Image, moving_image: sitk.Image, settings: Optional[RegistrationSettings] = None
) -> RigidResult:
    """Rigid transform aligning ``moving_image`` to ``fixed_image`` by Mattes mutual information.

    Suited to images of different contrasts (CT/MR). The initial transform superposes the grids' centres.

    Args:
        fixed_image, moving_image: 2-D or 3-D scalar images (cast to float32 here).
        settings: optimiser, bins and sampling settings (default :class:`RegistrationSettings`).
    """
    settings = settings or RegistrationSettings()
    fixed = sitk.Cast(fixed_image, sitk.sitkFloat32)
    moving = sitk.Cast(moving_image, sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, euler_transform(fixed.GetDimension()), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    return run_registration(mattes_registration(settings), fixed, moving, initial, "image", "mattes_mutual_information")


__all__ = [
    "SHRINK_FACTORS",
    "SMOOTHING_SIGMAS",
    "RegistrationSettings",
    "RigidResult",
    "euler_transform",
    "identity_result",
    "binary_mask",
    "align_on_labels",
    "align_on_images",
    "mattes_registration",
    "run_registration",
]

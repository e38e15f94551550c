"""tfreg.metrics: evaluation metrics on NumPy arrays (NumPy, SciPy; no Keras, no TensorFlow).

They work on any registration result (tfreg, ANTs, Elastix), in 2-D and 3-D, with physical voxel spacing
(mm) where a metric is a distance. Binary-mask metrics take bool or numeric masks (``>= 0.5`` is
foreground); :func:`per_label` applies one to every label of integer label maps. Metrics that cannot be
defined on an empty mask return NaN with an :class:`EmptyMaskWarning`; mismatched shapes, spacings or
landmark counts and non-finite inputs raise ``ValueError``.

Modules: ``overlap`` (Dice, Jaccard, recall, precision, RVD, VOE, volume similarity), ``surface`` (Hausdorff and its
percentiles, ASSD, MSD), ``landmarks`` (TRE, BraTSReg landmark errors and robustness, centroid distance),
``jacobian`` (det J, folding, sigma JD, SDlogJ), ``intensity`` (MI, SSIM), ``per_label``.
"""

from tfreg.metrics._checks import EmptyMaskWarning
from tfreg.metrics.intensity import mutual_information, ssim
from tfreg.metrics.jacobian import (
    folding_count,
    folding_fraction,
    jacobian_determinant,
    jacobian_determinant_mean,
    jacobian_determinant_std,
    jacobian_matrix,
    sdlogj,
)
from tfreg.metrics.landmarks import centroid_distance, landmark_errors, robustness, tre
from tfreg.metrics.overlap import (
    dice,
    jaccard,
    precision,
    recall,
    relative_volume_difference,
    volume_similarity,
    volumetric_overlap_error,
)
from tfreg.metrics.per_label import per_label
from tfreg.metrics.surface import assd, hausdorff_distance, msd, surface_distances

__all__ = [
    "EmptyMaskWarning",
    "assd",
    "centroid_distance",
    "dice",
    "folding_count",
    "folding_fraction",
    "hausdorff_distance",
    "jaccard",
    "jacobian_determinant",
    "jacobian_determinant_mean",
    "jacobian_determinant_std",
    "jacobian_matrix",
    "landmark_errors",
    "msd",
    "mutual_information",
    "per_label",
    "precision",
    "recall",
    "relative_volume_difference",
    "robustness",
    "sdlogj",
    "ssim",
    "surface_distances",
    "tre",
    "volume_similarity",
    "volumetric_overlap_error",
]

"""The one rule that turns a label into a binary mask: a voxel is foreground when its value is ``>= 0.5``.

Labels in tfreg are fractions in [0, 1]: binary masks, one-hot channels, probabilities of a segmenter, and
labels warped with linear interpolation (``pred_fixed_label``), where a voxel half-way between inside and
outside is exactly 0.5. The rule is DeepReg's (its binary Dice thresholds ``>= 0.5``), and every tfreg
component that binarises a label uses it through this module: the metrics of ``tfreg_predict``'s CSVs,
``tfreg_evaluate``, ``tfreg_vis``, :mod:`tfreg.metrics`, the binary label losses, the models' centroid TRE
and the segmenters' masks. So ``tfreg_predict`` and ``tfreg_evaluate`` report the same Dice for the same
files, and a 0.5 voxel counts as foreground everywhere.

NumPy only (no Keras, no TensorFlow): works on NumPy arrays and on tensors of any Keras backend (``>=`` is
elementwise for both).
"""

from __future__ import annotations

import numpy as np

#: Foreground is ``value >= LABEL_THRESHOLD`` (docs/evaluation.md, docs/prediction.md).
LABEL_THRESHOLD = 0.5


def binarise(label, threshold: float = LABEL_THRESHOLD):
    """The foreground mask of ``label``: ``label >= threshold``, elementwise.

    Args:
        label: array or tensor of any shape, values in [0, 1] (binary, one-hot, probabilities or a linearly
            warped label); a boolean NumPy array is returned unchanged.
        threshold: the cut (default :data:`LABEL_THRESHOLD`); a value equal to it is foreground.

    Returns:
        A boolean array (NumPy in, NumPy out) or boolean tensor of ``label``'s shape.
    """
    if isinstance(label, np.ndarray) and label.dtype == np.bool_:
        return label
    return label >= threshold


__all__ = ["LABEL_THRESHOLD", "binarise"]

"""Segmentation-guided attention layers (WSSAMNet, WSSAMNet++, He, He and Cao's hard attention), 2-D and 3-D.

Registered (``attention_class``), each a weight-free Keras layer called on a pair ``layer([image, mask])``:

- ``image``: ``(B, *S, C)``, channels-last, 2 or 3 spatial axes (any intensity unit);
- ``mask``: ``(B, *S)`` or ``(B, *S, K)``, the predicted segmentation (probabilities in [0, 1]), one
  channel per label; for ``roi`` with ``input_type="landmarks"`` the second input is instead landmark
  coordinates ``(B, N, ndim)`` in voxels.

=============  ============================  ==================================================
name           class                         output
=============  ============================  ==================================================
``contour``    :class:`ContourAttention`     ``O = |Lap(M)| * M + I``               ``(B, *S, C)``
``masking``    :class:`MaskingAttention`     ``O = M * I`` (or ``(1 - M) * I``)     ``(B, *S, C)``
``roi``        :class:`RoiAttention`         ``O = S * I``, S from a mask or landmarks ``(B, *S, C)``
``mask_only``  :class:`MaskOnlyAttention`    ``O = mask``                           ``(B, *S, K)``
``concat``     :class:`ConcatAttention`      ``O = concat(I, mask)``                ``(B, *S, C + K)``
=============  ============================  ==================================================

Multi-label masks: ``M`` (the foreground) is the union of the ``K`` labels, computed as
``min(sum_k M_k, 1)``: for mutually exclusive (softmax) labels this is the foreground probability; for
binary labels it is the logical OR. Pass foreground channels only (no background channel). ``M``
multiplies every image channel. A registration model applies the layer to the moving and to the fixed
pair and concatenates the two outputs as the network input (methods.md §1).

Gradients flow to the image and to the mask (useful when the segmenter is trained end to end), except
through the thresholding of landmark cubes.
"""

from numbers import Integral
from typing import Sequence, Union

import keras
from keras import ops

from tfreg.checks import BOUNDARIES, check_bool, check_choice
from tfreg.label_threshold import binarise
from tfreg.ops.filters import STENCILS, laplacian
from tfreg.registry import REGISTRY
from tfreg.serialization import AttributeConfigMixin


def _split_pair(inputs, name: str, mask_is_landmarks: bool = False):
    """``(image, mask)`` checked; the mask as ``(B, *S, K)`` in the image's floating dtype."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(f"{name}: call the layer on a pair [image, mask], got {type(inputs).__name__}")
    image, mask = inputs
    image = ops.convert_to_tensor(image)
    if "float" not in str(image.dtype):
        image = ops.cast(image, "float32")
    ndim = len(image.shape) - 2
    if ndim not in (2, 3):
        raise ValueError(
            f"{name}: image must be (batch, *spatial, channels) with 2 or 3 spatial axes, got {tuple(image.shape)}"
        )
    mask = ops.cast(ops.convert_to_tensor(mask), image.dtype)
    if mask_is_landmarks:
        return image, mask
    if len(mask.shape) == ndim + 1:
        mask = ops.expand_dims(mask, -1)
    if len(mask.shape) != ndim + 2 or any(
        a is not None and b is not None and a != b for a, b in zip(mask.shape[1:-1], image.shape[1:-1])
    ):
        raise ValueError(
            f"{name}: mask must be (batch, *spatial) or (batch, *spatial, K) with the image's spatial shape "
            f"{tuple(image.shape[1:-1])}, got {tuple(mask.shape)}"
        )
    return image, mask


def mask_union(mask):
    """Foreground of a ``(B, *S, K)`` mask: ``min(sum_k M_k, 1)``, ``(B, *S, 1)`` (identity when K = 1)."""
    if mask.shape[-1] == 1:
        return mask
    return ops.minimum(ops.sum(mask, axis=-1, keepdims=True), 1.0)


def _check_size(size, ndim: int):
    sizes = list(size) if isinstance(size, (list, tuple)) else [size] * ndim
    if len(sizes) != ndim or any(
        isinstance(s, bool) or not isinstance(s, Integral) or s < 1 or s % 2 == 0 for s in sizes
    ):
        raise ValueError(f"size must be an odd integer >= 1 or {ndim} of them (voxels), got {size!r}")
    return tuple(int(s) for s in sizes)


def landmark_cubes(landmarks, spatial_shape, size: Union[int, Sequence[int]] = 9):
    """Binary mask of cubes of ``size`` voxels centred on landmarks (WSSAMNet's 9x9x9 ROIs).

    ``S[b, x] = 1`` if ``max_a |x_a - round(l_a)| <= size_a // 2`` for some landmark ``l`` of sample ``b``,
    else 0; cubes are cut at the volume's edges. Landmarks whose rounded position lies outside the volume, or
    with a non-finite coordinate (use NaN to pad samples with fewer landmarks), are ignored.

    Args:
        landmarks: ``(B, N, ndim)`` voxel coordinates, ij(k) order.
        spatial_shape: ``(d0, d1[, d2])`` static ints.
        size: odd cube side in voxels (default 9), or one per axis.

    Returns:
        float32 ``(B, *spatial_shape, 1)``; no gradient with respect to the landmarks.
    """
    spatial_shape = tuple(int(s) for s in spatial_shape)
    ndim = len(spatial_shape)
    if ndim not in (2, 3):
        raise ValueError(f"spatial_shape must have 2 or 3 entries, got {spatial_shape!r}")
    sizes = _check_size(size, ndim)
    landmarks = ops.cast(ops.convert_to_tensor(landmarks), "float32")
    if len(landmarks.shape) != 3 or landmarks.shape[-1] != ndim:
        raise ValueError(f"landmarks must be (batch, N, {ndim}) voxel coordinates, got shape {tuple(landmarks.shape)}")
    batch = landmarks.shape[0] if landmarks.shape[0] is not None else ops.shape(landmarks)[0]
    n = landmarks.shape[1] if landmarks.shape[1] is not None else ops.shape(landmarks)[1]
    finite = ops.all(ops.isfinite(landmarks), axis=-1)
    rounded = ops.round(ops.where(ops.isfinite(landmarks), landmarks, -1.0))
    upper = ops.convert_to_tensor([float(d - 1) for d in spatial_shape])
    inside = finite & ops.all((rounded >= 0.0) & (rounded <= upper), axis=-1)
    # Clamped so every index is valid; outside landmarks then scatter a 0.
    index = ops.cast(ops.clip(rounded, 0.0, upper), "int32")
    batch_index = ops.broadcast_to(ops.reshape(ops.arange(batch, dtype="int32"), (-1, 1, 1)), (batch, n, 1))
    index = ops.reshape(ops.concatenate([batch_index, index], axis=-1), (-1, ndim + 1))
    values = ops.reshape(ops.cast(inside, "float32"), (-1,))
    # Seeds (duplicates add up, hence the clip), then a max filter grows each seed into a cube.
    seeds = ops.minimum(ops.scatter(index, values, (batch,) + spatial_shape), 1.0)
    cubes = ops.max_pool(ops.expand_dims(seeds, -1), pool_size=sizes, strides=1, padding="same")
    return ops.stop_gradient(cubes)


class SegmentationAttention(AttributeConfigMixin, keras.layers.Layer):
    """Base of the attention layers: weight-free, called on ``[image, mask]`` (see the module docstring)."""

    def _pair(self, inputs):
        return _split_pair(inputs, type(self).__name__)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    # Weight-free: "trainable" is meaningless here and the constructors do not take it.
    config_drop = ("trainable",)


@REGISTRY.register_attention(name="contour")
class ContourAttention(SegmentationAttention):
    """Contour attention of WSSAMNet++: ``O = L * M + I`` with ``L = sum_k |Lap(M_k)|``.

    ``Lap`` is the discrete Laplacian of each mask channel (:func:`tfreg.ops.filters.laplacian`: ``stencil``
    ``"cross"`` 5/7-point or ``"full"`` 8/26-neighbour, ``boundary`` replicate by default so a mask touching
    the border has no artificial edge there), ``M`` the union of the labels (module docstring). ``L M`` is
    non-zero on the inner rim of each structure, so the edges of the segmented organs are brightened by
    their edge strength while the rest of the image is unchanged.

    Args:
        stencil: ``"cross"`` or ``"full"``.
        boundary: ``"replicate"`` or ``"zero"``.

    Call: ``layer([image (B, *S, C), mask (B, *S[, K])])`` -> ``(B, *S, C)``.
    """

    def __init__(self, stencil: str = "cross", boundary: str = "replicate", **kwargs):
        super().__init__(**kwargs)
        self.stencil = check_choice(stencil, "stencil", STENCILS)
        self.boundary = check_choice(boundary, "boundary", BOUNDARIES)

    def call(self, inputs):
        image, mask = self._pair(inputs)
        edges = ops.sum(ops.abs(laplacian(mask, stencil=self.stencil, boundary=self.boundary)), axis=-1, keepdims=True)
        return edges * mask_union(mask) + image

    config_keys = ("stencil", "boundary")


@REGISTRY.register_attention(name="masking")
class MaskingAttention(SegmentationAttention):
    """Hard/soft masking attention: ``O = M * I``, or ``O = (1 - M) * I`` with ``invert=True``.

    ``invert=True`` is WSSAMNet++'s post-operative set-up (``M`` the tumour: tumour voxels become 0 and the
    network attends to the tissue common to both scans); ``binary=True`` is the hard attention of He, He and
    Cao 2022 (``I * W``, ``W`` the segmenter's binary lung mask). ``M`` is the union of the labels, and with
    ``binary`` it is thresholded, ``M >= 0.5`` (the paper's binary mask of a sigmoid segmenter; a step has
    no gradient, so the segmenter is then trained beforehand, not through this layer).

    Args:
        invert: use ``1 - M``.
        binary: threshold ``M`` at 0.5 first (soft masks by default).

    Call: ``layer([image (B, *S, C), mask (B, *S[, K])])`` -> ``(B, *S, C)``.
    """

    def __init__(self, invert: bool = False, binary: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.invert = check_bool(invert, "invert")
        self.binary = check_bool(binary, "binary")

    def call(self, inputs):
        image, mask = self._pair(inputs)
        m = mask_union(mask)
        if self.binary:
            m = ops.cast(binarise(m), image.dtype)
        return (1.0 - m) * image if self.invert else m * image

    config_keys = ("invert", "binary")


ROI_INPUTS = ("mask", "landmarks")


@REGISTRY.register_attention(name="roi")
class RoiAttention(SegmentationAttention):
    """Region-of-interest attention of WSSAMNet: ``O = S * I``.

    - ``input_type="mask"`` (default): ``S`` is the second input, the predicted ROI segmentation (a network
      trained on :func:`landmark_cubes` targets), union of its labels.
    - ``input_type="landmarks"``: the second input is ``(B, N, ndim)`` landmark coordinates (voxels) and
      ``S = landmark_cubes(landmarks, S, size)``, cubes of ``size`` voxels around each landmark (9x9x9 in
      WSSAMNet); NaN rows pad samples with fewer landmarks.

    Args:
        input_type: ``"mask"`` or ``"landmarks"``.
        size: odd cube side in voxels (default 9) or one per axis; used with landmarks.

    Call: ``layer([image (B, *S, C), mask or landmarks])`` -> ``(B, *S, C)``.
    """

    def __init__(self, input_type: str = "mask", size: Union[int, Sequence[int]] = 9, **kwargs):
        super().__init__(**kwargs)
        check_choice(input_type, "input_type", ROI_INPUTS)
        _check_size(size, len(size) if isinstance(size, (list, tuple)) else 3)
        self.input_type = input_type
        self.size = list(size) if isinstance(size, (list, tuple)) else size

    def call(self, inputs):
        if self.input_type == "mask":
            image, mask = self._pair(inputs)
            return mask_union(mask) * image
        image, landmarks = _split_pair(inputs, type(self).__name__, mask_is_landmarks=True)
        cubes = landmark_cubes(landmarks, image.shape[1:-1], self.size)
        return ops.cast(cubes, image.dtype) * image

    config_keys = ("input_type", "size")


@REGISTRY.register_attention(name="mask_only")
class MaskOnlyAttention(SegmentationAttention):
    """Ablation of WSSAMNet++ Table I: the registration input is the predicted masks only, ``O = mask``.

    Call: ``layer([image (B, *S, C), mask (B, *S[, K])])`` -> ``(B, *S, K)`` (the image is only checked).
    """

    def call(self, inputs):
        _, mask = self._pair(inputs)
        return mask

    def compute_output_shape(self, input_shape):
        image_shape, mask_shape = input_shape
        k = mask_shape[-1] if len(mask_shape) == len(image_shape) else 1
        return tuple(image_shape[:-1]) + (k,)


@REGISTRY.register_attention(name="concat")
class ConcatAttention(SegmentationAttention):
    """Ablation of WSSAMNet++ Table I: ``O = concat(I, mask)`` along channels.

    Call: ``layer([image (B, *S, C), mask (B, *S[, K])])`` -> ``(B, *S, C + K)``.
    """

    def call(self, inputs):
        image, mask = self._pair(inputs)
        return ops.concatenate([image, mask], axis=-1)

    def compute_output_shape(self, input_shape):
        image_shape, mask_shape = input_shape
        k = mask_shape[-1] if len(mask_shape) == len(image_shape) else 1
        c = None if image_shape[-1] is None or k is None else image_shape[-1] + k
        return tuple(image_shape[:-1]) + (c,)


__all__ = [
    "mask_union",
    "landmark_cubes",
    "SegmentationAttention",
    "ContourAttention",
    "MaskingAttention",
    "RoiAttention",
    "MaskOnlyAttention",
    "ConcatAttention",
]

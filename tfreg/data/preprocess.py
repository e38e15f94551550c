"""Per-sample preprocessing: shape checks, intensity normalisation, label checks, resizing.

DeepReg's rules (contract section 4):

- images are ``ndim``-D (3-D in DeepReg; tfreg also takes 2-D) and normalised per image to [0, 1] by
  ``(x - min) / (max - min)`` with no epsilon; a constant image becomes all zeros (no NaN);
- labels are ``ndim``-D (one label) or ``ndim + 1``-D with the labels on the last axis; a single
  channel is squeezed; values must lie in [0, 1] and are **not** rescaled; with ``dataset.num_labels: K``
  (tfreg) every label file is instead an integer label map (0 = background, 1..K) read as K such channels;
- everything, labels included, is resized to the configured shape with DeepReg's ``Resize3d``
  numerics (:func:`tfreg.ops.resize.resize`), so labels become soft.

tfreg adds: non-finite voxels are an error (DeepReg's min/max would silently give NaN images), and
every message names the file. An image *smaller* than the configured shape is allowed and upsampled,
as in DeepReg; an image with the wrong number of axes is an error.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from tfreg.data.errors import DataError


def image_spatial_shape(shape: Sequence[int], ndim: int, source: str) -> Tuple[int, ...]:
    """The spatial shape of an image file of ``shape``; a trailing channel of size 1 is dropped.

    Raises:
        DataError: naming ``source`` when the image is not ``ndim``-D (or ``ndim``-D plus one channel)
            or has an empty axis.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == ndim + 1 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != ndim:
        if looks_like_colour(shape, ndim):
            kind = "RGB" if shape[-1] == 3 else "RGBA"
            # a 2-D configuration given a volume of 3 or 4 slices shows the same shape: say so
            volume = "; if it is a 3-D volume, configure a 3-D shape" if len(shape) == 3 else ""
            raise DataError(
                f"image {source} has shape {shape}: its last axis of {shape[-1]} looks like {kind} colour channels, "
                f"but the configured shape is a {ndim}-D grey image. Convert it to grey first (ITU-R BT.601 luma, "
                "0.299 R + 0.587 G + 0.114 B; the chest X-ray converters data_scripts/jsrt.py, montgomery.py and "
                f"shenzhen.py do this){volume}"
            )
        raise DataError(
            f"image {source} has shape {shape}: expected a {ndim}-D image (the configured shape has "
            f"{ndim} axes); multi-channel images are not supported"
        )
    if min(shape) <= 0:
        raise DataError(f"image {source} is empty: shape {shape}")
    return shape


def looks_like_colour(shape: Sequence[int], ndim: int) -> bool:
    """Whether an image of ``shape`` is an ``ndim``-D colour picture: a last axis of 3 (RGB) or 4 (RGBA) after
    the ``ndim`` spatial axes and only size-1 axes between (a 2-D RGB NIfTI may store ``(x, y, 1, 3)``)."""
    shape = tuple(int(s) for s in shape)
    return len(shape) > ndim and shape[-1] in (3, 4) and all(s == 1 for s in shape[ndim:-1])


def label_spatial_shape_and_count(shape: Sequence[int], ndim: int, source: str) -> Tuple[Tuple[int, ...], int]:
    """``(spatial shape, number of labels)`` of a label file of ``shape``.

    Raises:
        DataError: naming ``source`` unless the label is ``ndim``-D or ``ndim + 1``-D, non-empty.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == ndim:
        spatial, count = shape, 1
    elif len(shape) == ndim + 1:
        spatial, count = shape[:-1], shape[-1]
    else:
        raise DataError(
            f"label {source} has shape {shape}: expected {ndim}-D (one label) or {ndim + 1}-D (labels on the last axis)"
        )
    if min(shape) <= 0:
        raise DataError(f"label {source} is empty: shape {shape}")
    return spatial, count


def check_finite(array: np.ndarray, source: str, what: str = "image") -> None:
    """DataError naming ``source`` when ``array`` holds NaN or infinite values."""
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{what} {source} has {bad} non-finite (NaN or infinite) voxel(s)")


def normalize_image(image: np.ndarray) -> np.ndarray:
    """``(x - min) / (max - min)`` as float32 in [0, 1]; a constant image gives zeros.

    Same values as DeepReg's ``normalize_array`` (no epsilon): the range is computed and divided in
    float32.
    """
    image = np.asarray(image, dtype=np.float32)
    low, high = np.min(image), np.max(image)
    if high == low:
        return np.zeros_like(image)
    return (image - low) / (high - low)


def check_label_values(label: np.ndarray, source: str) -> None:
    """DataError naming ``source`` when label values leave [0, 1] (labels are never rescaled)."""
    low, high = float(np.min(label)), float(np.max(label))
    if low < 0 or high > 1:
        raise DataError(
            f"label {source} has values in [{low}, {high}], outside [0, 1]. Labels are not normalised: "
            f"store each label as a binary (or probabilistic) mask in its own channel on the last axis, "
            f"not as integer label numbers, or read integer label maps 0..K with dataset.num_labels: K"
        )


#: the config key of integer label maps (named in the errors of the functions below)
LABEL_MAP_KEY = "dataset.num_labels"


def label_map_spatial_shape(shape: Sequence[int], ndim: int, source: str, num_labels: int) -> Tuple[int, ...]:
    """The spatial shape of an integer label map file of ``shape``: ``ndim``-D, or ``ndim + 1``-D with one channel.

    Raises:
        DataError: naming ``source`` and ``dataset.num_labels`` for several channels (a one-hot file) or
            a wrong number of axes.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == ndim + 1 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != ndim:
        raise DataError(
            f"label {source} has shape {shape}, but {LABEL_MAP_KEY}: {num_labels} reads every label file as one "
            f"integer label map of {ndim} axes (0 = background, 1..{num_labels} structures); a file with one "
            f"channel per structure is DeepReg's one-hot layout: leave {LABEL_MAP_KEY} out for it"
        )
    if min(shape) <= 0:
        raise DataError(f"label {source} is empty: shape {shape}")
    return shape


def label_map_channels(array: np.ndarray, ndim: int, source: str, num_labels: int) -> np.ndarray:
    """An integer label map as one binary channel per structure: ``(*S)`` -> float32 ``(*S, num_labels)``.

    Value 0 is the background (no channel), value ``k`` in ``1..num_labels`` sets channel ``k - 1`` (DeepReg's
    one-mask-per-channel layout, in the order of the label values). ``(*S, 1)`` is read as ``(*S)``.

    Raises:
        DataError: naming ``source`` (and ``dataset.num_labels``) for several channels, non-finite or
            non-integer values (e.g. a map resampled with linear interpolation), or values outside
            ``0..num_labels``.
    """
    spatial = label_map_spatial_shape(np.shape(array), ndim, source, num_labels)
    values = np.asarray(array).reshape(spatial)
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        values = values.astype(np.float64)
    check_finite(values, source, "label map")
    if not np.issubdtype(values.dtype, np.integer):
        fractional = values != np.round(values)
        if fractional.any():
            raise DataError(
                f"label map {source} has {int(fractional.sum())} non-integer value(s) (e.g. "
                f"{float(values[fractional].flat[0])}), but {LABEL_MAP_KEY} reads integer label maps (0 = "
                f"background, 1..{num_labels}); resample label maps with nearest-neighbour interpolation"
            )
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > num_labels:
        raise DataError(
            f"label map {source} has values in [{low:g}, {high:g}], outside 0..{num_labels} ({LABEL_MAP_KEY}: "
            f"{num_labels}, 0 = background); set {LABEL_MAP_KEY} to the largest structure number"
        )
    values = values.astype(np.int64)
    return np.stack([values == k for k in range(1, num_labels + 1)], axis=-1).astype(np.float32)


def load_image(array: np.ndarray, ndim: int, source: str) -> np.ndarray:
    """Check and normalise a loaded image: float32 ``(*spatial)`` in [0, 1]."""
    array = np.reshape(array, image_spatial_shape(array.shape, ndim, source))
    check_finite(array, source, "image")
    return normalize_image(array)


def load_label_channels(
    array: np.ndarray, ndim: int, source: str, channels: Sequence[int], num_labels: Optional[int] = None
) -> np.ndarray:
    """Check a loaded label and return the requested channels first: float32 ``(len(channels), *spatial)``.

    ``num_labels`` None: ``array`` is DeepReg's layout (one [0, 1] mask per channel on the last axis). An int:
    ``array`` is an integer label map with values ``0..num_labels`` (:func:`label_map_channels`).
    """
    if num_labels is None:
        spatial, count = label_spatial_shape_and_count(array.shape, ndim, source)
        array = np.asarray(array, dtype=np.float32).reshape(spatial + (count,))
        check_finite(array, source, "label")
        check_label_values(array, source)
    else:
        array, count = label_map_channels(array, ndim, source, num_labels), num_labels
    for channel in channels:
        if not 0 <= channel < count:
            raise DataError(f"label {source} has {count} label(s), label index {channel} requested")
    return np.ascontiguousarray(np.moveaxis(array[..., list(channels)], -1, 0))


def resize(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize a NumPy batch ``(B, *S)`` to spatial ``shape`` with DeepReg's ``Resize3d`` numerics.

    Calls :func:`tfreg.ops.resize.resize` eagerly on the concrete array (it needs static spatial sizes,
    which differ from file to file, so it cannot run on the pipeline's symbolic tensors). Under the
    TensorFlow backend the work is pinned to the CPU, where the rest of the input pipeline runs.

    Returns:
        float32 ``(B, *shape)``; ``x`` itself (as float32) when the shape already matches.
    """
    shape = tuple(int(s) for s in shape)
    x = np.asarray(x, dtype=np.float32)
    if tuple(x.shape[1:]) == shape:
        return x
    import keras

    from tfreg.ops.resize import resize as _resize

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.device("/CPU:0"):
            return np.asarray(keras.ops.convert_to_numpy(_resize(x, shape)), dtype=np.float32)
    return np.asarray(keras.ops.convert_to_numpy(_resize(x, shape)), dtype=np.float32)


__all__ = [
    "image_spatial_shape",
    "looks_like_colour",
    "label_spatial_shape_and_count",
    "check_finite",
    "normalize_image",
    "check_label_values",
    "label_map_channels",
    "label_map_spatial_shape",
    "LABEL_MAP_KEY",
    "load_image",
    "load_label_channels",
    "resize",
]

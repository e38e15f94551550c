"""Shared machinery of tfreg's losses: input layout, the negated-score mixin and the multi-scale base.

Every image/label loss is a ``keras.losses.Loss`` whose ``call(y_true, y_pred)`` returns one value per
sample, shape ``(batch,)``; Keras' reduction then gives the batch mean by default
(``"sum_over_batch_size"``) or the per-sample vector with ``reduction=None``.

Subclasses implement :meth:`ImageLoss.compute_per_sample`, which receives both inputs already cast to
float32 and laid out as ``(batch, *spatial, channels)``.
"""

from numbers import Real
from typing import Optional, Sequence, Union

import numpy as np
from keras import losses, ops

from tfreg.checks import check_choice
from tfreg.ops.filters import separable_filter
from tfreg.ops.kernels import SIGMA_KERNELS
from tfreg.serialization import AttributeConfigMixin

#: DeepReg's smoothing constant (``EPS`` in its formulas).
EPS = 1e-5


def check_spatial_dims(spatial_dims) -> Optional[int]:
    """``spatial_dims`` validated: None, 2 or 3."""
    check_choice(spatial_dims, "spatial_dims", (None, 2, 3))
    return None if spatial_dims is None else int(spatial_dims)


def to_channels_last(x, spatial_dims: Optional[int] = None):
    """Lay an image or label tensor out as ``(batch, *spatial, channels)``.

    Rule for the number of spatial axes:

    - ``spatial_dims=None`` (DeepReg's layout, the default): rank 3 is a 2-D image without channels
      ``(B, H, W)``, rank 4 a 3-D image without channels ``(B, D, H, W)``, rank 5 a 3-D image with
      channels ``(B, D, H, W, C)``;
    - ``spatial_dims=2``: rank 3 ``(B, H, W)`` or rank 4 ``(B, H, W, C)`` (a 2-D image with a channel axis
      needs this, since rank 4 would otherwise be read as 3-D);
    - ``spatial_dims=3``: rank 4 ``(B, D, H, W)`` or rank 5 ``(B, D, H, W, C)``.

    A missing channel axis is added with size 1.

    Raises:
        ValueError: a rank that fits none of the above.
    """
    rank = len(x.shape)
    if spatial_dims is None:
        with_channels = {3: False, 4: False, 5: True}.get(rank)
    else:
        with_channels = {spatial_dims + 1: False, spatial_dims + 2: True}.get(rank)
    if with_channels is None:
        expected = "3, 4 or 5" if spatial_dims is None else f"{spatial_dims + 1} or {spatial_dims + 2}"
        raise ValueError(
            f"expected an input of rank {expected} for spatial_dims={spatial_dims} "
            f"((batch, *spatial) or (batch, *spatial, channels)), got shape {tuple(x.shape)}"
        )
    return x if with_channels else ops.expand_dims(x, -1)


def mean_per_sample(x):
    """Mean over every non-batch axis: ``(batch, ...) -> (batch,)``."""
    return ops.mean(x, axis=tuple(range(1, len(x.shape))))


def sum_per_sample(x):
    """Sum over every non-batch axis: ``(batch, ...) -> (batch,)``."""
    return ops.sum(x, axis=tuple(range(1, len(x.shape))))


class ImageLoss(AttributeConfigMixin, losses.Loss):
    """Base of tfreg's image and label losses (and scores): ``call(y_true, y_pred) -> (batch,)``.

    Inputs are ``(B, *S)`` or ``(B, *S, C)`` with 2 or 3 spatial axes. The number of spatial axes is read
    from the rank and ``spatial_dims`` (see :func:`to_channels_last`): when ``spatial_dims`` is None,
    rank 3 = 2-D without channels, rank 4 = 3-D without channels (DeepReg's layout), rank 5 = 3-D with
    channels; a 2-D image with a channel axis (rank 4) needs ``spatial_dims=2``.

    Both inputs are cast to float32 before any arithmetic, so the loss is safe under mixed precision.

    Args:
        spatial_dims: None, 2 or 3.
        name: Keras name; defaults to the class name (DeepReg's, e.g. ``DiceScoreLoss``), logged as
            ``loss/<category>_<name>``.
        reduction: Keras reduction over the batch; ``"sum_over_batch_size"`` (default) gives the batch
            mean, None gives the ``(batch,)`` vector.
        dtype: dtype of Keras' input conversion and of the returned value (default ``floatx``).
    """

    def __init__(
        self,
        spatial_dims: Optional[int] = None,
        name: Optional[str] = None,
        reduction: Optional[str] = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name or type(self).__name__, reduction=reduction, dtype=dtype)
        self.spatial_dims = check_spatial_dims(spatial_dims)

    def prepare(self, y_true, y_pred):
        """Both inputs as float32 ``(batch, *spatial, channels)``; their shapes must agree."""
        y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        if len(y_true.shape) != len(y_pred.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(y_true.shape, y_pred.shape)
        ):
            raise ValueError(
                f"{type(self).__name__}: y_true and y_pred must have the same shape, got "
                f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}"
            )
        return to_channels_last(y_true, self.spatial_dims), to_channels_last(y_pred, self.spatial_dims)

    def compute_per_sample(self, y_true, y_pred):
        """The loss (or score) per sample.

        Args:
            y_true, y_pred: float32 ``(batch, *spatial, channels)``.

        Returns:
            ``(batch,)`` float32.
        """
        raise NotImplementedError

    def call(self, y_true, y_pred):
        """``(batch,)`` values of :meth:`compute_per_sample` on the prepared inputs."""
        return self.compute_per_sample(*self.prepare(y_true, y_pred))

    config_keys = ("spatial_dims",)


class NegatedLossMixin:
    """Turns a score into a loss: ``call`` returns ``-score`` (DeepReg's ``NegativeLossMixin``).

    Put it first among the bases, e.g. ``class DiceScoreLoss(NegatedLossMixin, DiceScore)``; the default
    Keras name is then the new class's name.
    """

    def call(self, y_true, y_pred):
        """``-score`` per sample, ``(batch,)``."""
        return -super().call(y_true, y_pred)


def check_scales(scales) -> Optional[list]:
    """``scales`` validated: None, a number >= 0, or a non-empty list of numbers >= 0 (voxels)."""
    if scales is None:
        return None
    values = list(scales) if isinstance(scales, (list, tuple, np.ndarray)) else [scales]
    if not values:
        raise ValueError("scales must be None or a non-empty list of numbers >= 0 (voxels), got []")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, Real) or not np.isfinite(s) or s < 0:
            raise ValueError(f"scales must be numbers >= 0 (voxels), got {scales!r}")
    return [float(s) if not float(s).is_integer() else int(s) for s in values]


class MultiScaleLoss(ImageLoss):
    """An :class:`ImageLoss` averaged over smoothing scales (DeepReg's ``MultiScaleLoss``).

    ``value = mean over s in scales of compute_per_sample(K_s * y_true, K_s * y_pred)`` where ``K_0`` is
    the identity (raw inputs) and ``K_s`` for ``s > 0`` is the separable, zero-padded filter with the
    normalised ``kernel`` of scale ``s`` voxels (``gaussian``: exp(-x^2 / 2s^2), x in +-int(3s);
    ``cauchy``: 1 / (1 + (x/s)^2), x in +-int(5s)), applied per channel. ``scales=None`` uses the raw
    inputs only. The mean over scales is taken before a :class:`NegatedLossMixin` sign flip.

    Args:
        scales: None, a number, or a non-empty list of numbers >= 0 (voxels).
        kernel: ``"gaussian"`` or ``"cauchy"``.
        **kwargs: ``spatial_dims``, ``name``, ``reduction``, ``dtype`` of :class:`ImageLoss`.
    """

    def __init__(
        self,
        scales: Union[None, float, Sequence[float]] = None,
        kernel: str = "gaussian",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_choice(kernel, "kernel", sorted(SIGMA_KERNELS))
        self.scales = check_scales(scales)
        self.kernel = kernel
        # Built once here: kernels depend only on the scales.
        self._kernels = (
            None if self.scales is None else [None if s == 0 else SIGMA_KERNELS[kernel](s) for s in self.scales]
        )

    def call(self, y_true, y_pred):
        """Mean over scales of :meth:`compute_per_sample`, ``(batch,)``."""
        y_true, y_pred = self.prepare(y_true, y_pred)
        if self.scales is None:
            return self.compute_per_sample(y_true, y_pred)
        values = []
        for k in self._kernels:
            if k is None:
                values.append(self.compute_per_sample(y_true, y_pred))
            else:
                values.append(self.compute_per_sample(separable_filter(y_true, k), separable_filter(y_pred, k)))
        return ops.mean(ops.stack(values, axis=0), axis=0)

    config_keys = ("scales", "kernel")


__all__ = [
    "EPS",
    "check_spatial_dims",
    "check_scales",
    "to_channels_last",
    "mean_per_sample",
    "sum_per_sample",
    "ImageLoss",
    "NegatedLossMixin",
    "MultiScaleLoss",
]

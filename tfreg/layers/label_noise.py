"""Label-swap noise of a denoising auto-encoder of label maps (AC-RegNet, Mansilla et al. 2020), 2-D and 3-D.

The voxels along one spatial axis are grouped in pairs ``(2j, 2j + 1)``; each pair, independently for every
sample, every position on the other axes and every ``j``, swaps its two label vectors (all channels at once)
with probability ``p``. AC-RegNet swaps horizontally adjacent pixels (image columns ``2j, 2j + 1``) with
``p = 0.1``. A swap only moves labels, so it changes a map only along its contours, where the two voxels of
a pair differ: it is a contour noise. Swapping label vectors commutes with any per-voxel function of them, so
swapping foreground channels and then adding the background channel equals swapping the one-hot map.
"""

from typing import Optional

import keras
from keras import ops

from tfreg.checks import check_int, check_number


def _check_axis(axis: int, ndim: int) -> int:
    axis = check_int(axis, "axis", minimum=0)
    if axis >= ndim:
        raise ValueError(f"axis must be a spatial axis in 0..{ndim - 1} for {ndim}-D labels, got {axis}")
    return axis


def pair_shape(shape, axis: int):
    """The shape of the swap decisions for labels of ``shape`` ``(B, *S, C)``: ``(B, *S, 1)`` with
    ``S[axis]`` halved (one decision per voxel pair, shared by the channels)."""
    shape = tuple(shape)
    ndim = len(shape) - 2
    axis = _check_axis(axis, ndim)
    size = shape[axis + 1]
    if size is None or size % 2:
        raise ValueError(f"label-swap noise pairs voxels (2j, 2j+1) along axis {axis}, whose size {size} must be even")
    return shape[: axis + 1] + (size // 2,) + shape[axis + 2 : -1] + (1,)


def swap_pairs(labels, swap, axis: int):
    """Swap the label vectors of the voxel pairs ``(2j, 2j + 1)`` along ``axis`` where ``swap`` is true.

    Args:
        labels: ``(B, *S, C)`` label maps (one-hot, foreground masks or soft labels), ``S[axis]`` even.
        swap: bool ``(B, *S, 1)`` with ``S[axis]`` halved (:func:`pair_shape`): whether pair ``j`` swaps.
        axis: the spatial axis (0 = the first spatial axis, after the batch).

    Returns:
        ``(B, *S, C)``, ``out[..., 2j, ...] = labels[..., 2j + 1, ...]`` and vice versa where ``swap``.
    """
    labels = ops.convert_to_tensor(labels)
    shape = tuple(labels.shape)
    expected = pair_shape(shape, axis)
    if len(swap.shape) != len(expected) or tuple(swap.shape)[1:] != expected[1:]:
        raise ValueError(f"swap must have shape {expected} for labels {shape} and axis {axis}, got {tuple(swap.shape)}")
    a = axis + 1
    # split the axis into (pairs, 2); reversing the last gives every pair swapped
    split = shape[:a] + (shape[a] // 2, 2) + shape[a + 1 :]
    pairs = ops.reshape(labels, (-1,) + split[1:])
    swapped = ops.flip(pairs, axis=a + 1)
    decision = ops.expand_dims(ops.convert_to_tensor(swap, "bool"), a + 1)
    return ops.reshape(ops.where(decision, swapped, pairs), (-1,) + shape[1:])


class LabelSwapNoise(keras.layers.Layer):
    """Label-swap noise in training, the identity otherwise (see the module docstring).

    Args:
        probability: the swap probability ``p`` of each pair, in [0, 1] (AC-RegNet: 0.1).
        axis: the spatial axis of the pairs (0 = the first spatial axis; AC-RegNet: the image columns).
        seed: the seed of the layer's ``keras.random.SeedGenerator`` (None: a random one); the ``n``-th
            training call of two layers with the same seed draws the same swaps.

    Call: ``(B, *S, C)`` -> ``(B, *S, C)``; ``training`` falsy: unchanged. The decisions are
    ``keras.random.uniform(pair_shape(shape, axis), seed=generator) < probability``.
    """

    def __init__(self, probability: float = 0.1, axis: int = 0, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.probability = check_number(probability, "probability", 0.0, 1.0)
        self.axis = check_int(axis, "axis", minimum=0)
        self.seed = None if seed is None else check_int(seed, "seed", minimum=0)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def draw(self, shape):
        """The swap decisions for labels of ``shape`` ``(B, *S, C)``: bool, :func:`pair_shape`."""
        uniform = keras.random.uniform(pair_shape(shape, self.axis), seed=self.seed_generator)
        return uniform < self.probability

    def call(self, labels, training=None):
        if not training or self.probability == 0:
            return labels
        shape = tuple(labels.shape)
        if shape[0] is None:  # a traced batch of unknown size: its size at run time
            shape = (ops.shape(labels)[0],) + shape[1:]
        return swap_pairs(labels, self.draw(shape), self.axis)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(probability=self.probability, axis=self.axis, seed=self.seed)
        return config


__all__ = ["LabelSwapNoise", "pair_shape", "swap_pairs"]

"""Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"), per sample.

A residual branch ``x + f(x)`` becomes ``x + keep_b / (1 - rate) * f(x)`` in training, with ``keep_b`` a
Bernoulli(1 - rate) draw per sample ``b``, so the expected output equals the inference output ``x + f(x)``.
The scales are drawn apart from the branch (:func:`stochastic_depth_scales`) so that a stage run under
gradient checkpointing draws them once, outside the recomputed function; a recomputation that drew its own
would drop other samples than the forward pass did.
"""

from __future__ import annotations

from typing import List, Sequence

import keras
from keras import ops


def drop_path_rates(depths: Sequence[int], rate: float) -> List[List[float]]:
    """Swin's schedule: the rate grows linearly from 0 at the first block to ``rate`` at the last.

    Args:
        depths: blocks per stage.
        rate: the last block's rate, in ``[0, 1)``.

    Returns:
        one list of rates per stage, one rate per block.
    """
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {rate!r}")
    total = sum(int(d) for d in depths)
    flat = [float(rate) * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
    out, start = [], 0
    for d in depths:
        out.append(flat[start : start + int(d)])
        start += int(d)
    return out


def stochastic_depth_scales(batch, rates: Sequence[float], seed_generator, dtype="float32"):
    """Per-sample scales of residual branches for one training step.

    Args:
        batch: the batch size (int or scalar tensor).
        rates: the drop rate of each branch, floats in ``[0, 1)``.
        seed_generator: a ``keras.random.SeedGenerator`` (advanced by the draw).
        dtype: the scales' dtype.

    Returns:
        ``(len(rates), batch)``: ``0`` for a dropped branch, ``1 / (1 - rate)`` for a kept one.
    """
    rows = []
    for rate in rates:
        if rate <= 0.0:
            rows.append(ops.ones((batch,), dtype))
            continue
        keep = ops.cast(keras.random.uniform((batch,), seed=seed_generator) >= rate, dtype)
        rows.append(keep / (1.0 - rate))
    return ops.stack(rows, axis=0)


def scale_branch(branch, scale):
    """``branch`` ``(B, ...)`` times the per-sample ``scale`` ``(B,)`` (None: unchanged)."""
    if scale is None:
        return branch
    shape = (-1,) + (1,) * (len(branch.shape) - 1)
    return branch * ops.reshape(ops.cast(scale, branch.dtype), shape)


__all__ = ["drop_path_rates", "stochastic_depth_scales", "scale_branch"]

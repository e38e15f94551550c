"""Window partitioning for shifted-window self-attention (Swin transformers), 2-D and 3-D, channels-last.

Liu et al. 2021 ("Swin Transformer: Hierarchical Vision Transformer using Shifted Windows") attend within
non-overlapping windows of ``w_0 x ... x w_{n-1}`` tokens and, in every second block, within windows
shifted by ``s_i`` (usually ``w_i // 2``) tokens, implemented as a cyclic roll of the grid by ``-s`` and a
mask that stops tokens brought together by the roll's wrap-around from attending to each other.

The tensor functions (:func:`pad_to_windows`, :func:`window_partition`, :func:`window_reverse`) use
``keras.ops``; the constant tables (:func:`relative_position_index`, :func:`attention_mask`,
:func:`window_geometry`) are NumPy, computed once per grid size when a layer is built.

Conventions: a grid of ``S = (S_0, ..., S_{n-1})`` tokens is padded at the end of each axis to ``P``, a
multiple of the window. Windows are numbered in row-major order over the ``P_i / w_i`` window grid, and
the ``N = prod(w)`` tokens of a window in row-major order within it; a batch of ``B`` grids gives ``B * nW``
windows, batch-major.
"""

from __future__ import annotations

import itertools
from typing import Sequence, Tuple

import numpy as np
from keras import ops

#: Added to the attention logits of forbidden token pairs (Swin's value): exp(-100) is 0 in float32 and
#: float16 alike, and -100 is representable in float16 (unlike -1e9).
MASK_VALUE = -100.0


def _ints(values: Sequence[int], name: str, ndim: int) -> Tuple[int, ...]:
    values = tuple(int(v) for v in values)
    if len(values) != ndim:
        raise ValueError(f"{name} must have {ndim} entries (one per spatial axis), got {values}")
    return values


def window_geometry(size: Sequence[int], window: Sequence[int], shift: Sequence[int]):
    """The window and shift a grid of ``size`` tokens uses, and its padded size.

    Per axis: a window no smaller than the grid becomes the grid (one window, no shift: a roll would only
    permute the tokens of the single window), as Swin UNETR does; otherwise the window is kept and the grid
    padded at the end to a multiple of it.

    Args:
        size: the token grid ``(S_0, ..., S_{n-1})``, ints >= 1.
        window: the configured window ``(w_0, ...)``, ints >= 1.
        shift: the configured shift ``(s_0, ...)``, ``0 <= s_i < w_i``.

    Returns:
        ``(window, shift, padded)``: tuples of ints, ``padded_i = ceil(S_i / w_i) * w_i``.
    """
    ndim = len(size)
    size = _ints(size, "size", ndim)
    window = _ints(window, "window", ndim)
    shift = _ints(shift, "shift", ndim)
    if min(size) < 1 or min(window) < 1:
        raise ValueError(f"size and window must be >= 1, got size {size}, window {window}")
    if any(not 0 <= s < w for s, w in zip(shift, window)):
        raise ValueError(f"each shift must be in [0, window), got shift {shift} for window {window}")
    out_window, out_shift = [], []
    for s, w, sh in zip(size, window, shift):
        if s <= w:
            out_window.append(s)
            out_shift.append(0)
        else:
            out_window.append(w)
            out_shift.append(sh)
    padded = tuple(-(-s // w) * w for s, w in zip(size, out_window))
    return tuple(out_window), tuple(out_shift), padded


def pad_to_windows(x, padded: Sequence[int]):
    """Zero-pad ``x`` ``(B, *S, C)`` at the end of each spatial axis to ``(B, *padded, C)``."""
    size = tuple(x.shape[1:-1])
    pads = [(0, 0)] + [(0, p - s) for s, p in zip(size, padded)] + [(0, 0)]
    if all(after == 0 for _, after in pads):
        return x
    if any(after < 0 for _, after in pads):
        raise ValueError(f"padded size {tuple(padded)} is smaller than the grid {size}")
    return ops.pad(x, pads)


def window_partition(x, window: Sequence[int]):
    """``(B, *P, C)`` -> ``(B * nW, N, C)``: the tokens of each window, ``N = prod(window)``.

    ``P`` must be a multiple of ``window`` on every axis (see :func:`pad_to_windows`).
    """
    padded = tuple(int(p) for p in x.shape[1:-1])
    ndim = len(padded)
    window = _ints(window, "window", ndim)
    if any(p % w for p, w in zip(padded, window)):
        raise ValueError(f"grid {padded} is not a multiple of the window {window}")
    channels = x.shape[-1]
    split = []
    for p, w in zip(padded, window):
        split += [p // w, w]
    x = ops.reshape(x, (-1, *split, channels))
    # (B, n_0, w_0, n_1, w_1, ..., C) -> (B, n_0, n_1, ..., w_0, w_1, ..., C)
    order = [0] + [1 + 2 * i for i in range(ndim)] + [2 + 2 * i for i in range(ndim)] + [1 + 2 * ndim]
    x = ops.transpose(x, order)
    return ops.reshape(x, (-1, int(np.prod(window)), channels))


def window_reverse(windows, window: Sequence[int], padded: Sequence[int]):
    """The inverse of :func:`window_partition`: ``(B * nW, N, C)`` -> ``(B, *padded, C)``."""
    ndim = len(padded)
    window = _ints(window, "window", ndim)
    padded = _ints(padded, "padded", ndim)
    counts = [p // w for p, w in zip(padded, window)]
    channels = windows.shape[-1]
    x = ops.reshape(windows, (-1, *counts, *window, channels))
    # (B, n_0, n_1, ..., w_0, w_1, ..., C) -> (B, n_0, w_0, n_1, w_1, ..., C)
    order = [0]
    for i in range(ndim):
        order += [1 + i, 1 + ndim + i]
    order.append(1 + 2 * ndim)
    x = ops.transpose(x, order)
    return ops.reshape(x, (-1, *padded, channels))


def relative_position_index(window: Sequence[int]) -> np.ndarray:
    """Index of each token pair's offset in the relative position bias table.

    Token ``i`` at window coordinates ``c_i`` and token ``j`` at ``c_j`` have the offset ``c_i - c_j`` in
    ``[-(w - 1), w - 1]`` per axis; its row-major rank among the ``prod(2 w - 1)`` possible offsets is the
    index, so equal offsets share a bias.

    Returns:
        ``(N, N)`` int32, values in ``[0, prod(2 * window - 1))``.
    """
    window = tuple(int(w) for w in window)
    coords = np.stack(np.meshgrid(*[np.arange(w) for w in window], indexing="ij"), axis=-1).reshape(-1, len(window))
    offsets = coords[:, None, :] - coords[None, :, :] + (np.asarray(window) - 1)
    return np.ravel_multi_index(tuple(np.moveaxis(offsets, -1, 0)), tuple(2 * w - 1 for w in window)).astype(np.int32)


def attention_mask_table(size: Sequence[int], window: Sequence[int], shift: Sequence[int]):
    """The additive attention masks of a rolled, padded grid, stored once per distinct window.

    A key token gets :data:`MASK_VALUE` (a query may not attend to it) when

    - it lies in another region of the rolled grid than the query: per shifted axis the regions are
      ``[0, P - w)``, ``[P - w, P - s)`` and ``[P - s, P)``, so tokens that the roll's wrap-around brought
      into one window stay apart (Swin's shifted-window mask); or
    - it is padding (outside ``size`` before the roll): padded tokens are zeros, not image, and would
      otherwise dilute the attention near the far border. This differs from Swin and TransMorph, which
      let padding be attended; it makes a block's output on the image independent of the padding.

    Both rules act per axis, so a window's mask is the AND over axes of one ``(w_a, w_a)`` matrix per axis,
    and only the last window or two along an axis differ from the others. The masks are therefore kept
    once per distinct window (a few dozen at most) with an index per window: the full ``(nW, N, N)``
    table of a Swin UNETR stage at 160 x 192 x 224 would take 1.2 GB.

    Args:
        size: the unpadded token grid ``S``.
        window, shift: as returned by :func:`window_geometry` (already clipped to the grid).

    Returns:
        ``(masks, index)``: ``masks`` ``(U, N, N)`` float32, 0 where attention is allowed, and ``index``
        ``(nW,)`` int32, the mask of each window (row-major over the window grid); or None when nothing is
        masked (no shift and no padding).
    """
    window, shift, padded = window_geometry(size, window, shift)
    if not any(shift) and tuple(padded) == tuple(int(s) for s in size):
        return None
    per_axis = []  # (distinct (w, w) bool matrices, index of each window position along the axis)
    for s, w, sh, p in zip(size, window, shift, padded):
        labels = np.zeros(p, np.int64)
        if sh:
            labels[p - w : p - sh] = 1
            labels[p - sh :] = 2
        # the roll by -shift puts the token of original position o at o - shift
        valid = np.roll(np.arange(p) < int(s), -sh)
        matrices = []
        for k in range(p // w):
            lab, val = labels[k * w : (k + 1) * w], valid[k * w : (k + 1) * w]
            matrices.append((lab[:, None] == lab[None, :]) & val[None, :])
        distinct, index = np.unique(np.stack(matrices), axis=0, return_inverse=True)
        per_axis.append((distinct, np.asarray(index).reshape(-1)))
    masks = []
    for combo in itertools.product(*[range(len(d)) for d, _ in per_axis]):
        allowed = np.ones((1, 1), bool)
        for (distinct, _), c in zip(per_axis, combo):
            a = distinct[c]
            n, w = allowed.shape[0], a.shape[0]
            # tokens are row-major within the window: (i, t) pairs the earlier axes' token i with this axis' t
            allowed = (allowed[:, None, :, None] & a[None, :, None, :]).reshape(n * w, n * w)
        masks.append(np.where(allowed, 0.0, MASK_VALUE).astype(np.float32))
    counts = [len(d) for d, _ in per_axis]
    index = np.ravel_multi_index(np.ix_(*[i for _, i in per_axis]), counts).reshape(-1).astype(np.int32)
    return np.stack(masks), index


def attention_mask(size: Sequence[int], window: Sequence[int], shift: Sequence[int]):
    """The full additive mask ``(nW, N, N)`` of :func:`attention_mask_table` (one per window), or None."""
    table = attention_mask_table(size, window, shift)
    return None if table is None else table[0][table[1]]


__all__ = [
    "MASK_VALUE",
    "window_geometry",
    "pad_to_windows",
    "window_partition",
    "window_reverse",
    "relative_position_index",
    "attention_mask",
    "attention_mask_table",
]

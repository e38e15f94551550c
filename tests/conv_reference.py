"""NumPy references for a stride-1 "same" convolution and its filter gradient (shared by ops and layer tests).

Both are written as one shifted sum per kernel tap, in float64, independent of any FFT or Keras kernel.
"""

import itertools

import numpy as np


def _windows(x, kernel_size):
    """Yields ``(k, x shifted by k - p)`` for every tap ``k``: x zero-padded by ``p = K // 2`` and cut."""
    pads = [(0, 0)] + [(k // 2, k // 2) for k in kernel_size] + [(0, 0)]
    padded = np.pad(x.astype(np.float64), pads)
    sizes = x.shape[1:-1]
    for k in itertools.product(*[range(n) for n in kernel_size]):
        yield k, padded[(slice(None),) + tuple(slice(a, a + s) for a, s in zip(k, sizes)) + (slice(None),)]


def np_conv_same(x, w):
    """``y[n, t, o] = sum_{k, i} x[n, t + k - p, i] w[k, i, o]``; x ``(N, *S, C_in)``, w ``(*K, C_in, C_out)``."""
    y = np.zeros(x.shape[:-1] + (w.shape[-1],))
    for k, window in _windows(x, w.shape[:-2]):
        y += window @ w[k].astype(np.float64)
    return y


def np_filter_gradient(x, dy, kernel_size):
    """``dw[k, i, o] = sum_{n, t} x[n, t + k - p, i] dy[n, t, o]``: the gradient of ``sum(np_conv_same * dy)``."""
    dw = np.zeros(tuple(kernel_size) + (x.shape[-1], dy.shape[-1]))
    for k, window in _windows(x, kernel_size):
        dw[k] = window.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1]).astype(np.float64)
    return dw

"""Gradients of a stride-1 ``"same"`` convolution, 2-D and 3-D, channels-last (``keras.ops`` only).

For ``y = conv(x, w)`` with ``y[n, t, o] = sum_{k, i} x[n, t + k - p, i] * w[k, i, o]`` (zero padding,
``p = (K - 1) / 2`` per axis, odd ``K``), and an upstream gradient ``dy = dL/dy``:

* the **filter gradient** is a cross-correlation of ``x`` with ``dy`` at the ``K`` lags around zero,
  ``dw[k, i, o] = sum_{n, t} x[n, t + k - p, i] * dy[n, t, o]``;
* the **input gradient** is the same convolution with the kernel flipped and its channel axes swapped,
  ``dx[n, s, i] = sum_{k, o} dy[n, s - k + p, o] * w[k, i, o]``.

Why the filter gradient is computed by FFT here: TensorFlow's oneDNN kernel for the filter gradient of
a large 3-D kernel is slow on CPUs without AVX-512. For LocalNet's 7x7x7, 16 -> 16 convolution at
2x64x64x60 it takes 2.9 s, 5x its forward pass, while 3x3x3 kernels are fast (see benchmarks/README.md).
The FFT computes the same sums in O(V log V) per channel pair instead of O(V K^3).

The correlation is done by overlap-save blocks: the output grid is cut into blocks of ``stride`` voxels
per axis; each block of ``dy`` and the matching window of ``x`` (``stride + K - 1`` voxels) are
Fourier-transformed at that length, the cross-power spectrum ``X conj(DY)`` is summed over batch and
blocks by one matrix product per frequency, and the ``K`` wanted lags are read off by a partial inverse
DFT (small matrices, not a full inverse FFT). Block lengths are chosen per axis to minimise the padded
length (products of 2, 3 and 5, at most ``max_block``), which keeps the per-frequency spectra small.
"""

import math

import numpy as np
from keras import ops

from tfreg.checks import check_positive_int

# FFT lengths are products of these primes (fast in every backend's FFT).
_FFT_PRIMES = (2, 3, 5)


def _is_smooth(n: int) -> bool:
    for f in _FFT_PRIMES:
        while n % f == 0:
            n //= f
    return n == 1


def _next_smooth(n: int) -> int:
    while not _is_smooth(n):
        n += 1
    return n


def block_length(size: int, kernel: int, max_block: int) -> int:
    """FFT block length along one axis: the smooth length whose blocks cover ``size`` with least padding.

    Args:
        size: voxels along the axis.
        kernel: odd kernel size along the axis.
        max_block: longest block considered (voxels); raised to the first smooth length above ``kernel``
            if smaller.

    Returns:
        ``L`` (int), a product of 2, 3 and 5 with ``kernel <= L <= max_block``: each block is transformed
        at length ``L`` and covers ``L - kernel + 1`` output voxels. ``L`` minimises the padded length
        ``ceil(size / (L - kernel + 1)) * L``; ties go to the shorter ``L``.
    """
    longest = max(max_block, _next_smooth(kernel + 1))
    candidates = [n for n in range(kernel, longest + 1) if _is_smooth(n)]
    return min(candidates, key=lambda n: (math.ceil(size / (n - kernel + 1)) * n, n))


def _blocks(v, pad_before, length, stride, counts):
    """``(N, *S, C)`` -> ``(N * prod(counts), C, *length)``: windows starting at ``b * stride - pad_before``."""
    nd = len(counts)
    sizes = v.shape[1:-1]
    pads = [[0, 0]]
    for a in range(nd):
        after = (counts[a] - 1) * stride[a] + length[a] - pad_before[a] - sizes[a]
        pads.append([pad_before[a], max(after, 0)])
    v = ops.pad(v, pads + [[0, 0]])
    pieces = []
    for idx in np.ndindex(*counts):
        window = tuple(slice(b * s, b * s + n) for b, s, n in zip(idx, stride, length))
        pieces.append(v[(slice(None),) + window + (slice(None),)])
    v = ops.stack(pieces, axis=1)
    v = ops.reshape(v, (-1,) + tuple(length) + (v.shape[-1],))
    return ops.transpose(v, [0, nd + 1] + list(range(1, nd + 1)))


def _spectrum(v, lengths):
    """Real ``(M, C, *l)`` zero-padded to ``lengths`` -> DFT ``(real, imag)``, each ``(F_last, *L[:-1], C, M)``.

    The last spatial axis is the half spectrum (``L[-1] // 2 + 1`` frequencies, first in the result).
    """
    nd = len(lengths)
    re, im = ops.rfft(v, fft_length=lengths[-1])
    pads = [[0, 0], [0, 0]] + [[0, lengths[a] - v.shape[2 + a]] for a in range(nd - 1)] + [[0, 0]]
    re, im = ops.pad(re, pads), ops.pad(im, pads)
    half_first = [0, 1, nd + 1] + list(range(2, nd + 1))
    re, im = ops.transpose(re, half_first), ops.transpose(im, half_first)
    re, im = ops.fft2((re, im)) if nd == 3 else ops.fft((re, im))
    freq_first = list(range(2, nd + 2)) + [1, 0]
    return ops.transpose(re, freq_first), ops.transpose(im, freq_first)


def _lag_basis(length: int, kernel: int, half: bool):
    """``(cos, sin)`` ``(kernel, F)`` float32 of ``2 pi f l / length`` for lags ``l = 0..kernel-1``, with
    the inverse DFT's ``1 / length`` and, for a half spectrum, the weight 2 on the frequencies that stand
    for a conjugate pair."""
    n_freq = length // 2 + 1 if half else length
    weight = np.full(n_freq, 1.0 / length)
    if half:
        weight[1:] = 2.0 / length
        if length % 2 == 0:
            weight[-1] = 1.0 / length
    angle = 2.0 * np.pi * np.outer(np.arange(kernel), np.arange(n_freq)) / length
    return (np.cos(angle) * weight).astype("float32"), (np.sin(angle) * weight).astype("float32")


def _check_pair(x, dy, kernel_size):
    nd = len(kernel_size)
    if nd not in (2, 3):
        raise ValueError(f"kernel_size must have 2 or 3 spatial sizes, got {tuple(kernel_size)}")
    for k in kernel_size:
        check_positive_int(k, "kernel_size")
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd along every axis ('same' padding), got {tuple(kernel_size)}")
    if len(x.shape) != nd + 2 or len(dy.shape) != nd + 2:
        raise ValueError(
            f"x and dy must be (batch, *spatial, channels) with {nd} spatial axes, got {tuple(x.shape)} and "
            f"{tuple(dy.shape)}"
        )
    if tuple(x.shape[1:-1]) != tuple(dy.shape[1:-1]) or None in tuple(x.shape[1:]) + tuple(dy.shape[1:]):
        raise ValueError(
            f"x and dy need the same static spatial size and static channels, got {tuple(x.shape)} and "
            f"{tuple(dy.shape)}"
        )


def conv_filter_gradient(x, dy, kernel_size, max_block: int = 48):
    """Filter gradient of a stride-1 ``"same"`` convolution, by overlap-save FFT (see the module docstring).

    Args:
        x: ``(N, *S, C_in)`` the convolution's input, 2 or 3 static spatial axes ``S``.
        dy: ``(N, *S, C_out)`` the gradient of the loss with respect to the convolution's output.
        kernel_size: odd ints, one per spatial axis (voxels).
        max_block: longest FFT block per axis (voxels); only speed depends on it.

    Returns:
        ``(*kernel_size, C_in, C_out)`` float32: ``dw[k, i, o] = sum_{n, t} x[n, t + k - p, i] dy[n, t, o]``
        with ``x`` zero outside ``S``, equal to the direct sum to float32 rounding (relative error about
        1e-6 of the largest entry).

    Raises:
        ValueError: even or non-positive kernel sizes, ranks that do not match, unequal or dynamic sizes.
    """
    kernel_size = tuple(kernel_size)
    _check_pair(x, dy, kernel_size)
    nd = len(kernel_size)
    sizes = tuple(x.shape[1:-1])
    lengths = [block_length(s, k, max_block) for s, k in zip(sizes, kernel_size)]
    stride = [n - k + 1 for n, k in zip(lengths, kernel_size)]
    counts = [math.ceil(s / b) for s, b in zip(sizes, stride)]
    xb = _blocks(ops.cast(x, "float32"), [k // 2 for k in kernel_size], lengths, stride, counts)
    db = _blocks(ops.cast(dy, "float32"), [0] * nd, stride, stride, counts)
    x_re, x_im = _spectrum(xb, lengths)  # (F.., C_in, M)
    y_re, y_im = _spectrum(db, lengths)  # (F.., C_out, M)
    y_re, y_im = ops.swapaxes(y_re, -1, -2), ops.swapaxes(y_im, -1, -2)  # (F.., M, C_out)
    # Cross-power X conj(DY), summed over batch and blocks: (F.., C_in, C_out)
    c_re = ops.matmul(x_re, y_re) + ops.matmul(x_im, y_im)
    c_im = ops.matmul(x_im, y_re) - ops.matmul(x_re, y_im)
    # Partial inverse DFT at lags 0..K-1: the full axes (layout positions 1..nd-1), then the half axis.
    axes = list("abc"[:nd])
    for a in range(nd - 1):
        cos, sin = _lag_basis(lengths[a], kernel_size[a], half=False)
        src = "".join(axes)
        axes[1 + a] = "xy"[a]
        eq = f"{src}io,{axes[1 + a]}{src[1 + a]}->{''.join(axes)}io"
        c_re, c_im = (
            ops.einsum(eq, c_re, cos) - ops.einsum(eq, c_im, sin),
            ops.einsum(eq, c_re, sin) + ops.einsum(eq, c_im, cos),
        )
    cos, sin = _lag_basis(lengths[-1], kernel_size[-1], half=True)
    src = "".join(axes)
    eq = f"{src}io,z{src[0]}->z{src[1:]}io"
    # Real part only: dw is real.
    dw = ops.einsum(eq, c_re, cos) - ops.einsum(eq, c_im, sin)  # (K_last, K_0, .., K_nd-2, C_in, C_out)
    return ops.transpose(dw, list(range(1, nd)) + [0, nd, nd + 1])


def conv_input_gradient(dy, kernel):
    """Input gradient of a stride-1 ``"same"`` convolution with an odd kernel.

    Args:
        dy: ``(N, *S, C_out)`` gradient with respect to the convolution's output.
        kernel: ``(*K, C_in, C_out)`` the convolution's kernel, odd ``K``.

    Returns:
        ``(N, *S, C_in)``: ``dx[n, s, i] = sum_{k, o} dy[n, s - k + p, o] w[k, i, o]``, computed as a
        ``"same"`` convolution of ``dy`` with the kernel flipped in space and its channel axes swapped.
    """
    nd = len(kernel.shape) - 2
    flipped = ops.flip(kernel, axis=tuple(range(nd)))
    flipped = ops.swapaxes(flipped, -1, -2)
    return ops.conv(dy, flipped, strides=1, padding="same")


__all__ = ["block_length", "conv_filter_gradient", "conv_input_gradient"]

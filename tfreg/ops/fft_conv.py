"""A stride-1 ``"same"`` convolution and its gradients by overlap-save FFT, 2-D and 3-D (``keras.ops`` only).

For ``y = conv(x, w)`` with ``y[n, t, o] = sum_{k, i} x[n, t + k - p, i] * w[k, i, o]`` (zero padding,
``p = (K - 1) / 2`` per axis, odd ``K``, channels-last), and an upstream gradient ``dy = dL/dy``:

* the **filter gradient** is a cross-correlation of ``x`` with ``dy`` at the ``K`` lags around zero,
  ``dw[k, i, o] = sum_{n, t} x[n, t + k - p, i] * dy[n, t, o]``;
* the **input gradient** is the same convolution with the kernel flipped and its channel axes swapped,
  ``dx[n, s, i] = sum_{k, o} dy[n, s - k + p, o] * w[k, i, o]``.

Why by FFT: TensorFlow's CPU kernels for large 3-D kernels are slow where oneDNN has no AVX-512. For
LocalNet's 7x7x7, 16 -> 16 convolution at 2x64x64x60 the filter gradient takes 2.9 s, 5x the forward
pass, while 3x3x3 kernels are fast (benchmarks/README.md). By FFT the work is O(V log L) per channel for
the transforms and O(V C_in C_out) for mixing the channels, instead of O(V K^3 C_in C_out) (``V`` voxels,
``L`` the block length).

All three use **overlap-save blocks**: the output grid is cut into blocks of ``stride`` voxels per axis;
the window of the input that a block reads (``stride + K - 1`` voxels, starting ``p`` before it) is
Fourier-transformed at that length ``L``. A block's correlation with the kernel is then exact (no
wrap-around reaches the ``stride`` kept outputs). Channels are mixed by one small matrix product per
frequency, over all batch items and blocks at once. The filter gradient sums the cross-power spectrum
``X conj(DY)`` over batch and blocks and reads off only the ``K`` wanted lags by a partial inverse DFT.
Block lengths are chosen per axis to minimise the padded length (products of 2, 3 and 5, at most
``max_block``), which keeps the per-frequency kernel spectra small (``C_in * C_out * L^3`` numbers).
"""

import math

import numpy as np
from keras import ops

from tfreg.checks import check_positive_int

# FFT lengths are products of these primes (fast in every backend's FFT).
_FFT_PRIMES = (2, 3, 5)
# Default longest FFT block per axis (voxels): 40-48 measured fastest for 64-112 voxel axes and 7x7x7
# kernels on the CPU; longer blocks make the per-frequency kernel spectra large.
MAX_BLOCK = 48


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


def _plan(sizes, kernel_size, max_block):
    """Per axis: FFT block lengths, the output voxels per block (``stride``) and the number of blocks."""
    lengths = [block_length(s, k, max_block) for s, k in zip(sizes, kernel_size)]
    stride = [n - k + 1 for n, k in zip(lengths, kernel_size)]
    counts = [math.ceil(s / b) for s, b in zip(sizes, stride)]
    return lengths, stride, counts


def _dft_basis(length: int, kernel: int, n_freq: int):
    """``(cos, sin)`` ``(n_freq, kernel)`` float32 of ``-2 pi f k / length``: the DFT of a ``kernel``-tap filter."""
    angle = -2.0 * np.pi * np.outer(np.arange(n_freq), np.arange(kernel)) / length
    return np.cos(angle).astype("float32"), np.sin(angle).astype("float32")


def _kernel_spectrum(kernel, lengths):
    """DFT of ``kernel`` ``(*K, C_in, C_out)`` zero-padded to ``lengths``, one axis at a time (K taps each).

    Returns ``(real, imag)``, each ``(F_last, *L[:-1], C_in, C_out)``: the layout of :func:`_spectrum`.
    """
    nd = len(lengths)
    taps = tuple(kernel.shape[:nd])
    axes = "abc"[:nd]
    cos, sin = _dft_basis(lengths[-1], taps[-1], lengths[-1] // 2 + 1)
    eq = f"{axes}io,z{axes[-1]}->z{axes[:-1]}io"
    re, im = ops.einsum(eq, kernel, cos), ops.einsum(eq, kernel, sin)
    src = "z" + axes[:-1]
    for a in range(nd - 1):
        cos, sin = _dft_basis(lengths[a], taps[a], lengths[a])
        dst = src.replace(axes[a], "xy"[a])
        eq = f"{src}io,{'xy'[a]}{axes[a]}->{dst}io"
        re, im = (
            ops.einsum(eq, re, cos) - ops.einsum(eq, im, sin),
            ops.einsum(eq, re, sin) + ops.einsum(eq, im, cos),
        )
        src = dst
    return re, im


def _inverse_blocks(re, im, lengths, stride, counts, sizes):
    """Block spectra ``(F_last, *L[:-1], M, C)`` -> ``(N, *sizes, C)``: inverse DFT, keep ``stride`` voxels
    of each block, put the blocks side by side and cut to ``sizes``."""
    nd = len(lengths)
    channels = re.shape[-1]
    to_channels_first = [nd, nd + 1] + list(range(nd))  # (M, C, F_last, *L[:-1])
    re, im = ops.transpose(re, to_channels_first), ops.transpose(im, to_channels_first)
    if nd == 3:
        re, im = ops.ifft2((re, im))
    else:
        # No 1-D inverse FFT in keras.ops: ifft(z) = conj(fft(conj(z))) / L.
        re, im = ops.fft((re, -im))
        re, im = re / lengths[0], -im / lengths[0]
    keep = (slice(None), slice(None), slice(None)) + tuple(slice(0, b) for b in stride[:-1])
    re, im = re[keep], im[keep]
    half_last = [0, 1] + list(range(3, nd + 2)) + [2]
    re, im = ops.transpose(re, half_last), ops.transpose(im, half_last)
    y = ops.irfft((re, im), fft_length=lengths[-1])[..., : stride[-1]]  # (M, C, *stride)
    y = ops.reshape(y, (-1, *counts, channels, *stride))
    # (N, n_0, .., C, s_0, ..) -> (N, n_0, s_0, n_1, s_1, .., C)
    order = [0] + [i for a in range(nd) for i in (1 + a, 2 + nd + a)] + [1 + nd]
    y = ops.reshape(ops.transpose(y, order), (-1, *[n * b for n, b in zip(counts, stride)], channels))
    return y[(slice(None),) + tuple(slice(0, s) for s in sizes)]


def _window_spectrum(v, kernel_size, lengths, stride, counts):
    """Spectra ``(F_last, *L[:-1], C, M)`` of the windows of ``v`` that the output blocks read."""
    return _spectrum(_blocks(ops.cast(v, "float32"), [k // 2 for k in kernel_size], lengths, stride, counts), lengths)


def _correlate(spectrum, kernel, lengths, stride, counts, sizes):
    """The convolution of the windows whose ``spectrum`` is given: ``(N, *sizes, C_out)`` float32."""
    x_re, x_im = (ops.swapaxes(a, -1, -2) for a in spectrum)  # (F.., M, C_in)
    w_re, w_im = _kernel_spectrum(ops.cast(kernel, "float32"), lengths)  # (F.., C_in, C_out)
    # Correlation: Y = X conj(W).
    y_re = ops.matmul(x_re, w_re) + ops.matmul(x_im, w_im)
    y_im = ops.matmul(x_im, w_re) - ops.matmul(x_re, w_im)
    return _inverse_blocks(y_re, y_im, lengths, stride, counts, sizes)


def _check_kernel_size(kernel_size):
    nd = len(kernel_size)
    if nd not in (2, 3):
        raise ValueError(f"kernel_size must have 2 or 3 spatial sizes, got {tuple(kernel_size)}")
    for k in kernel_size:
        check_positive_int(k, "kernel_size")
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd along every axis ('same' padding), got {tuple(kernel_size)}")


def _check_pair(x, dy, kernel_size):
    nd = len(kernel_size)
    _check_kernel_size(kernel_size)
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


def conv_filter_gradient(x, dy, kernel_size, max_block: int = MAX_BLOCK):
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
    lengths, stride, counts = _plan(tuple(x.shape[1:-1]), kernel_size, max_block)
    x_spectrum = _window_spectrum(x, kernel_size, lengths, stride, counts)
    return _filter_gradient(x_spectrum, dy, kernel_size, lengths, stride, counts)


def _filter_gradient(x_spectrum, dy, kernel_size, lengths, stride, counts):
    """:func:`conv_filter_gradient` from the spectra of ``x``'s windows (kept from a forward pass)."""
    nd = len(kernel_size)
    db = _blocks(ops.cast(dy, "float32"), [0] * nd, stride, stride, counts)
    x_re, x_im = x_spectrum  # (F.., C_in, M)
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


def conv_fft(x, kernel, max_block: int = MAX_BLOCK):
    """``ops.conv(x, kernel, padding="same")`` (stride 1, odd kernel): output and both gradients by FFT.

    The spectra of the input's windows are computed once and serve the filter gradient too.

    Args:
        x: ``(N, *S, C_in)``, 2 or 3 static spatial axes ``S``, static channels.
        kernel: ``(*K, C_in, C_out)`` tensor (not a variable: read it first), odd ``K`` (voxels).
        max_block: longest FFT block per axis (voxels); only speed depends on it.

    Returns:
        ``(N, *S, C_out)`` in ``x``'s dtype (computed in float32), equal to the direct convolution to
        float32 rounding (relative error about 1e-6 of the largest output); its gradients likewise.

    Raises:
        ValueError: even kernel sizes, ranks or channels that do not match, dynamic sizes.
    """
    kernel_size = tuple(kernel.shape[:-2])
    lengths, stride, counts, sizes = _checked_plan(x, kernel, max_block)

    @ops.custom_gradient
    def conv(x, kernel):
        x_spectrum = _window_spectrum(x, kernel_size, lengths, stride, counts)
        y = ops.cast(_correlate(x_spectrum, kernel, lengths, stride, counts, sizes), x.dtype)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            dy_spectrum = _window_spectrum(upstream, kernel_size, lengths, stride, counts)
            dx = _correlate(dy_spectrum, flipped_kernel(kernel), lengths, stride, counts, sizes)
            dw = _filter_gradient(x_spectrum, upstream, kernel_size, lengths, stride, counts)
            return ops.cast(dx, x.dtype), ops.cast(dw, kernel.dtype)

        return y, grad

    return conv(x, kernel)


def conv_with_fft_filter_gradient(x, kernel, max_block: int = MAX_BLOCK):
    """``ops.conv(x, kernel, padding="same")`` (stride 1, odd kernel), its filter gradient by FFT.

    The output and the input gradient are the backend's direct convolutions. Arguments, result and errors
    as :func:`conv_fft`.
    """
    kernel_size = tuple(kernel.shape[:-2])
    lengths, stride, counts, _ = _checked_plan(x, kernel, max_block)

    @ops.custom_gradient
    def conv(x, kernel):
        y = ops.conv(x, kernel, strides=1, padding="same")

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            x_spectrum = _window_spectrum(x, kernel_size, lengths, stride, counts)
            dw = _filter_gradient(x_spectrum, upstream, kernel_size, lengths, stride, counts)
            return conv_input_gradient(upstream, kernel), ops.cast(dw, kernel.dtype)

        return y, grad

    return conv(x, kernel)


def _checked_plan(x, kernel, max_block):
    kernel_size = tuple(kernel.shape[:-2])
    _check_kernel_size(kernel_size)
    nd = len(kernel_size)
    if len(x.shape) != nd + 2 or None in tuple(x.shape[1:]) or x.shape[-1] != kernel.shape[-2]:
        raise ValueError(
            f"x must be (batch, *spatial, channels) with {nd} static spatial axes and {kernel.shape[-2]} "
            f"channels for a kernel of shape {tuple(kernel.shape)}, got {tuple(x.shape)}"
        )
    sizes = tuple(x.shape[1:-1])
    return (*_plan(sizes, kernel_size, max_block), sizes)


def flipped_kernel(kernel):
    """``(*K, C_in, C_out)`` -> ``(*K, C_out, C_in)`` flipped in space: the input gradient's kernel."""
    nd = len(kernel.shape) - 2
    return ops.swapaxes(ops.flip(kernel, axis=tuple(range(nd))), -1, -2)


def conv_input_gradient(dy, kernel):
    """Input gradient of a stride-1 ``"same"`` convolution with an odd kernel.

    Args:
        dy: ``(N, *S, C_out)`` gradient with respect to the convolution's output.
        kernel: ``(*K, C_in, C_out)`` the convolution's kernel, odd ``K``.

    Returns:
        ``(N, *S, C_in)``: ``dx[n, s, i] = sum_{k, o} dy[n, s - k + p, o] w[k, i, o]``, computed as a
        ``"same"`` convolution of ``dy`` with the kernel flipped in space and its channel axes swapped.
    """
    return ops.conv(dy, flipped_kernel(kernel), strides=1, padding="same")


__all__ = [
    "MAX_BLOCK",
    "block_length",
    "conv_fft",
    "conv_filter_gradient",
    "conv_input_gradient",
    "conv_with_fft_filter_gradient",
    "flipped_kernel",
]

"""Global mutual information with a Parzen-window (soft) joint histogram, memory-bounded.

Registered (DeepReg's name): ``gmi`` -> :class:`GlobalMutualInformationLoss` (negated score).

The formula is DeepReg's (see :func:`global_mutual_information`). Written densely, it holds a
``(voxels, bins)`` weight matrix per image and several more for back-propagation: at 160x192x224 and 23
bins that is 604 MiB per matrix, about 4 GiB at the peak of a forward + backward pass. Here voxels are
processed in chunks: the forward pass accumulates the ``(B, bins, bins)`` joint histogram and the
marginals chunk by chunk, and a custom gradient recomputes each chunk's weights in the backward pass and
applies the analytic per-voxel derivative, so no per-voxel intermediate is kept between the passes.
Peak memory is a few ``(B, chunk, bins)`` blocks plus the two ``(B, voxels)`` gradients (about 120 MiB
at 160x192x224). Values and gradients equal the dense formula's; the chunked sums are in fact the more
accurate in float32 (at 160x192x224: 1e-6 relative to a float64 evaluation, the dense float32 graph
1e-3).

Second derivatives are not available (the backward pass is not itself differentiable).
"""

import math

import numpy as np
from keras import ops

from tfreg.checks import check_int, check_number, check_positive_int
from tfreg.losses.base import EPS, ImageLoss, NegatedLossMixin
from tfreg.registry import REGISTRY

#: Voxels per chunk: ``(B, 16384, 23)`` float32 blocks are 1.5 MB per batch element. Measured at
#: 160x192x224 (one image, forward + gradient, CPU): +118 MiB peak RSS in a tf.function (+4 GiB dense),
#: where TensorFlow runs up to 10 loop iterations at once; larger chunks add ~3.5 KiB per chunk voxel.
DEFAULT_CHUNK_SIZE = 16384


def _parzen_weights(values, centres, preterm):
    """Normalised Parzen weights ``w[..., k] = exp(-preterm (v - c_k)^2) / sum_j exp(-preterm (v - c_j)^2)``.

    Written as a softmax, which subtracts the largest exponent first: the same value, but finite even
    when every bin is many sigmas away (small ``sigma_ratio``), where the plain ratio is 0 / 0.

    Args:
        values: ``(B, n)`` intensities in ``[0, 1]``.

    Returns:
        ``(B, n, bins)``.
    """
    return ops.softmax(-preterm * ops.square(ops.expand_dims(values, -1) - centres), axis=-1)


def _softmax_input_vjp(values, weights, grad_weights, centres, preterm):
    """``dL/dv`` given ``dL/dw`` for ``w = softmax(-preterm (v - c)^2)``, per voxel.

    With ``d_k = dlogit_k/dv = -2 preterm (v - c_k)``: ``dw_k/dv = w_k (d_k - sum_j w_j d_j)``, hence
    ``dL/dv = sum_k g_k w_k d_k - (sum_k g_k w_k)(sum_k w_k d_k)``.

    Args:
        values: ``(B, n)``; weights, grad_weights: ``(B, n, bins)``.

    Returns:
        ``(B, n)``.
    """
    d = -2.0 * preterm * (ops.expand_dims(values, -1) - centres)
    gw = grad_weights * weights
    return ops.sum(gw * d, axis=-1) - ops.sum(gw, axis=-1) * ops.sum(weights * d, axis=-1)


def _mi_and_partials(pab, pa, pb, eps):
    """MI per sample and its partial derivatives with respect to ``pab``, ``pa`` and ``pb``.

    ``MI = sum_ab pab log(r_ab + eps)`` with ``r = (pab + eps) / (q + eps)``, ``q_ab = pa_a pb_b``. Then
    ``dMI/dpab = log(r + eps) + pab / ((r + eps)(q + eps))`` (through ``pab`` directly),
    ``dMI/dq = -pab r / ((r + eps)(q + eps))``, ``dMI/dpa_a = sum_b dMI/dq_ab pb_b`` and
    ``dMI/dpb_b = sum_a dMI/dq_ab pa_a``.
    """
    q = ops.expand_dims(pa, 2) * ops.expand_dims(pb, 1)
    r = (pab + eps) / (q + eps)
    log_term = ops.log(r + eps)
    mi = ops.sum(pab * log_term, axis=(1, 2))
    s = pab / ((r + eps) * (q + eps))
    d_pab = log_term + s
    d_q = -s * r
    d_pa = ops.sum(d_q * ops.expand_dims(pb, 1), axis=2)
    d_pb = ops.sum(d_q * ops.expand_dims(pa, 2), axis=1)
    return mi, d_pab, d_pa, d_pb


def global_mutual_information(
    y_true,
    y_pred,
    num_bins: int = 23,
    sigma_ratio: float = 0.5,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
):
    """DeepReg's Parzen-window global mutual information per sample, computed in voxel chunks.

    Both images are clipped to ``[0, 1]`` and flattened over every non-batch axis (channels included).
    With bin centres ``c = linspace(0, 1, num_bins)``, ``sigma = sigma_ratio * mean(diff(c))`` and per
    voxel ``w_k(v) = exp(-(v - c_k)^2 / (2 sigma^2)) / sum_j exp(-(v - c_j)^2 / (2 sigma^2))``::

        pa = mean_v w(t_v),  pb = mean_v w(p_v),  pab = mean_v w(t_v) w(p_v)^T   (bins x bins)
        MI = sum_ab pab log((pab + EPS) / (pa pb^T + EPS) + EPS)

    in nats. Memory is bounded by ``chunk_size`` voxels at a time in both the forward and the backward
    pass (a custom gradient recomputes the weights); see the module docstring.

    Args:
        y_true, y_pred: same shape ``(B, ...)``, intensities expected in ``[0, 1]``.
        num_bins: number of bins, an integer >= 2.
        sigma_ratio: Parzen width relative to the bin spacing, > 0.
        chunk_size: voxels per chunk, an integer >= 1.

    Returns:
        ``(B,)`` float32 mutual information.
    """
    _check_args(num_bins, sigma_ratio, chunk_size)
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    static = y_true.shape[1:]
    if all(s is not None for s in static):
        n = math.prod(static)
        y_true, y_pred = ops.reshape(y_true, (-1, n)), ops.reshape(y_pred, (-1, n))
        chunk, num_chunks = plan_chunks(n, int(chunk_size))
    else:
        # Unknown spatial size (graph tracing only): one chunk of dynamic length, exact but not bounded.
        batch = ops.shape(y_true)[0]
        y_true, y_pred = ops.reshape(y_true, (batch, -1)), ops.reshape(y_pred, (batch, -1))
        n, chunk, num_chunks = None, None, 1
    centres_np = np.linspace(0.0, 1.0, num_bins)
    sigma = float(np.mean(np.diff(centres_np))) * float(sigma_ratio)
    preterm = 1.0 / (2.0 * sigma**2)
    centres = ops.convert_to_tensor(centres_np.astype(np.float32))
    return _chunked_mi(y_true, y_pred, centres, preterm, chunk, num_chunks, n)


def plan_chunks(n: int, chunk_size: int):
    """``(chunk, num_chunks)`` covering ``n`` voxels with chunks of at most ``chunk_size``.

    Prefers the largest divisor of ``n`` not above ``chunk_size`` (image sizes are usually rich in small
    factors: 160x192x224 = 105 x 65536), so the flattened image reshapes to ``(B, num_chunks, chunk)``
    without a copy, padding or a mask. When that divisor is below ``chunk_size / 4`` (e.g. a prime
    ``n``), chunks of ``chunk_size`` are used and the last one is padded (``num_chunks * chunk > n``).
    """
    if n <= chunk_size:
        return n, 1
    best = 1
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            for c in (d, n // d):
                if best < c <= chunk_size:
                    best = c
    if 4 * best >= chunk_size:
        return best, n // best
    return chunk_size, -(-n // chunk_size)


def split_chunks(x, n, chunk, num_chunks):
    """``(B, n)`` -> ``(B, num_chunks, chunk)``: a free reshape unless the last chunk is zero-padded."""
    if num_chunks == 1:
        return ops.expand_dims(x, 1)
    if num_chunks * chunk != n:
        x = ops.pad(x, [[0, 0], [0, num_chunks * chunk - n]])
    return ops.reshape(x, (-1, num_chunks, chunk))


def chunk_at(x3, i, num_chunks):
    """Chunk ``i`` ``(B, chunk)`` of a :func:`split_chunks` tensor (``i`` may be a traced index)."""
    return ops.take(x3, i, axis=1) if num_chunks > 1 else x3[:, 0]


def map_chunks(chunk_fn, n, chunk, num_chunks):
    """Run ``chunk_fn(i) -> ((B, chunk), ...)`` over every chunk and join each output back to ``(B, n)``.

    Used for the chunk-recomputing gradients: only one chunk's intermediates are alive at a time.
    """
    if num_chunks == 1:
        return chunk_fn(0)

    def join(stacked):
        """``(num_chunks, B, chunk)`` -> ``(B, n)``; the transpose is free for a batch of 1."""
        flat = ops.reshape(ops.transpose(stacked, (1, 0, 2)), (-1, num_chunks * chunk))
        return flat[:, :n] if num_chunks * chunk != n else flat

    return tuple(join(part) for part in ops.map(chunk_fn, ops.arange(num_chunks)))


def _check_args(num_bins, sigma_ratio, chunk_size):
    check_int(num_bins, "num_bins", minimum=2)
    check_number(sigma_ratio, "sigma_ratio", exclusive_minimum=True)
    check_positive_int(chunk_size, "chunk_size (voxels)")


def _chunked_mi(t_flat, p_flat, centres, preterm, chunk, num_chunks, n):
    """MI ``(B,)`` of flattened ``(B, n)`` images with a chunk-recomputing custom gradient.

    Nothing of size ``n`` is allocated in the forward pass (chunks are clipped as they are read); the
    backward pass allocates the two ``(B, n)`` gradients and the per-chunk pieces they are stacked from.
    """
    padded = num_chunks * (chunk or 0) != (n or 0)

    def read(x3, i):
        """Raw values of chunk ``i`` ``(B, chunk)``, their clipped copy and Parzen weights ``(B, chunk, bins)``."""
        raw = chunk_at(x3, i, num_chunks)
        values = ops.clip(raw, 0.0, 1.0)
        w = _parzen_weights(values, centres, preterm)
        if padded:
            # zero weights for the padding, so it adds nothing to the histograms
            valid = ops.cast(i * chunk + ops.arange(chunk) < n, "float32")
            w = w * ops.reshape(valid, (1, chunk, 1))
        return raw, values, w

    @ops.custom_gradient
    def mi_fn(t_raw, p_raw):
        # stop_gradient: TensorFlow's eager tape otherwise records every op of the forward loop (keeping
        # all chunks' weights alive for a backward pass that never uses them), as if there were no
        # custom gradient. Detached inputs make the loop invisible to the tape; grad() below is the
        # gradient.
        t3, p3 = (split_chunks(ops.stop_gradient(x), n, chunk, num_chunks) for x in (t_raw, p_raw))
        count = float(n) if n is not None else ops.cast(ops.shape(t_raw)[1], "float32")

        def histograms(i):
            _, _, wt = read(t3, i)
            _, _, wp = read(p3, i)
            return ops.matmul(ops.transpose(wt, (0, 2, 1)), wp), ops.sum(wt, axis=1), ops.sum(wp, axis=1)

        def accumulate(i, carry):
            return tuple(c + h for c, h in zip(carry, histograms(i)))

        # Start from chunk 0 (rather than zeros) so the batch size never has to be known statically.
        carry = histograms(0)
        if num_chunks > 1:
            carry = ops.fori_loop(1, num_chunks, accumulate, carry)
        pab, pa, pb = (c / count for c in carry)
        mi, d_pab, d_pa, d_pb = _mi_and_partials(pab, pa, pb, EPS)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            up = ops.reshape(ops.cast(upstream, "float32"), (-1, 1, 1))
            # dMI/dw of one voxel depends only on its own weights and these (B, bins, bins) terms.
            g_pab = d_pab * up / count
            g_pa = ops.expand_dims(d_pa, 1) * up / count
            g_pb = ops.expand_dims(d_pb, 1) * up / count
            g_pab_t = ops.transpose(g_pab, (0, 2, 1))

            def inside(raw):
                # ops.clip passes the gradient where 0 <= v <= 1 (TensorFlow's clip_by_value convention).
                return ops.cast(ops.logical_and(raw >= 0.0, raw <= 1.0), "float32")

            def chunk_grad(i):
                t_raw_i, t_val, wt = read(t3, i)
                p_raw_i, p_val, wp = read(p3, i)
                gwt = ops.matmul(wp, g_pab_t) + g_pa  # sum_b dMI/dpab[a, b] wp[b] + dMI/dpa[a]
                gwp = ops.matmul(wt, g_pab) + g_pb
                return (
                    _softmax_input_vjp(t_val, wt, gwt, centres, preterm) * inside(t_raw_i),
                    _softmax_input_vjp(p_val, wp, gwp, centres, preterm) * inside(p_raw_i),
                )

            return map_chunks(chunk_grad, n, chunk, num_chunks)

        return mi, grad

    return mi_fn(t_flat, p_flat)


class GlobalMutualInformation(ImageLoss):
    """Global mutual information score (DeepReg's ``GlobalMutualInformation``), memory-bounded.

    See :func:`global_mutual_information` for the formula (Parzen-window joint histogram of the two
    images clipped to ``[0, 1]``, flattened over all non-batch axes, channels included, as DeepReg).
    ``MI(a, a)`` is the entropy of ``a``'s soft histogram; independent images give ~0.

    Args:
        num_bins: number of bins, an integer >= 2 (default 23).
        sigma_ratio: Parzen sigma relative to the bin spacing, > 0 (default 0.5).
        chunk_size: voxels per chunk (tfreg addition; bounds memory, does not change the value).
        **kwargs: spatial_dims, name, reduction, dtype, see :class:`~tfreg.losses.base.ImageLoss`.

    ``call`` inputs: ``(B, *S)`` or ``(B, *S, C)``; returns ``(B,)``.
    """

    def __init__(
        self,
        num_bins: int = 23,
        sigma_ratio: float = 0.5,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_args(num_bins, sigma_ratio, chunk_size)
        self.num_bins = int(num_bins)
        self.sigma_ratio = float(sigma_ratio)
        self.chunk_size = int(chunk_size)

    def compute_per_sample(self, y_true, y_pred):
        """Mutual information per sample, ``(B,)``."""
        return global_mutual_information(
            y_true, y_pred, num_bins=self.num_bins, sigma_ratio=self.sigma_ratio, chunk_size=self.chunk_size
        )

    config_keys = ("num_bins", "sigma_ratio", "chunk_size")


@REGISTRY.register_loss(name="gmi")
class GlobalMutualInformationLoss(NegatedLossMixin, GlobalMutualInformation):
    """``-MI`` per sample (registered as ``gmi``); see :class:`GlobalMutualInformation`."""


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "global_mutual_information",
    "plan_chunks",
    "split_chunks",
    "chunk_at",
    "map_chunks",
    "GlobalMutualInformation",
    "GlobalMutualInformationLoss",
]

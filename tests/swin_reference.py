"""Plain NumPy references for shifted-window attention, written from the Swin paper's description with
explicit loops over windows, tokens and heads (no reshape tricks shared with tfreg.ops.windows)."""

import itertools
import math

import numpy as np


def layer_norm(x, gamma=None, beta=None, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def window_tokens(padded, window):
    """For every window (row-major over the window grid), the list of its token coordinates (row-major)."""
    counts = [p // w for p, w in zip(padded, window)]
    out = []
    for origin in itertools.product(*[range(c) for c in counts]):
        out.append(
            [
                tuple(o * w + d for o, w, d in zip(origin, window, delta))
                for delta in itertools.product(*[range(w) for w in window])
            ]
        )
    return out


def offset_rows(window):
    """``{offset tuple: table row}``, offsets enumerated in row-major order over ``[-(w-1), w-1]`` per axis."""
    ranges = [range(-(w - 1), w) for w in window]
    return {offset: row for row, offset in enumerate(itertools.product(*ranges))}


def attention(tokens, w_qkv, b_qkv, w_proj, b_proj, table, window, heads, allowed=None):
    """Multi-head attention of one window's tokens ``(N, C)`` with the relative position bias; ``allowed``
    ``(N, N)`` bool (None: all pairs)."""
    n, c = tokens.shape
    d = c // heads
    coords = list(itertools.product(*[range(w) for w in window]))
    rows = offset_rows(window)
    qkv = tokens @ w_qkv + (0 if b_qkv is None else b_qkv)
    out = np.zeros((n, c))
    for head in range(heads):
        q = qkv[:, head * d : (head + 1) * d] / math.sqrt(d)
        k = qkv[:, c + head * d : c + (head + 1) * d]
        v = qkv[:, 2 * c + head * d : 2 * c + (head + 1) * d]
        logits = q @ k.T
        for i in range(n):
            for j in range(n):
                offset = tuple(a - b for a, b in zip(coords[i], coords[j]))
                logits[i, j] += table[rows[offset], head]
                if allowed is not None and not allowed[i, j]:
                    logits[i, j] += -100.0
        out[:, head * d : (head + 1) * d] = softmax(logits) @ v
    return out @ w_proj + b_proj


def swin_block(x, weights, window, shift, heads):
    """One Swin block on ``x`` ``(*S, C)`` (one sample). ``window``/``shift`` already clipped to the grid.

    The shifted windows are built by gathering: window position ``p`` of the rolled grid holds the token
    of original position ``(p + shift) mod P``. Two tokens may attend to each other when the roll did not
    wrap them apart (their original offset equals their rolled offset on every axis) and the key is inside
    the image (not padding).
    """
    size = x.shape[:-1]
    padded = tuple(-(-s // w) * w for s, w in zip(size, window))
    h = layer_norm(x, weights["norm1_gamma"], weights["norm1_beta"])
    hp = np.zeros(padded + (x.shape[-1],))
    hp[tuple(slice(0, s) for s in size)] = h
    out = np.zeros_like(hp)
    for positions in window_tokens(padded, window):
        originals = [tuple((p + s) % P for p, s, P in zip(pos, shift, padded)) for pos in positions]
        n = len(positions)
        allowed = np.zeros((n, n), bool)
        for i in range(n):
            for j in range(n):
                same = all(
                    (oj - oi) == (pj - pi)
                    for oi, oj, pi, pj in zip(originals[i], originals[j], positions[i], positions[j])
                )
                inside = all(o < s for o, s in zip(originals[j], size))
                allowed[i, j] = same and inside
        tokens = np.stack([hp[o] for o in originals])
        y = attention(
            tokens,
            weights["w_qkv"],
            weights.get("b_qkv"),
            weights["w_proj"],
            weights["b_proj"],
            weights["table"],
            window,
            heads,
            allowed,
        )
        for o, value in zip(originals, y):
            out[o] = value
    x = x + out[tuple(slice(0, s) for s in size)]
    m = layer_norm(x, weights["norm2_gamma"], weights["norm2_beta"])
    m = gelu(m @ weights["w_fc1"] + weights["b_fc1"]) @ weights["w_fc2"] + weights["b_fc2"]
    return x + m


def block_weights(block):
    """The weights of a built :class:`tfreg.layers.window_attention.SwinBlock` as the reference's dict."""
    a = block.attention
    w = {
        "norm1_gamma": np.asarray(block.norm1.gamma),
        "norm1_beta": np.asarray(block.norm1.beta),
        "norm2_gamma": np.asarray(block.norm2.gamma),
        "norm2_beta": np.asarray(block.norm2.beta),
        "w_qkv": np.asarray(a.qkv.kernel),
        "w_proj": np.asarray(a.proj.kernel),
        "b_proj": np.asarray(a.proj.bias),
        "table": np.asarray(a.bias_table),
        "w_fc1": np.asarray(block.fc1.kernel),
        "b_fc1": np.asarray(block.fc1.bias),
        "w_fc2": np.asarray(block.fc2.kernel),
        "b_fc2": np.asarray(block.fc2.bias),
    }
    if a.qkv.use_bias:
        w["b_qkv"] = np.asarray(a.qkv.bias)
    return {k: v.astype(np.float64) for k, v in w.items()}


def randomize(layer, seed=0, scale=0.3):
    """Give every weight of a built layer random values (norms and biases too), so that tests see them."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(rng.normal(0.0, scale, v.shape).astype(np.float32) + (1.0 if "gamma" in v.path else 0.0))

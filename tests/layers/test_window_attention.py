"""WindowAttention and SwinBlock against the loop-based NumPy reference (tests/swin_reference.py)."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.swin_reference import attention, block_weights, randomize, swin_block
from tfreg.layers.window_attention import SwinBlock, WindowAttention
from tfreg.ops.windows import window_geometry


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("qkv_bias", [True, False])
def test_window_attention_matches_numpy_per_head_with_bias_and_mask(qkv_bias):
    window, heads, channels = (2, 3, 2), 2, 8
    n = int(np.prod(window))
    layer = WindowAttention(heads, window, qkv_bias=qkv_bias)
    layer.build((None, n, channels))
    randomize(layer, seed=1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, n, channels)).astype(np.float32)  # batch 2 x 2 windows
    allowed = rng.random((2, n, n)) > 0.3
    allowed[:, np.arange(n), np.arange(n)] = True
    mask = np.where(allowed, 0.0, -100.0).astype(np.float32)
    y = ops.convert_to_numpy(layer(ops.convert_to_tensor(x), window_mask=ops.convert_to_tensor(mask)))
    w = {
        k: np.asarray(v, np.float64)
        for k, v in dict(q=layer.qkv.kernel, p=layer.proj.kernel, pb=layer.proj.bias, t=layer.bias_table).items()
    }
    qb = np.asarray(layer.qkv.bias, np.float64) if qkv_bias else None
    for i in range(4):
        expected = attention(
            x[i].astype(np.float64), w["q"], qb, w["p"], w["pb"], w["t"], window, heads, allowed[i % 2]
        )
        np.testing.assert_allclose(y[i], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "size, window, shifted",
    [
        ((6, 6), (3, 3), False),
        ((6, 6), (3, 3), True),
        ((5, 7), (3, 4), True),  # padded and shifted
        ((4, 6, 5), (2, 3, 3), True),  # 3-D, padded on the last axis
        ((3, 6, 4), (5, 3, 2), True),  # window clipped to the grid on the first axis
    ],
)
def test_swin_block_matches_numpy(size, window, shifted):
    heads, channels = 2, 4
    block = SwinBlock(heads, window, shifted=shifted, mlp_ratio=2.0)
    block.build((None, *size, channels))
    randomize(block, seed=3)
    x = np.random.default_rng(4).normal(size=(2, *size, channels)).astype(np.float32)
    y = ops.convert_to_numpy(block(ops.convert_to_tensor(x)))
    shift = tuple(w // 2 for w in window) if shifted else (0,) * len(size)
    win, sh, _ = window_geometry(size, window, shift)
    weights = block_weights(block)
    for b in range(2):
        np.testing.assert_allclose(
            y[b], swin_block(x[b].astype(np.float64), weights, win, sh, heads), rtol=2e-4, atol=2e-4
        )


def test_swin_block_output_on_the_image_does_not_depend_on_the_padding():
    # 5 tokens with windows of 3: padded to 6; the pad token must not change the 5 real outputs
    block = SwinBlock(1, (3,), shifted=True)
    with pytest.raises(ValueError, match="2 or 3 known spatial sizes"):
        block.build((None, 5, 4))
    block2 = SwinBlock(1, (3, 1), shifted=True)
    block2.build((None, 5, 1, 4))
    randomize(block2, seed=5)
    x = np.random.default_rng(6).normal(size=(1, 5, 1, 4)).astype(np.float32)
    y = ops.convert_to_numpy(block2(ops.convert_to_tensor(x)))
    # the same tokens on a grid of 6 whose last token is far out: without masking it would be attended
    block3 = SwinBlock(1, (3, 1), shifted=True)
    block3.build((None, 6, 1, 4))
    block3.set_weights(block2.get_weights())
    x6 = np.concatenate([x, np.full((1, 1, 1, 4), 50.0, np.float32)], axis=1)
    y6 = ops.convert_to_numpy(block3(ops.convert_to_tensor(x6)))
    assert not np.allclose(y6[:, :5], y, atol=1e-3)  # a real sixth token is attended ...
    np.testing.assert_allclose(
        swin_block(x[0].astype(np.float64), block_weights(block2), (3, 1), (1, 0), 1), y[0], rtol=2e-4, atol=2e-4
    )  # ... the padded one is not


def test_swin_block_refuses_channels_not_divisible_by_heads():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        SwinBlock(3, 2).build((None, 4, 4, 8))


def test_swin_block_under_mixed_float16_is_close_to_float32():
    block = SwinBlock(2, (3, 3), shifted=True)
    block.build((None, 6, 6, 8))
    randomize(block, seed=7, scale=0.1)
    x = np.random.default_rng(8).normal(size=(1, 6, 6, 8)).astype(np.float32)
    reference = ops.convert_to_numpy(block(x))
    half = SwinBlock(2, (3, 3), shifted=True, dtype="mixed_float16")
    half.build((None, 6, 6, 8))
    half.set_weights(block.get_weights())
    y = half(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    np.testing.assert_allclose(ops.convert_to_numpy(ops.cast(y, "float32")), reference, atol=3e-2)


def test_swin_block_serialises_its_arguments():
    block = SwinBlock(4, [5, 6, 7], shifted=True, mlp_ratio=3.0, qkv_bias=False, attention_dropout=0.1)
    clone = SwinBlock.from_config(block.get_config())
    for key in ("num_heads", "shifted", "mlp_ratio", "qkv_bias", "attention_dropout"):
        assert getattr(clone, key) == getattr(block, key)
    assert tuple(clone.window_size) == (5, 6, 7)

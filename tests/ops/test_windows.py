"""Window partitioning, relative position index and shifted-window mask against loop-based NumPy."""

import itertools

import numpy as np
import pytest
from keras import ops

from tests.swin_reference import offset_rows, window_tokens
from tfreg.ops.windows import (
    MASK_VALUE,
    attention_mask,
    attention_mask_table,
    pad_to_windows,
    relative_position_index,
    window_geometry,
    window_partition,
    window_reverse,
)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("padded, window", [((6, 8), (3, 4)), ((4, 6, 10), (2, 3, 5)), ((5, 6, 7), (5, 6, 7))])
def test_window_partition_gathers_each_window_row_major_and_reverse_inverts_it(padded, window):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *padded, 3)).astype(np.float32)
    windows = ops.convert_to_numpy(window_partition(ops.convert_to_tensor(x), window))
    tokens = window_tokens(padded, window)
    assert windows.shape == (2 * len(tokens), int(np.prod(window)), 3)
    for b in range(2):
        for w, coords in enumerate(tokens):
            expected = np.stack([x[(b,) + c] for c in coords])
            np.testing.assert_array_equal(windows[b * len(tokens) + w], expected)
    back = ops.convert_to_numpy(window_reverse(ops.convert_to_tensor(windows), window, padded))
    np.testing.assert_array_equal(back, x)


@pytest.mark.backend_agnostic
def test_pad_to_windows_pads_zeros_at_the_end_and_refuses_a_smaller_size():
    x = np.ones((1, 3, 5, 2), np.float32)
    y = ops.convert_to_numpy(pad_to_windows(ops.convert_to_tensor(x), (4, 6)))
    assert y.shape == (1, 4, 6, 2)
    assert y[:, :3, :5].min() == 1 and y[:, 3:].max() == 0 and y[:, :, 5:].max() == 0
    with pytest.raises(ValueError, match="smaller than the grid"):
        pad_to_windows(ops.convert_to_tensor(x), (2, 6))
    with pytest.raises(ValueError, match="not a multiple of the window"):
        window_partition(ops.convert_to_tensor(x), (2, 2))


@pytest.mark.parametrize("window", [(2, 3), (3, 3, 3), (5, 6, 7), (1, 4, 2)])
def test_relative_position_index_names_each_offset_by_its_table_row(window):
    index = relative_position_index(window)
    coords = list(itertools.product(*[range(w) for w in window]))
    rows = offset_rows(window)
    expected = np.array([[rows[tuple(a - b for a, b in zip(ci, cj))] for cj in coords] for ci in coords])
    np.testing.assert_array_equal(index, expected)
    assert index.max() < np.prod([2 * w - 1 for w in window])


def _brute_force_mask(size, window, shift):
    """Allowed iff the roll did not wrap the two tokens apart on any axis and the key is not padding."""
    padded = tuple(-(-s // w) * w for s, w in zip(size, window))
    out = []
    for positions in window_tokens(padded, window):
        originals = [tuple((p + s) % P for p, s, P in zip(pos, shift, padded)) for pos in positions]
        n = len(positions)
        m = np.zeros((n, n))
        for i, j in itertools.product(range(n), range(n)):
            unwrapped = all(
                oj - oi == pj - pi for oi, oj, pi, pj in zip(originals[i], originals[j], positions[i], positions[j])
            )
            inside = all(o < s for o, s in zip(originals[j], size))
            m[i, j] = 0.0 if (unwrapped and inside) else MASK_VALUE
        out.append(m)
    return np.stack(out)


@pytest.mark.parametrize(
    "size, window, shift",
    [
        ((8, 8), (4, 4), (2, 2)),  # the Swin case: no padding
        ((7, 9), (4, 3), (2, 1)),  # padding and shift
        ((6, 6, 6), (3, 3, 3), (1, 1, 1)),
        ((5, 7, 4), (2, 3, 4), (1, 1, 0)),  # one axis unshifted, padding on two
        ((5, 6), (3, 4), (0, 0)),  # padding only
    ],
)
def test_attention_mask_matches_the_wrap_around_rule(size, window, shift):
    window, shift, _ = window_geometry(size, window, shift)
    mask = attention_mask(size, window, shift)
    np.testing.assert_array_equal(mask, _brute_force_mask(size, window, shift))


def test_attention_mask_is_none_without_shift_or_padding():
    assert attention_mask((8, 6), (4, 3), (0, 0)) is None


def test_window_geometry_clips_windows_larger_than_the_grid_and_drops_their_shift():
    assert window_geometry((5, 12, 3), (7, 5, 3), (3, 2, 1)) == ((5, 5, 3), (0, 2, 0), (5, 15, 3))
    with pytest.raises(ValueError, match="shift must be in"):
        window_geometry((8, 8), (4, 4), (4, 0))
    with pytest.raises(ValueError, match="one per spatial axis"):
        window_geometry((8, 8), (4, 4, 4), (0, 0))


def test_attention_mask_table_keeps_one_mask_per_distinct_window():
    # a Swin UNETR stage-0 grid at 160x192x224 (patch 2): 2,880 windows of 343 tokens share a few masks
    masks, index = attention_mask_table((80, 96, 112), (7, 7, 7), (3, 3, 3))
    assert index.shape == (12 * 14 * 16,) and masks.shape[1:] == (343, 343)
    assert len(masks) <= 27
    assert (masks[index[0]] == 0).all()  # an interior window attends everywhere

"""tfreg.vis.jacobian_distribution: fixed-width histograms, pair medians, and the drawn data of the figure."""

import numpy as np
import pytest
from matplotlib.patches import StepPatch

from tests.vis._png import png_size
from tfreg.vis.jacobian_distribution import (
    fixed_width_histogram,
    jacobian_distribution_figure,
    pair_medians,
    plot_jacobian_distribution,
)


def test_histogram_edges_are_multiples_of_the_width():
    # by hand: [0.98, 0.99) holds 0.98 and 0.985; [0.99, 1.00) 0.995; [1.00, 1.01) 1.0 and 1.004; [1.01, 1.02) 1.012
    values = np.array([0.995, 1.0, 1.004, 1.012, 0.98, 0.985])
    hist = fixed_width_histogram(values, 0.01)
    np.testing.assert_allclose(hist.edges, [0.98, 0.99, 1.0, 1.01, 1.02], atol=1e-12)
    np.testing.assert_array_equal(hist.counts, [2, 1, 2, 1])
    assert (hist.below, hist.above) == (0, 0)


def test_histogram_of_a_rigid_field_is_one_bin():
    hist = fixed_width_histogram(np.ones(50))
    np.testing.assert_allclose(hist.edges, [1.0, 1.01])
    np.testing.assert_array_equal(hist.counts, [50])


def test_histogram_matches_numpy_on_random_values():
    values = np.random.default_rng(0).normal(1.0, 0.05, 5000)
    hist = fixed_width_histogram(values, 0.01)
    assert hist.counts.sum() == values.size
    np.testing.assert_allclose(np.diff(hist.edges), 0.01, atol=1e-12)
    np.testing.assert_allclose(hist.edges / 0.01, np.round(hist.edges / 0.01), atol=1e-9)
    assert hist.edges[0] <= values.min() < hist.edges[0] + 0.01
    assert hist.edges[-1] - 0.01 <= values.max() < hist.edges[-1]
    np.testing.assert_array_equal(hist.counts, np.histogram(values, bins=hist.edges)[0])


def test_histogram_too_wide_range_keeps_the_central_values():
    values = np.concatenate([np.linspace(0.9, 1.1, 1000), [-1e6, 1e6]])
    hist = fixed_width_histogram(values, 0.01, max_bins=100)
    assert len(hist.counts) <= 100
    assert hist.below == 1 and hist.above == 1
    assert hist.counts.sum() + hist.below + hist.above == values.size


def test_histogram_errors_and_empty():
    with pytest.raises(ValueError, match="bin_width must be a positive number, got 0"):
        fixed_width_histogram([1.0], 0)
    with pytest.raises(ValueError, match="1 value"):
        fixed_width_histogram([1.0, np.nan])
    empty = fixed_width_histogram([])
    assert empty.counts.size == 0 and empty.edges.size == 0


def test_pair_medians():
    per_pair = {"a": np.array([1.0, 3.0, 2.0]), "b": np.array([]), "c": np.array([0.5, 0.7])}
    np.testing.assert_allclose(pair_medians(per_pair), [2.0, 0.6])


def sample_values():
    rng = np.random.default_rng(4)
    return {
        "3": {"pair_1": rng.normal(1.0, 0.02, 300), "pair_2": rng.normal(1.02, 0.05, 200)},
        "4": {"pair_1": np.ones(120), "pair_2": np.ones(80)},  # rigid: one distinct value
        "L34": {},
    }


def test_figure_draws_the_given_values():
    values = sample_values()
    values["L34"] = {p: np.concatenate([values["3"][p], values["4"][p]]) for p in ("pair_1", "pair_2")}
    fig = jacobian_distribution_figure(values, mask_name="warped moving label")
    artists = {a.get_gid(): a for ax in fig.axes for a in ax.get_children() if a.get_gid()}
    for label, per_pair in values.items():
        pooled = np.concatenate(list(per_pair.values()))
        step = artists[f"histogram:{label}"]
        assert isinstance(step, StepPatch)
        counts, edges, _ = step.get_data()
        expected = np.histogram(pooled, bins=edges)[0]
        np.testing.assert_array_equal(counts, expected)
        assert counts.sum() == pooled.size
        np.testing.assert_allclose(np.diff(edges), 0.01, atol=1e-12)
        medians = artists[f"pair-medians:{label}"].get_offsets()[:, 1]
        np.testing.assert_allclose(medians, [np.median(v) for v in per_pair.values()])
    top = fig.axes[0]
    assert "warped moving label" in top.get_ylabel() and "fixed grid" in top.get_ylabel()
    # the violins' median lines sit at the pooled medians (labels 3 and L34 have spread; 4 is a flat line at 1)
    median_lines = [c for c in top.collections if c.get_gid() is None and hasattr(c, "get_segments")]
    ys = sorted(seg[0][1] for c in median_lines for seg in c.get_segments())
    expected = sorted(np.median(np.concatenate(list(values[k].values()))) for k in ("3", "4", "L34"))
    np.testing.assert_allclose(ys, expected)


def test_plot_writes_png_and_handles_an_empty_label(tmp_path):
    out = plot_jacobian_distribution(sample_values(), str(tmp_path / "j.png"), dpi=50, figsize=(8, 6))
    assert png_size(out) == (400, 300)
    with pytest.raises(ValueError, match="no label to plot"):
        jacobian_distribution_figure({})
    with pytest.raises(ValueError, match="label '3' has NaN"):
        jacobian_distribution_figure({"3": {"p": np.array([1.0, np.inf])}})

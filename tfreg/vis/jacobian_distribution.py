"""Distribution of det J inside labels: one figure per evaluation run.

The figure van Ulsen's thesis ("Multi-modal deep learning based 3D image registration for osseous
anatomies", Fig. 4.5) uses to show how rigid the vertebrae stay: the values of the Jacobian determinant
of the transform at the voxels of each structure, as a histogram with bin width 0.01. Here each label
(and the union of the labels, when evaluated) gets

- a violin of the det J values at its voxels pooled over every pair (top panel, one violin per label),
  with each pair's median marked, so one badly deformed pair stands out from the pooled shape;
- a histogram of the same pooled values with bins of fixed width (0.01 by default) whose edges are whole
  multiples of the width, as in the thesis (bottom panels, one per label).

The values are det J on the DDF's (fixed) grid, dimensionless: 1 keeps volume, > 1 expands, <= 0 folds.
:func:`fixed_width_histogram` and :func:`pair_medians` compute what is drawn, :func:`jacobian_distribution_figure`
draws it and :func:`plot_jacobian_distribution` writes it; ``tfreg_evaluate --jacobian-figure`` collects
the values (:func:`tfreg.evaluation.evaluate.evaluate`) and calls the latter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from tfreg.vis._figure import new_figure, save_figure
from tfreg.vis.distributions import draw_violins, jitter

#: The thesis' histogram bin width (det J is dimensionless).
BIN_WIDTH = 0.01
#: Most bins one histogram may have; a wider range shows the central 99 % of the values instead.
MAX_BINS = 20000


@dataclass(frozen=True)
class Histogram:
    """A histogram with fixed-width bins.

    Attributes:
        counts: ``(n_bins,)`` int64 number of values per bin; bins are ``[edges[i], edges[i + 1])``.
        edges: ``(n_bins + 1,)`` float64 bin edges, whole multiples of the bin width.
        below, above: values left of ``edges[0]`` / right of ``edges[-1]``, not counted (0 unless the
            range needed more than ``max_bins`` bins).
    """

    counts: np.ndarray
    edges: np.ndarray
    below: int = 0
    above: int = 0


def fixed_width_histogram(values, bin_width: float = BIN_WIDTH, max_bins: int = MAX_BINS) -> Histogram:
    """Histogram of ``values`` with bins of width ``bin_width`` whose edges are multiples of it.

    The bins cover every value, so the counts sum to ``values.size``. When that takes more than
    ``max_bins`` bins (a wildly folding field), the bins cover the 0.5th to 99.5th percentiles (and at
    most ``max_bins`` bins from there) and the values outside are counted in ``below``/``above``.

    Args:
        values: any shape, finite (flattened).
        bin_width: > 0, in the values' unit.
        max_bins: >= 1.

    Returns:
        A :class:`Histogram`; no bins (empty ``counts`` and ``edges``) for no values.

    Raises:
        ValueError: a non-positive ``bin_width`` or ``max_bins``, or a non-finite value.
    """
    if not (isinstance(bin_width, (int, float, np.floating)) and math.isfinite(bin_width) and bin_width > 0):
        raise ValueError(f"bin_width must be a positive number, got {bin_width!r}")
    if int(max_bins) < 1:
        raise ValueError(f"max_bins must be at least 1, got {max_bins!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return Histogram(np.zeros(0, np.int64), np.zeros(0, np.float64))
    if not np.all(np.isfinite(v)):
        raise ValueError(f"histogram: {np.count_nonzero(~np.isfinite(v))} value(s) are NaN or infinite")
    w = float(bin_width)
    lo, hi = float(v.min()), float(v.max())
    if (hi - lo) / w + 2 > max_bins:
        lo, hi = (float(q) for q in np.percentile(v, [0.5, 99.5]))
        hi = min(hi, lo + (int(max_bins) - 2) * w)
    first, last = math.floor(lo / w), math.floor(hi / w) + 1
    # lo / w is rounded: step the edges outwards until they hold lo and hi (at most one step each)
    while first * w > lo:
        first -= 1
    while last * w <= hi:
        last += 1
    edges = np.arange(first, last + 1, dtype=np.float64) * w
    counts, _ = np.histogram(v, bins=edges)
    return Histogram(
        counts.astype(np.int64), edges, int(np.count_nonzero(v < edges[0])), int(np.count_nonzero(v > edges[-1]))
    )


def pair_medians(per_pair: Mapping[str, np.ndarray]) -> np.ndarray:
    """The median of each pair's values, in the mapping's order; pairs without values are skipped."""
    return np.asarray([float(np.median(v)) for v in per_pair.values() if np.asarray(v).size], dtype=np.float64)


def _pooled(per_pair: Mapping[str, np.ndarray]) -> np.ndarray:
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in per_pair.values()]
    return np.concatenate(arrays) if arrays else np.zeros(0, np.float64)


def jacobian_distribution_figure(
    values: Mapping[str, Mapping[str, np.ndarray]],
    bin_width: float = BIN_WIDTH,
    mask_name: str = "label",
    title: Optional[str] = None,
    dpi: int = 100,
    figsize: Optional[Sequence[float]] = None,
    max_bins: int = MAX_BINS,
) -> Figure:
    """Draw the det J distribution figure (see the module notes) and return it, unsaved.

    Artists carry ``gid`` s so the drawn data can be found again: ``pair-medians:<label>`` (the scatter
    of pair medians, y = the medians in pair order) and ``histogram:<label>`` (the histogram's
    ``StepPatch``).

    Args:
        values: ``{label: {pair: det J values inside the label, any shape}}`` in drawing order, e.g.
            :attr:`tfreg.evaluation.evaluate.EvaluationResult.jacobian_values`.
        bin_width: histogram bin width (the thesis: 0.01).
        mask_name: what the values are inside, for the axis labels (e.g. ``"warped moving label"``).
        title: figure title (default: det J inside each <mask_name> on the fixed grid).
        dpi, figsize: resolution and size in inches (default: grows with the number of labels).
        max_bins: see :func:`fixed_width_histogram`.

    Raises:
        ValueError: no label in ``values``, or a non-finite value.
    """
    labels = list(values)
    if not labels:
        raise ValueError("jacobian distribution: no label to plot")
    pooled = [_pooled(values[label]) for label in labels]
    for label, v in zip(labels, pooled):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"jacobian distribution: label {label!r} has NaN or infinite det J values")
    n = len(labels)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    if figsize is None:
        figsize = (max(6.0, 3.2 * ncols), 3.6 + 2.6 * nrows)
    fig = new_figure(figsize, dpi)
    grid = fig.add_gridspec(1 + nrows, ncols, height_ratios=[1.4] + [1.0] * nrows)
    colours = [f"C{i % 10}" for i in range(n)]
    positions = np.arange(1, n + 1, dtype=np.float64)

    ax = fig.add_subplot(grid[0, :])
    draw_violins(ax, pooled, positions, colours)
    for i, label in enumerate(labels):
        medians = pair_medians(values[label])
        ax.scatter(
            positions[i] + jitter(medians.size, width=0.12, seed=i),
            medians,
            s=18,
            marker="D",
            facecolor="white",
            edgecolors="black",
            linewidths=0.7,
            zorder=3,
            gid=f"pair-medians:{label}",
            label="median of one pair" if i == 0 else None,
        )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8, zorder=1)  # volume kept
    finite_min = min((v.min() for v in pooled if v.size), default=1.0)
    if finite_min <= 0:
        ax.axhline(0.0, color="red", linestyle=":", linewidth=0.8, zorder=1)  # folding below
    ax.set_xticks(positions)
    ax.set_xticklabels(
        [f"{label}\n({len(values[label])} pairs, {v.size} voxels)" for label, v in zip(labels, pooled)], fontsize=8
    )
    ax.set_xlim(0.4, n + 0.6)
    ax.set_ylabel(f"det J inside the {mask_name}\n(fixed grid)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if any(pair_medians(values[label]).size for label in labels):
        ax.legend(loc="best", fontsize=8)
    ax.set_title(title or f"det J inside each {mask_name} on the fixed grid", fontsize=10)

    for i, (label, v) in enumerate(zip(labels, pooled)):
        hax = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        hist = fixed_width_histogram(v, bin_width, max_bins)
        if v.size == 0:
            hax.text(0.5, 0.5, "no voxels", ha="center", va="center", transform=hax.transAxes)
        else:
            hax.stairs(hist.counts, hist.edges, fill=True, color=colours[i], alpha=0.7, gid=f"histogram:{label}")
            hax.axvline(1.0, color="grey", linestyle="--", linewidth=0.8)
        outside = hist.below + hist.above
        note = f"; {outside} outside [{hist.edges[0]:g}, {hist.edges[-1]:g}]" if outside else ""
        hax.set_title(f"{label}: {v.size} voxels, bins {bin_width:g}{note}", fontsize=9)
        hax.set_xlabel(f"det J inside the {mask_name}", fontsize=8)
        hax.set_ylabel("voxels (all pairs)", fontsize=8)
        hax.tick_params(labelsize=7)
    return fig


def plot_jacobian_distribution(
    values: Mapping[str, Mapping[str, np.ndarray]],
    out: str,
    bin_width: float = BIN_WIDTH,
    mask_name: str = "label",
    title: Optional[str] = None,
    dpi: int = 100,
    figsize: Optional[Sequence[float]] = None,
    max_bins: int = MAX_BINS,
) -> str:
    """Write :func:`jacobian_distribution_figure` to ``out`` (format from the suffix) and return ``out``."""
    fig = jacobian_distribution_figure(values, bin_width, mask_name, title, dpi, figsize, max_bins)
    return save_figure(fig, out, dpi)


__all__ = [
    "BIN_WIDTH",
    "Histogram",
    "MAX_BINS",
    "fixed_width_histogram",
    "jacobian_distribution_figure",
    "pair_medians",
    "plot_jacobian_distribution",
]

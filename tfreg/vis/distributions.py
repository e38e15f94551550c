"""Violin and box plots of one evaluation metric across methods (one CSV per method)."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from tfreg.vis._figure import new_figure, save_figure

KINDS = ("violin", "box")


def jitter(count: int, width: float = 0.08, seed: int = 0) -> np.ndarray:
    """Reproducible horizontal offsets in ``[-width, width]`` so overlapping points stay visible."""
    return np.random.default_rng(seed).uniform(-width, width, size=count)


def draw_violins(ax, data: Sequence[np.ndarray], positions: np.ndarray, colours: Sequence[str]) -> None:
    """One violin (kernel density, black median line) per 1-D array of ``data`` at ``positions`` on ``ax``.

    A kernel density needs spread: an array with one distinct value (a rigid field's det J, a perfect
    Dice) gets only its median line. Empty arrays are skipped.
    """
    positions = np.asarray(positions, dtype=np.float64)
    spread = [i for i, d in enumerate(data) if d.size and np.ptp(d) > 0]
    if spread:
        parts = ax.violinplot(
            [data[i] for i in spread], positions=positions[spread], showmedians=True, showextrema=False, widths=0.7
        )
        for body, i in zip(parts["bodies"], spread):
            body.set_facecolor(colours[i])
            body.set_edgecolor("black")
            body.set_alpha(0.45)
        parts["cmedians"].set_color("black")
    flat = [i for i, d in enumerate(data) if d.size and i not in spread]
    if flat:
        ax.hlines([np.median(data[i]) for i in flat], positions[flat] - 0.3, positions[flat] + 0.3, colors="black")


def plot_distribution(
    values: Dict[str, np.ndarray],
    out: str,
    kind: str = "violin",
    metric: str = "dice",
    points: bool = True,
    dpi: int = 100,
    title: Optional[str] = None,
    figsize: Optional[Sequence[float]] = None,
) -> str:
    """Write a PNG with one violin (or box) per method, the individual values as dots on top.

    Args:
        values: ``{method name: 1-D values}`` in plotting order (see :func:`tfreg.vis.io.read_metric_csvs`).
        out: PNG path.
        kind: ``"violin"`` (kernel density, median line) or ``"box"`` (quartiles, 1.5 IQR whiskers).
        metric: the y-axis label (the metric's column name; units are the CSV's, e.g. mm for hd95).
        points: draw each value as a jittered dot.
        dpi, figsize: resolution and size in inches (PNG is ``figsize * dpi`` pixels).
        title: figure title (default ``"<metric> by method"``).

    Returns:
        ``out``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not values:
        raise ValueError(f"{kind}: no method to plot")
    names = list(values)
    data = [np.asarray(values[n], dtype=np.float64).ravel() for n in names]
    for name, d in zip(names, data):
        if d.size == 0 or not np.all(np.isfinite(d)):
            raise ValueError(f"{kind}: method {name!r} needs at least one value, all finite")
    positions = np.arange(1, len(names) + 1)
    fig = new_figure(figsize if figsize is not None else (1.4 + 1.3 * len(names), 4.0), dpi)
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(names))]
    if kind == "violin":
        draw_violins(ax, data, positions, colours)
    else:
        parts = ax.boxplot(data, positions=positions, widths=0.5, patch_artist=True, showfliers=not points)
        for box, colour in zip(parts["boxes"], colours):
            box.set_facecolor(colour)
            box.set_alpha(0.45)
        for median in parts["medians"]:
            median.set_color("black")
    if points:
        for i, (d, colour) in enumerate(zip(data, colours)):
            ax.scatter(
                positions[i] + jitter(d.size, seed=i),
                d,
                s=9,
                color=colour,
                edgecolors="black",
                linewidths=0.3,
                zorder=3,
            )
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{n}\n(n={d.size})" for n, d in zip(names, data)], fontsize=8)
    ax.set_xlim(0.4, len(names) + 0.6)
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or f"{metric} by method", fontsize=10)
    return save_figure(fig, out, dpi)


__all__ = ["KINDS", "draw_violins", "jitter", "plot_distribution"]

"""Trade-off figures from the comparison table: every model in its own colour and marker (report.styles).

Figures are built with matplotlib's object API (no pyplot state, no display needed) and written atomically.
Size plots leave out models without a file (the PyTorch reference row); the Pareto fronts come from
facecompress.report.findings, over the manifest's variants.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..report.results import METRICS
from ..core.atomic import atomic_path
from ..report.styles import Style
from ..data.wider import SETTINGS
from ..evaluation.official import WiderResult

DPI = 100  # output pixels = inches x DPI exactly (no tight bounding box), so sizes are predictable
TRADE_OFF_INCHES = (14.0, 10.0)
SINGLE_INCHES = (11.0, 7.0)
PR_INCHES = (17.0, 6.0)
SIZE_LABEL = "size on disk (MB, 10^6 bytes)"
LATENCY_LABEL = "median latency, fixed input, batch 1 (ms)"
MARKER_SIZE = 9
FRONT_STYLE = {"color": "#444444", "linestyle": "--", "linewidth": 1.2, "zorder": 1}


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write a figure atomically in the format its suffix names."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=tmp.suffix.lstrip("."))


def _threshold_label(metric: str, threshold: float) -> str:
    return f"{metric} at score >= {threshold:g} (fraction)"


def legend_handles(names: Sequence[str], styles: dict[str, Style], **line) -> list[Line2D]:
    """One legend entry per model in its colour and marker; `line` sets how the entry is drawn."""
    return [Line2D([], [], color=styles[n].colour, marker=styles[n].marker, label=n, **line) for n in names]


def _handles(names: list[str], styles: dict[str, Style]) -> list[Line2D]:
    """One legend entry per model, drawn as it is drawn in the plots."""
    return legend_handles(names, styles, linestyle="none", markersize=MARKER_SIZE, markeredgecolor="black",
                          markeredgewidth=0.5)


def _figure(inches: tuple[float, float], title: str, names: list[str], styles: dict[str, Style]) -> Figure:
    """A constrained-layout figure with the provenance title and the models' legend on the right."""
    fig = Figure(figsize=inches, layout="constrained")
    fig.suptitle(title, fontsize=11)
    fig.legend(handles=_handles(names, styles), loc="outside right center", title="model", fontsize=9)
    return fig


def _scatter(ax: Axes, table: pd.DataFrame, x: str, y: str, styles: dict[str, Style]) -> None:
    """Each model's point; a panel where no model has the value says why it is empty."""
    points = table.dropna(subset=[x, y])
    for row in points.to_dict("records"):
        style = styles[row["model"]]
        ax.plot(row[x], row[y], linestyle="none", marker=style.marker, color=style.colour,
                markersize=MARKER_SIZE, markeredgecolor="black", markeredgewidth=0.5, zorder=3)
    if points.empty:
        ax.text(0.5, 0.5, f"no model has a defined {y}\n(e.g. precision with no detection above the threshold)",
                ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.grid(True, alpha=0.3)


def _front(ax: Axes, table: pd.DataFrame, front: list[str], x: str, y: str) -> None:
    """The Pareto front as a staircase through its models, each ringed."""
    points = table.set_index("model").loc[front].sort_values(x)
    if points.empty:
        return
    ax.step(points[x], points[y], where="post", label="Pareto front", **FRONT_STYLE)
    ax.plot(points[x], points[y], linestyle="none", marker="o", markersize=MARKER_SIZE * 2, fillstyle="none",
            color="#444444", zorder=2)
    ax.legend(loc="best", fontsize=9)


def sized(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with a file on disk, sizes in MB: size plots cannot place the PyTorch reference row."""
    rows = table[table["bytes"].notna()]
    return rows.assign(bytes_mb=rows["bytes"] / 1e6)


def trade_off_figure(table: pd.DataFrame, styles: dict[str, Style], title: str, threshold: float) -> Figure:
    """Four panels: size on disk against precision, recall, F1 (at the threshold) and AP@0.5."""
    rows = sized(table)
    fig = _figure(TRADE_OFF_INCHES, f"Size vs accuracy\n{title}", rows["model"].tolist(), styles)
    panels = [(c, _threshold_label(label, threshold)) for c, label in (("precision", "precision"),
                                                                       ("recall", "recall"), ("f1", "F1"))]
    panels.append(("ap50", "AP@0.5 over all faces (fraction)"))
    for ax, (column, label) in zip(fig.subplots(2, 2).flat, panels):
        _scatter(ax, rows, "bytes_mb", column, styles)
        ax.set(xlabel=SIZE_LABEL, ylabel=label, title=label.split(" (")[0])
    return fig


def size_f1_figure(table: pd.DataFrame, front: list[str], styles: dict[str, Style], title: str,
                   threshold: float) -> Figure:
    """The focused view: size on disk against F1, the Pareto front marked."""
    rows = sized(table)
    fig = _figure(SINGLE_INCHES, f"Size vs F1\n{title}", rows["model"].tolist(), styles)
    ax = fig.subplots()
    _scatter(ax, rows, "bytes_mb", "f1", styles)
    _front(ax, rows, front, "bytes_mb", "f1")
    ax.set(xlabel=SIZE_LABEL, ylabel=_threshold_label("F1", threshold))
    return fig


def latency_figure(table: pd.DataFrame, front: list[str], metric: str, styles: dict[str, Style],
                   title: str) -> Figure:
    """Median latency (p90 as the error bar's right end) against accuracy, the Pareto front marked."""
    rows = table.dropna(subset=["median_ms"])
    fig = _figure(SINGLE_INCHES, f"Latency vs {METRICS[metric]}\n{title}", rows["model"].tolist(), styles)
    ax = fig.subplots()
    for row in rows.dropna(subset=[metric]).to_dict("records"):
        spread = [[0.0], [max(row["p90_ms"] - row["median_ms"], 0.0)]] if np.isfinite(row["p90_ms"]) else None
        ax.errorbar(row["median_ms"], row[metric], xerr=spread, color=styles[row["model"]].colour,
                    linewidth=1, capsize=3, zorder=2)
    _scatter(ax, rows, "median_ms", metric, styles)
    _front(ax, rows, front, "median_ms", metric)
    ax.set(xlabel=f"{LATENCY_LABEL}; bar to p90", ylabel=f"{METRICS[metric]} (fraction)")
    return fig


def pr_figure(curves: dict[str, WiderResult], styles: dict[str, Style], title: str) -> Figure:
    """Each model's official precision-recall curve on Easy, Medium and Hard."""
    names = list(curves)
    fig = _figure(PR_INCHES, f"WIDER FACE precision-recall\n{title}", names, styles)
    axes = fig.subplots(1, len(SETTINGS), sharey=True)
    for ax, setting in zip(axes, SETTINGS):
        for name in names:
            curve, style = curves[name].pr_curves[setting], styles[name]
            drawn = np.isfinite(curve.recall) & np.isfinite(curve.precision)  # a model that finds nothing has no curve
            if drawn.any():
                ax.plot(curve.recall[drawn], curve.precision[drawn], color=style.colour, marker=style.marker,
                        markevery=0.1, markersize=MARKER_SIZE - 3, linewidth=1.2)
        faces = curves[names[0]].faces[setting] if names else 0
        ax.set(xlabel="recall (fraction of faces)", title=f"{setting.title()} ({faces} faces)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("precision (fraction of detections)")
    return fig

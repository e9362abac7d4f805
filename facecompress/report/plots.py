"""Trade-off figures from the comparison table: every model in its own colour and marker (report.styles).

Figures are built with matplotlib's object API (no pyplot state, no display needed) and written atomically.
Size plots leave out models without a file (the PyTorch reference row); the Pareto fronts come from
facecompress.report.findings, over the manifest's variants.
"""

from __future__ import annotations

import math
import os
import textwrap
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..compress.channel_recipe import RECOVERED
from ..core.artifacts import reference_of
from ..report.findings import AP_POINT, pareto_front
from ..report.results import METRICS
from ..core.atomic import atomic_path
from ..core.rows import is_default
from ..report.styles import RUNTIME_MARKERS, Style, runtime_styles
from ..data.wider import SETTINGS
from ..evaluation.official import WiderResult

DPI = 100  # output pixels = inches x DPI exactly (no tight bounding box), so sizes are predictable
TRADE_OFF_INCHES = (14.0, 10.0)
SINGLE_INCHES = (11.0, 7.0)
PR_INCHES = (17.0, 6.0)
SIZE_LABEL = "size on disk (MB, 10^6 bytes)"
LATENCY_LABEL = "median latency, fixed input, batch 1 (ms)"
MARKER_SIZE = 9
TITLE_POINTS, LEGEND_POINTS = 11, 9
CHAR_EM = 0.62  # widest average DejaVu Sans character run (capitals and digits) in ems: wrapping at it keeps lines in
LEGEND_ROW_POINTS = 16  # one legend entry (9 pt text, 9 pt marker, spacing): measured 15 pt
LEGEND_MARGIN_POINTS = 40  # a legend column's marker, its gap to the text and the gap to the next column
MIN_AXES_INCHES = 6.0  # what the plotting area keeps, beside the legend, however many models it lists
MARKER_NAMES = {"o": "circle", "P": "plus", "X": "cross", "*": "star"}  # how a title names a runtime's marker
FRONT_STYLE = {"color": "#444444", "linestyle": "--", "linewidth": 1.2, "zorder": 1}


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write a figure atomically in the format its suffix names."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=tmp.suffix.lstrip("."))


def _threshold_label(metric: str, threshold: float) -> str:
    return f"{metric} at score >= {threshold:g} (fraction)"


def legend_handles(names: Sequence[str], styles: dict[str, Style], **line) -> list[Line2D]:
    """One legend entry per model in its colour and marker; `line` sets how the entry is drawn."""
    return [Line2D([], [], color=styles[n].colour, marker=styles[n].marker, fillstyle=styles[n].fill, label=n,
                   **line) for n in names]


def _handles(names: list[str], styles: dict[str, Style]) -> list[Line2D]:
    """One legend entry per model, drawn as it is drawn in the plots."""
    return legend_handles(names, styles, linestyle="none", markersize=MARKER_SIZE, markeredgecolor="black",
                          markeredgewidth=0.5)


def wrapped(title: str, inches: float, points: float = TITLE_POINTS) -> str:
    """The title broken into lines that fit `inches` of width: a provenance line naming three families would not."""
    width = max(20, int(inches * 72 * 0.95 / (points * CHAR_EM)))
    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def legend_columns(entries: int, inches: float, title_lines: int) -> int:
    """Columns enough for the legend to fit the height the title leaves (a full study of every family has about 40)."""
    free = inches * 72 - (title_lines + 3) * TITLE_POINTS * 1.5  # the title, the legend's own title and padding
    return max(1, math.ceil(entries / max(1, int(free // LEGEND_ROW_POINTS))))


def legend_inches(names: Sequence[str], columns: int) -> float:
    """Width of a legend of `columns` columns: each as wide as the longest name, plus its marker and spacing."""
    longest = max((len(n) for n in names), default=0)
    return columns * (longest * LEGEND_POINTS * CHAR_EM + LEGEND_MARGIN_POINTS) / 72


def _figure(inches: tuple[float, float], title: str, names: list[str], styles: dict[str, Style]) -> Figure:
    """A constrained-layout figure with the provenance title, wrapped, and the models' legend on the right.

    A legend of many columns (a study with channel-pruned variants lists over 60 models) would squeeze the
    axes to nothing; the figure is widened instead, so the axes keep at least MIN_AXES_INCHES.
    """
    columns = legend_columns(len(names), inches[1], wrapped(title, inches[0]).count("\n") + 1)
    width = max(inches[0], MIN_AXES_INCHES + legend_inches(names, columns))
    fig = Figure(figsize=(width, inches[1]), layout="constrained")
    text = wrapped(title, width)
    fig.suptitle(text, fontsize=TITLE_POINTS)
    fig.legend(handles=_handles(names, styles), loc="outside right center", title="model", fontsize=LEGEND_POINTS,
               ncols=columns)
    return fig


def _scatter(ax: Axes, table: pd.DataFrame, x: str, y: str, styles: dict[str, Style]) -> None:
    """Each model's point; a panel where no model has the value says why it is empty."""
    points = table.dropna(subset=[x, y])
    for row in points.to_dict("records"):
        style = styles[row["model"]]
        ax.plot(row[x], row[y], linestyle="none", marker=style.marker, color=style.colour, fillstyle=style.fill,
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


def _budget_lines(ax: Axes, table: pd.DataFrame, metric: str, max_drop: float, styles: dict[str, Style]) -> None:
    """A dashed line per family at its FP32 original's accuracy minus the budget: what is above it is within."""
    for family in dict.fromkeys(table["family"]):
        reference = table[table["model"] == reference_of(family)]
        if len(reference) and np.isfinite(reference[metric].iloc[0]):
            floor = reference[metric].iloc[0] - max_drop * AP_POINT
            ax.axhline(floor, linestyle="--", linewidth=0.8, zorder=1, color=styles[reference_of(family)].colour)


def _recovery_arrows(ax: Axes, table: pd.DataFrame, metric: str) -> None:
    """An arrow from each channel-pruned network before recovery to the same network after it."""
    points = table.dropna(subset=["median_ms", metric]).drop_duplicates("model").set_index("model")
    for name in points.index[points["method"] == "channel-l1"]:
        if name + RECOVERED in points.index:
            start, end = points.loc[name], points.loc[name + RECOVERED]
            ax.annotate("", xy=(end["median_ms"], end[metric]), xytext=(start["median_ms"], start[metric]),
                        arrowprops={"arrowstyle": "->", "color": "#666666", "linewidth": 0.8}, zorder=1)


def latency_figure(table: pd.DataFrame, front: list[str], metric: str, styles: dict[str, Style],
                   title: str, max_drop: float = 1.0) -> Figure:
    """Median latency (p90 as the error bar's right end) against accuracy, the Pareto front and each family's
    budget marked; rows of several runtimes keep their variant's colour and take their runtime's marker."""
    rows = table.dropna(subset=["median_ms"])
    styles, note = by_runtime(rows, styles)
    fig = _figure(SINGLE_INCHES, f"Latency vs {METRICS[metric]}{note}\n{title}", rows["model"].tolist(), styles)
    ax = fig.subplots()
    for row in rows.dropna(subset=[metric]).to_dict("records"):
        spread = [[0.0], [max(row["p90_ms"] - row["median_ms"], 0.0)]] if np.isfinite(row["p90_ms"]) else None
        ax.errorbar(row["median_ms"], row[metric], xerr=spread, color=styles[row["model"]].colour,
                    linewidth=1, capsize=3, zorder=2)
    _scatter(ax, rows, "median_ms", metric, styles)
    _recovery_arrows(ax, rows, metric)
    _front(ax, rows, front, "median_ms", metric)
    _budget_lines(ax, rows, metric, max_drop, styles)
    ax.set(xlabel=f"{LATENCY_LABEL}; bar to p90",
           ylabel=f"{METRICS[metric]} (fraction); dashed: {max_drop:g} point(s) below each original")
    return fig


def by_runtime(rows: pd.DataFrame, styles: dict[str, Style]) -> tuple[dict[str, Style], str]:
    """(styles, title note): runtime markers and what they mean where the rows come from several runtimes."""
    runtimes = sorted(set(rows["runtime"]) - {"torch"}) if "runtime" in rows else []
    if len(runtimes) < 2:
        return styles, ""
    marks = ", ".join(f"{MARKER_NAMES.get(RUNTIME_MARKERS.get(r, '*'), '*')} {r}" for r in runtimes)
    half = "; half-filled: bf16 float ops" if "bf16" in set(rows["inference_precision"]) else ""
    return runtime_styles(rows["model"], styles), f"; marker by runtime: {marks}{half}"


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


def every_figure(table: pd.DataFrame, curves: dict[str, WiderResult], styles: dict[str, Style], title: str,
                 threshold: float, metric: str, max_drop: float = 1.0) -> dict[str, Figure]:
    """Every figure plot_results.py writes, by file name; Pareto fronts over the manifest's variants only. The size
    plots show each file once, as ONNX Runtime ran it: its bytes do not depend on the runtime."""
    variants = table[table["in_manifest"]]
    files = table[table["model"].map(is_default)]
    return {
        "trade_off_analysis.png": trade_off_figure(files, styles, title, threshold),
        "size_vs_f1.png": size_f1_figure(files, pareto_front(files[files["in_manifest"]], "bytes", "f1"), styles,
                                         title, threshold),
        "latency_vs_accuracy.png": latency_figure(table, pareto_front(variants, "median_ms", metric), metric, styles,
                                                  title, max_drop),
        "pr_curves.png": pr_figure(curves, styles, title),
    }

"""Draw the trade-offs from models/manifest.json and results/ alone: size, latency and accuracy, and PR curves.

Usage: python plot_results.py [--models DIR] [--results DIR] [--plots DIR] [--split DIR] [--metric wider_hard]

Writes plots/trade_off_analysis.png (size vs precision, recall, F1, AP@0.5), plots/size_vs_f1.png,
plots/latency_vs_accuracy.png (Pareto front marked) and plots/pr_curves.png (official Easy / Medium / Hard
curves from the cached predictions). Every model keeps one colour and marker across all plots.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facecompress.cli import add_results_args, reports_wall_time, setup_logging
from facecompress.core.errors import exit_on_input_error
from facecompress.data.dataset import DEFAULT_SPLIT
from facecompress.data.wider import read_mat_ground_truth
from facecompress.report.curves import curve_mismatches, pr_curves
from facecompress.report.findings import pareto_front
from facecompress.report.plots import latency_figure, pr_figure, save_figure, size_f1_figure, trade_off_figure
from facecompress.report.results import METRICS, comparison_table, load_results, styles_for


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_results_args(parser)
    parser.add_argument("--plots", default="plots", help="output folder (default: %(default)s)")
    parser.add_argument("--split", default=None,
                        help="folder of the four evaluation .mat files, for the PR curves (default: the one "
                             f"results/run.json names, else {DEFAULT_SPLIT})")
    parser.add_argument("--metric", choices=list(METRICS), default="wider_hard",
                        help="accuracy axis of the latency plot (default: %(default)s)")
    return parser.parse_args(argv)


@exit_on_input_error
@reports_wall_time
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    results = load_results(args.models, args.results)
    table, styles, title = comparison_table(results), styles_for(results), results.title()
    variants = table[table["in_manifest"]]
    curves = pr_curves(results, read_mat_ground_truth(args.split or results.run.get("split", DEFAULT_SPLIT)))
    for message in curve_mismatches(curves, results.accuracy):
        print(f"warning: {message}")
    figures = {
        "trade_off_analysis.png": trade_off_figure(table, styles, title, results.threshold),
        "size_vs_f1.png": size_f1_figure(table, pareto_front(variants, "bytes", "f1"), styles, title,
                                         results.threshold),
        "latency_vs_accuracy.png": latency_figure(table, pareto_front(variants, "median_ms", args.metric),
                                                  args.metric, styles, title),
        "pr_curves.png": pr_figure(curves, styles, title),
    }
    for name, figure in figures.items():
        save_figure(figure, Path(args.plots) / name)
        print(f"written {Path(args.plots) / name}")
    print(f"({title})")


if __name__ == "__main__":
    main()

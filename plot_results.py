"""Draw the trade-offs from models/manifest.json and results/ alone: size, latency and accuracy, and PR curves.

Usage: python plot_results.py [--models DIR] [--results DIR] [--plots DIR] [--split DIR] [--metric wider_hard]

Writes plots/trade_off_analysis.png (size vs precision, recall, F1, AP@0.5), plots/size_vs_f1.png,
plots/latency_vs_accuracy.png (Pareto front marked) and plots/pr_curves.png (official Easy / Medium / Hard
curves from the cached predictions). Every model keeps one colour and marker across all plots.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facecompress.cli import add_results_args, points, reports_wall_time, setup_logging
from facecompress.core.errors import exit_on_input_error
from facecompress.data.dataset import DEFAULT_SPLIT
from facecompress.data.wider import read_mat_ground_truth
from facecompress.report.curves import curve_mismatches, pr_curves
from facecompress.report.plots import every_figure, save_figure
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
    parser.add_argument("--max-ap-drop", type=points, default=1.0, metavar="POINTS",
                        help="the budget drawn on the latency plot: AP points below each family's FP32 original "
                             "(default: %(default)s, as analyze_results.py)")
    return parser.parse_args(argv)


@exit_on_input_error
@reports_wall_time
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    results = load_results(args.models, args.results)
    table, styles, title = comparison_table(results), styles_for(results), results.title()
    curves = pr_curves(results, read_mat_ground_truth(args.split or results.run.get("split", DEFAULT_SPLIT)))
    for message in curve_mismatches(curves, results.accuracy):
        print(f"warning: {message}")
    figures = every_figure(table, curves, styles, title, results.threshold, args.metric, args.max_ap_drop)
    for name, figure in figures.items():
        save_figure(figure, Path(args.plots) / name)
        print(f"written {Path(args.plots) / name}")
    print(f"({title})")


if __name__ == "__main__":
    main()

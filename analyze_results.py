"""Compare every variant from models/manifest.json and results/ alone: the table, the findings, a recommendation.

Usage: python analyze_results.py [--models DIR] [--results DIR] [--max-ap-drop POINTS] [--metric wider_hard]

Prints the comparison table (size, parameters, FLOPs, latency, speed-up, accuracy, agreement) and findings
computed from it (most accurate, smallest, fastest, Pareto sets, the smallest and fastest variant within the
accuracy budget), and writes the same to results/summary.md. No model is run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facecompress.cli import add_results_args, points, reports_wall_time, setup_logging
from facecompress.core.artifacts import SUMMARY
from facecompress.core.atomic import write_text
from facecompress.core.errors import exit_on_input_error
from facecompress.core.tables import format_table
from facecompress.report.findings import findings
from facecompress.report.results import METRICS, comparison_table, load_results
from facecompress.report.text import HEADERS, display_rows, finding_lines, header_lines, legend, summary_markdown


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_results_args(parser, "; summary.md is written there")
    parser.add_argument("--max-ap-drop", type=points, default=1.0, metavar="POINTS",
                        help="accuracy budget: AP points (1 = 0.01 AP) a variant may lose against the FP32 "
                             "ONNX original (default: %(default)s)")
    parser.add_argument("--metric", choices=list(METRICS), default="wider_hard",
                        help="accuracy for the findings, Pareto sets and budget (default: %(default)s)")
    return parser.parse_args(argv)


@exit_on_input_error
@reports_wall_time
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    results = load_results(args.models, args.results)
    table = comparison_table(results)
    found = findings(table, args.metric, args.max_ap_drop)
    summary = Path(args.results) / SUMMARY
    write_text(summary, summary_markdown(results, table, found))
    print("\n".join(header_lines(results)))
    print()
    print(format_table(display_rows(table), HEADERS))
    print()
    print(legend(results.threshold))
    print()
    print("\n".join(finding_lines(table, found, results)))
    print(f"\nwritten {summary}")


if __name__ == "__main__":
    main()

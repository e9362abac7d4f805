"""The comparison as text: console table, results/summary.md, and the findings as sentences."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..core.artifacts import REFERENCE, model_name, reference_of
from ..core.rows import variant_of
from ..run.timing import BUSY_SPREAD, P90_MIN_RUNS
from .findings import AP_POINT, Findings, Pick, Recommendation
from .pruning import CHANNEL_COLUMNS, channel_rows, sparse_line
from .results import METRICS, Results


def fraction(value: float) -> str:
    """Three decimals; scientific where that would read 0.000 for a non-zero value (untrained models)."""
    if not np.isfinite(value):
        return "-"
    return f"{value:.1e}" if 0 < abs(value) < 0.0005 else f"{value:.3f}"


def _scaled(scale: float, digits: int, suffix: str = "") -> Callable[[float], str]:
    """A formatter for value / scale with `digits` decimals; '-' for a missing value."""
    return lambda value: f"{value / scale:.{digits}f}{suffix}" if np.isfinite(value) else "-"


# (header, table column, formatter): the console table and summary.md show the same cells
COLUMNS = (("model", "model", str), ("method", "method", str), ("family", "family", str), ("runtime", "runtime", str),
           ("float ops", "inference_precision", str),
           ("MB", "bytes", _scaled(1e6, 1)),
           ("zstd MB", "compressed_bytes", _scaled(1e6, 1)), ("smaller", "size_ratio", _scaled(1, 2, "x")),
           ("params M", "parameters", _scaled(1e6, 2)), ("nonzero M", "nonzero", _scaled(1e6, 2)),
           ("sparsity", "sparsity", _scaled(0.01, 1, "%")), ("GFLOPs", "flops", _scaled(1e9, 1)),
           ("median ms", "median_ms", _scaled(1, 1)), ("p90 ms", "p90_ms", _scaled(1, 1)),
           ("speed-up", "speedup", _scaled(1, 2, "x")), ("P", "precision", fraction), ("R", "recall", fraction),
           ("F1", "f1", fraction), ("AP50", "ap50", fraction), ("Easy", "wider_easy", fraction),
           ("Medium", "wider_medium", fraction), ("Hard", "wider_hard", fraction),
           ("agree", "agreement_ap50", fraction))
HEADERS = [header for header, _, _ in COLUMNS]
TEXT_COLUMNS = ("model", "method", "family", "runtime", "float ops")


def display_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """The table's cells as text, keyed by header; the original's agreement reads 'ref'."""
    rows = [{header: fmt(row[column]) for header, column, fmt in COLUMNS} for row in table.to_dict("records")]
    references = {reference_of(family) for family in table["family"]} if "family" in table else {REFERENCE}
    return [{**row, "agree": "ref"} if row["model"] in references else row for row in rows]


def legend(threshold: float) -> str:
    """What each column means and its unit."""
    return (f"family: the detector the row belongs to; runtime: what ran it on the CPU; float ops: the precision the "
            f"runtime computed the float operators in (OpenVINO's read back from the compiled model); MB: 10^6 bytes "
            f"on disk; zstd MB: after zstd level 9 (where unstructured zeros show); smaller and speed-up: the "
            f"family's original's bytes or ONNX Runtime FP32 latency over the model's, the speed-up as the median of "
            f"per-round ratios timed together; latency: one fixed preprocessed input, batch 1, after warm-up, median "
            f"and 90th percentile (given from {P90_MIN_RUNS} runs up) in ms; GFLOPs per image; P, R, F1 at score >= "
            f"{threshold:g}; AP50: AP@0.5 over all faces; Easy / Medium / Hard: official WIDER FACE AP; agree: "
            f"AP@0.5 against the family's original's detections; '-': not measured or undefined (P with no "
            f"detection).")


def markdown_table(rows: list[dict[str, str]], columns: Sequence[str]) -> str:
    """A GitHub table, text left-aligned and numbers right-aligned as on the console."""
    rule = "|" + "|".join(":---" if c in TEXT_COLUMNS else "---:" for c in columns) + "|"
    lines = ["| " + " | ".join(columns) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows])


def describe_model(table: pd.DataFrame, name: str, metric: str) -> str:
    """'variant (runtime, precision; MB, x smaller; ms, x faster; accuracy)': the facts a finding rests on."""
    row = table.set_index("model").loc[name]
    where = f"{row['runtime']}, {row['inference_precision']} float ops; " if "runtime" in row else ""
    return (f"{variant_of(name)} ({where}{_scaled(1e6, 1)(row['bytes'])} MB, "
            f"{_scaled(1, 2, 'x')(row['size_ratio'])} smaller; {_scaled(1, 1)(row['median_ms'])} ms, "
            f"{_scaled(1, 2, 'x')(row['speedup'])} speed-up; {METRICS[metric]} {fraction(row[metric])})")


def _picked(table: pd.DataFrame, choice: Pick, metric: str) -> str:
    if choice.model is None:
        return "none measured"
    ties = f" [tied with {', '.join(choice.ties)}]" if choice.ties else ""
    return describe_model(table, choice.model, metric) + ties


def budget_lines(table: pd.DataFrame, rec: Recommendation, illustrative: bool, scope: str = "") -> list[str]:
    """The budget and what it selects, labelled as illustration when the numbers cannot carry advice.

    `scope` ('scrfd: ', 'Overall: ') starts every line when there is more than one budget.
    """
    label, reference = METRICS[rec.metric], rec.reference
    if not np.isfinite(rec.floor):
        return [f"{scope}No budget: {reference} has no {label}; run `python benchmark.py --only {reference}`."]
    lines = [f"{scope}Budget: {label} at most {rec.max_drop:g} AP point(s) below {reference} "
             f"(>= {fraction(rec.floor)}): {len(rec.within)} of {rec.candidates} compressed variant(s) within."]
    if not rec.within:
        return lines + [f"{scope}No compressed variant stays within the budget: keep {reference} or raise "
                        "--max-ap-drop."]
    prefix = scope + ("Illustrative only, not a real accuracy comparison:" if illustrative else "Recommendation:")
    def best(choice: Pick, what: str) -> str:
        return _picked(table, choice, rec.metric) if choice.model else f"none {what} than {reference}, keep it"

    return lines + [f"{prefix} smallest within budget: {best(rec.smallest, 'smaller')}",
                    f"{prefix} fastest within budget: {best(rec.fastest, 'faster')}"]


def deploy_line(table: pd.DataFrame, family: str, rec: Recommendation, illustrative: bool) -> str:
    """The variant to ship for one family: the fastest within the budget on the evaluated images' labels, its
    speed-up, size and Easy / Medium / Hard drop, and, for a searched variant, its label-free estimate beside it."""
    name = rec.fastest.model
    if name is None:
        return f"Deploy ({family}): {rec.reference}; no compressed variant is faster within the budget."
    rows = table.set_index("model")
    row, base = rows.loc[name], rows.loc[rec.reference]
    changes = {m: (row[m] - base[m]) / AP_POINT for m in ("wider_easy", "wider_medium", "wider_hard")}
    line = (f"Deploy ({family}{', illustrative only' if illustrative else ''}): {name}, "
            f"{_scaled(1, 2, 'x')(row['speedup'])} faster and {_scaled(1, 2, 'x')(row['size_ratio'])} smaller than "
            f"{rec.reference}; Easy / Medium / Hard {' / '.join(f'{c:+.1f}' for c in changes.values())} AP points "
            "(labelled, on the evaluated images)")
    if np.isfinite(row.get("search_drop", np.nan)) and name == variant_of(name):  # searched in ONNX Runtime
        line += (f"; its INT8 search estimated {0.0 - row['search_drop']:+.1f} points of agreement with FP32 on "
                 f"calibration images, label-free, against {changes['wider_hard']:+.1f} Hard points measured")
    return line + "."


def untrained_deploy_line(table: pd.DataFrame, family: str, rec: Recommendation) -> str:
    """An untrained family has no accuracy to lose: its searched INT8 file is judged on agreement with FP32 alone."""
    name, rows = model_name(family, "int8_budget"), table.set_index("model")
    if name not in rows.index or not np.isfinite(rows.at[name, "search_drop"]):
        return f"Deploy ({family}, UNTRAINED): no searched INT8 variant measured."
    row = rows.loc[name]
    verdict = "within" if row["search_drop"] <= rec.max_drop else "outside"
    return (f"Deploy ({family}, UNTRAINED, judged on agreement with FP32 only, illustrative): {name} is {verdict} "
            f"the {rec.max_drop:g}-point budget ({0.0 - row['search_drop']:+.1f} points of agreement on calibration "
            f"images; AP@0.5 {fraction(row['agreement_ap50'])} against FP32 on the evaluated images), "
            f"{_scaled(1, 2, 'x')(row['speedup'])} faster and {_scaled(1, 2, 'x')(row['size_ratio'])} smaller.")


def finding_lines(table: pd.DataFrame, found: Findings, results: Results) -> list[str]:
    """Every finding as one line of text, computed from the table; one budget per family, then one overall, then
    what to deploy per family.

    `results.illustrative(family)` says whether a family's numbers (None: all families') can carry advice.
    """
    illustrative = results.illustrative
    label = METRICS[found.metric]
    several = len(found.recommendations) > 1
    budgets = [line for family, rec in found.recommendations.items()
               for line in budget_lines(table, rec, illustrative(family), f"{family}: " if several else "")]
    if found.overall is not None:
        budgets += budget_lines(table, found.overall, illustrative(None), "Overall, any family: ")
    budgets += [untrained_deploy_line(table, family, rec) if results.untrained(family) else
                deploy_line(table, family, rec, illustrative(family))
                for family, rec in found.recommendations.items() if np.isfinite(rec.floor)]
    return [f"Most accurate ({label}): {_picked(table, found.most_accurate, found.metric)}",
            f"Smallest on disk: {_picked(table, found.smallest, found.metric)}",
            f"Fastest (median latency): {_picked(table, found.fastest, found.metric)}",
            f"Pareto-optimal, size vs {label}: {', '.join(found.pareto_size) or 'none'}",
            f"Pareto-optimal, latency vs {label}: {', '.join(found.pareto_latency) or 'none'}", *budgets]


def header_lines(results: Results) -> list[str]:
    """Provenance first, per family; an untrained detector or a generated sample is said out loud."""
    lines = [f"{results.title()}; threshold {results.threshold:g}"]
    lines += [f"UNTRAINED {family} (random weights): its accuracy figures measure the pipeline, not a face detector."
              for family in results.families if results.untrained(family)]
    lines += [f"SKIPPED family {family}, not built: {why}" for family, why in results.skipped.items()]
    overlapping = [family for family, header in results.families.items()
                   if header.get("calibration", {}).get("overlaps_evaluation")]
    if overlapping:
        lines.append(f"Calibration overlaps evaluation for {', '.join(overlapping)}: their INT8 files were calibrated "
                     "on evaluated images; pass inference.py --calibration-dir for figures that are results.")
    if results.generated:
        lines.append("GENERATED SAMPLE, not WIDER FACE: these accuracies say nothing about WIDER FACE.")
    if results.illustrative():
        lines.append("Any recommendation below drawn from those numbers is illustrative only: computed as it would "
                     "be, not advice.")
    if results.cpus:
        lines.append(f"Latency measured on {' and '.join(results.cpus)}; speed-ups are paired per timing round.")
    if results.busy:
        lines.append(f"BUSY MACHINE while timing {', '.join(results.busy)}: rounds spread widely, so milliseconds are "
                     "inflated; re-run benchmark.py on a quiet machine.")
    if results.cpus:
        lines.append(f"BUSY rule: a model is flagged when the 10th-90th percentile range of its timed rounds exceeds "
                     f"{BUSY_SPREAD:.0%} of their median. Speed-ups are the median of per-round ratios, each round "
                     "timing every model back to back, so load that comes and goes hits both sides of a ratio "
                     "(bench/bench_timing_load.py measures how far they move under an intermittent neighbour).")
    return lines


def pruning_parts(table: pd.DataFrame, variants: dict) -> list[str]:
    """The pruning section: what unstructured zeros buy here, and each channel-pruned network before and after
    recovery; nothing when the run has neither."""
    rows, sparse = channel_rows(table, variants), sparse_line(table)
    return (["## Pruning", *([sparse] if sparse else []), *([markdown_table(rows, CHANNEL_COLUMNS)] if rows else [])]
            if rows or sparse else [])


def summary_markdown(results: Results, table: pd.DataFrame, found: Findings) -> str:
    """results/summary.md: provenance, the table, its legend, the pruning section and the findings."""
    parts = ["# Compression results", "\n".join(f"> {line}" for line in header_lines(results)),
             markdown_table(display_rows(table), HEADERS), legend(results.threshold),
             *pruning_parts(table, results.manifest["variants"]), "## Findings",
             "\n".join(f"- {line}" for line in finding_lines(table, found, results))]
    return "\n\n".join(parts) + "\n"

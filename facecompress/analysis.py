"""The comparison of every variant, read from models/manifest.json and results/ alone: no model is run.

One row per model joins the manifest's file facts (bytes, parameters, FLOPs), the benchmark's latency on a
fixed input and its accuracy. Findings are computed from that table, never written by hand: the most
accurate, smallest and fastest variant, the Pareto sets (size vs accuracy, latency vs accuracy) and the
smallest and fastest variant whose accuracy stays within a budget of the FP32 ONNX original's.
Ties are broken by accuracy, then size, then latency, then table order, and reported as ties.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .manifest import MANIFEST, read_manifest
from .predictions import read_prediction_dir
from .styles import REFERENCE, TORCH_ROW, Style, model_styles
from .wider import MatImage
from .wider_eval import WiderResult, evaluate

log = logging.getLogger(__name__)

ACCURACY_CSV, TIMING_CSV, IMAGES_CSV = "accuracy.csv", "timing_results.csv", "benchmark_results.csv"
RUN_JSON = "run.json"
LATENCY_PHASE = "inference_fixed_input"  # fixed preprocessed input after warm-up: the model alone
AP_POINT = 0.01  # budgets are in AP points; 1 point = 0.01 AP
TOLERANCE = 1e-9  # the CSVs round to 6 decimals: a drop of exactly the budget must count as within it
METRICS = {"wider_hard": "WIDER Hard AP", "wider_medium": "WIDER Medium AP", "wider_easy": "WIDER Easy AP",
           "ap50": "AP@0.5 (all faces)"}
MANIFEST_FACTS = ("bytes", "compressed_bytes", "parameters", "nonzero", "sparsity", "flops")
ACCURACY = ("precision", "recall", "f1", "ap50", "wider_easy", "wider_medium", "wider_hard", "agreement_ap50")


@dataclass(frozen=True)
class Results:
    """Everything the last three stages read: the manifest and the benchmark's outputs."""

    manifest: dict
    accuracy: pd.DataFrame
    timing: pd.DataFrame
    images: pd.DataFrame
    run: dict
    folder: Path

    @property
    def provenance(self) -> str:
        return str(self.run.get("provenance", self.manifest.get("provenance", "unknown provenance")))

    @property
    def dataset(self) -> str:
        return str(self.run.get("dataset", self.manifest.get("dataset", "unknown dataset")))

    @property
    def threshold(self) -> float:
        return float(self.run.get("threshold", self.accuracy["threshold"].iloc[0]))

    @property
    def untrained(self) -> bool:
        return self.provenance.startswith("untrained")

    @property
    def generated(self) -> bool:
        return self.dataset.startswith("generated sample")

    @property
    def illustrative(self) -> bool:
        """True when accuracy numbers cannot support a real choice (random weights or synthetic scenes)."""
        return self.untrained or self.generated

    @property
    def models(self) -> list[str]:
        """Models with results, in the benchmark's order."""
        return list(dict.fromkeys(self.accuracy["model"]))

    def title(self) -> str:
        """Model source and data, as every figure and report carries them."""
        return (f"RF-DETR {self.manifest.get('model_variant', '?')} at {self.manifest.get('resolution', '?')} px, "
                f"{self.provenance}; {self.dataset}")


def styles_for(results: Results) -> dict[str, Style]:
    """Every model's colour and marker, from the full list so that plots and visualizations agree."""
    return model_styles([*results.models, *results.manifest["variants"]])


def _read_csv(path: Path) -> pd.DataFrame:
    """A benchmark CSV, or a one-line error saying to run the benchmark."""
    if not path.is_file():
        raise InputError(f"{path}: not found; run `python benchmark.py` first")
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: unreadable ({err}); run `python benchmark.py` again") from None
    if "model" not in table.columns:
        raise InputError(f"{path}: no 'model' column (not written by benchmark.py); run `python benchmark.py`")
    return table


def _read_run(path: Path) -> dict:
    """The benchmark's effective configuration (threshold, dataset, provenance)."""
    if not path.is_file():
        raise InputError(f"{path}: not found; run `python benchmark.py` first")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); run `python benchmark.py` again") from None


def load_results(models: str | Path, results: str | Path) -> Results:
    """Read the manifest and results/, refusing what is missing and warning about what is partial."""
    models, results = Path(models), Path(results)
    manifest = read_manifest(models / MANIFEST)
    if manifest is None or not manifest["variants"]:
        raise InputError(f"{models / MANIFEST}: no variants yet; run `python inference.py` first")
    loaded = Results(manifest, _read_csv(results / ACCURACY_CSV), _read_csv(results / TIMING_CSV),
                     _read_csv(results / IMAGES_CSV), _read_run(results / RUN_JSON), results)
    if not set(manifest["variants"]) & set(loaded.models):
        raise InputError(f"{results}: no results for any variant in {models / MANIFEST}; run `python benchmark.py`")
    for message in result_gaps(loaded):
        log.warning(message)
    return loaded


def result_gaps(results: Results) -> list[str]:
    """What is missing or stale, each with the command that fills it in."""
    timed = set(results.timing.loc[results.timing["phase"] == LATENCY_PHASE, "model"])
    gaps = [f"{name}: in the manifest but has no {what}; run `python benchmark.py --only {name}`"
            for name in results.manifest["variants"]
            for what, have in (("accuracy results", set(results.models)), ("latency", timed)) if name not in have]
    gaps += [f"{name}: has results but is not in the manifest (left over from an earlier run?)"
             for name in results.models if name not in results.manifest["variants"] and name != TORCH_ROW]
    if results.provenance != results.manifest.get("provenance", results.provenance):
        gaps.append(f"results are from '{results.provenance}' but the manifest is "
                    f"'{results.manifest['provenance']}'; run `python benchmark.py` again")
    return gaps


def latency(timing: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 milliseconds on the fixed input, indexed by model (the last row wins)."""
    fixed = timing[timing["phase"] == LATENCY_PHASE].drop_duplicates("model", keep="last")
    return fixed.set_index("model")[["median_ms", "p90_ms"]]


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when either is missing or the denominator is 0."""
    if not (np.isfinite(numerator) and np.isfinite(denominator)) or denominator == 0:
        return math.nan
    return float(numerator / denominator)


def _method(name: str, entry: dict | None) -> str:
    if entry is not None:
        return str(entry.get("method", "-"))
    return "pytorch-reference" if name == TORCH_ROW else "-"


def _row(name: str, entry: dict | None, timed: pd.DataFrame, accuracy: pd.DataFrame) -> dict:
    """One model's manifest facts, latency and accuracy; NaN wherever a source lacks it."""
    facts = entry or {}
    row = {"model": name, "method": _method(name, entry), "in_manifest": entry is not None}
    row.update({k: float(facts.get(k, math.nan)) for k in MANIFEST_FACTS})
    row.update({k: float(timed.at[name, k]) if name in timed.index else math.nan for k in ("median_ms", "p90_ms")})
    row.update({k: float(accuracy.at[name, k]) if name in accuracy.index and k in accuracy else math.nan
                for k in ACCURACY})
    return row


def comparison_table(results: Results) -> pd.DataFrame:
    """One row per model (benchmarked ones in benchmark order, then manifest variants without results)."""
    accuracy = results.accuracy.drop_duplicates("model", keep="last").set_index("model")
    timed = latency(results.timing)
    variants = results.manifest["variants"]
    names = list(dict.fromkeys(results.models + list(variants)))
    table = pd.DataFrame([_row(name, variants.get(name), timed, accuracy) for name in names])
    reference = table.set_index("model").reindex([REFERENCE]).iloc[0]
    table["speedup"] = [_ratio(reference["median_ms"], v) for v in table["median_ms"]]
    table["size_ratio"] = [_ratio(reference["bytes"], v) for v in table["bytes"]]
    return table


@dataclass(frozen=True)
class Pick:
    """The best model on one criterion (None when no model has it), and the models equal to it there."""

    model: str | None
    ties: tuple[str, ...] = ()


def pick(table: pd.DataFrame, by: str, metric: str) -> Pick:
    """Lowest `by` (highest when it is the accuracy `metric`); ties broken by accuracy, size, latency, order."""
    usable = table.dropna(subset=[by])
    if usable.empty:
        return Pick(None)
    keys = list(dict.fromkeys([by, metric, "bytes", "median_ms"]))
    ranked = usable.sort_values(keys, ascending=[k != metric for k in keys], kind="mergesort", na_position="last")
    best = ranked.iloc[0]
    return Pick(best["model"], tuple(ranked.loc[ranked[by] == best[by], "model"].iloc[1:]))


def pareto_front(table: pd.DataFrame, cost: str, metric: str) -> list[str]:
    """Models no other beats on both axes (cost no higher, accuracy no lower, one strictly), cheapest first."""
    points = table.dropna(subset=[cost, metric])
    c, a = points[cost].to_numpy()[:, None], points[metric].to_numpy()[:, None]
    dominated = ((c.T <= c) & (a.T >= a) & ((c.T < c) | (a.T > a))).any(axis=1)
    front = points[~dominated].sort_values([cost, metric], ascending=[True, False], kind="mergesort")
    return front["model"].tolist()


@dataclass(frozen=True)
class Recommendation:
    """The smallest and the fastest compressed variant within `max_drop` AP points of the original."""

    metric: str
    max_drop: float  # AP points
    floor: float  # the lowest accuracy within budget; NaN when the original has none
    candidates: int  # compressed variants considered
    within: tuple[str, ...]
    smallest: Pick
    fastest: Pick


def recommend(table: pd.DataFrame, metric: str, max_drop: float) -> Recommendation:
    """Apply the budget to the compressed variants (manifest entries other than the original)."""
    reference = table.loc[table["model"] == REFERENCE, metric]
    floor = float(reference.iloc[0]) - max_drop * AP_POINT if len(reference) else math.nan
    candidates = table[table["in_manifest"] & (table["model"] != REFERENCE)]
    within = candidates[candidates[metric] >= floor - TOLERANCE]  # NaN on either side compares False
    return Recommendation(metric, max_drop, floor, len(candidates), tuple(within["model"]),
                          pick(within, "bytes", metric), pick(within, "median_ms", metric))


@dataclass(frozen=True)
class Findings:
    """What the table says, over the manifest's variants (the PyTorch reference row has no file)."""

    metric: str
    most_accurate: Pick
    smallest: Pick
    fastest: Pick
    pareto_size: list[str]
    pareto_latency: list[str]
    recommendation: Recommendation


def findings(table: pd.DataFrame, metric: str = "wider_hard", max_drop: float = 1.0) -> Findings:
    """Most accurate, smallest, fastest, both Pareto sets and the recommendation."""
    variants = table[table["in_manifest"]]
    return Findings(metric, pick(variants, metric, metric), pick(variants, "bytes", metric),
                    pick(variants, "median_ms", metric), pareto_front(variants, "bytes", metric),
                    pareto_front(variants, "median_ms", metric), recommend(table, metric, max_drop))


def fraction(value: float) -> str:
    """Three decimals; scientific where that would read 0.000 for a non-zero value (untrained models)."""
    if not np.isfinite(value):
        return "-"
    return f"{value:.1e}" if 0 < abs(value) < 0.0005 else f"{value:.3f}"


def _scaled(scale: float, digits: int, suffix: str = "") -> Callable[[float], str]:
    """A formatter for value / scale with `digits` decimals; '-' for a missing value."""
    return lambda value: f"{value / scale:.{digits}f}{suffix}" if np.isfinite(value) else "-"


# (header, table column, formatter): the console table and summary.md show the same cells
COLUMNS = (("model", "model", str), ("method", "method", str), ("MB", "bytes", _scaled(1e6, 1)),
           ("zstd MB", "compressed_bytes", _scaled(1e6, 1)), ("smaller", "size_ratio", _scaled(1, 2, "x")),
           ("params M", "parameters", _scaled(1e6, 2)), ("nonzero M", "nonzero", _scaled(1e6, 2)),
           ("sparsity", "sparsity", _scaled(0.01, 1, "%")), ("GFLOPs", "flops", _scaled(1e9, 1)),
           ("median ms", "median_ms", _scaled(1, 1)), ("p90 ms", "p90_ms", _scaled(1, 1)),
           ("speed-up", "speedup", _scaled(1, 2, "x")), ("P", "precision", fraction), ("R", "recall", fraction),
           ("F1", "f1", fraction), ("AP50", "ap50", fraction), ("Easy", "wider_easy", fraction),
           ("Medium", "wider_medium", fraction), ("Hard", "wider_hard", fraction),
           ("agree", "agreement_ap50", fraction))
HEADERS = [header for header, _, _ in COLUMNS]
TEXT_COLUMNS = ("model", "method")


def display_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """The table's cells as text, keyed by header; the original's agreement reads 'ref'."""
    rows = [{header: fmt(row[column]) for header, column, fmt in COLUMNS} for row in table.to_dict("records")]
    return [{**row, "agree": "ref"} if row["model"] == REFERENCE else row for row in rows]


def legend(threshold: float) -> str:
    """What each column means and its unit."""
    return (f"MB: 10^6 bytes on disk; zstd MB: after zstd level 9 (where unstructured zeros show); smaller and "
            f"speed-up: original's bytes or median latency over the model's; latency: one fixed preprocessed "
            f"input, batch 1, after warm-up, median and 90th percentile in ms; GFLOPs per image; P, R, F1 at "
            f"score >= {threshold:g}; AP50: AP@0.5 over all faces; Easy / Medium / Hard: official WIDER FACE AP; "
            f"agree: AP@0.5 against the original's detections; '-': not measured or undefined "
            f"(P with no detection).")


def markdown_table(rows: list[dict[str, str]], columns: Sequence[str]) -> str:
    """A GitHub table, text left-aligned and numbers right-aligned as on the console."""
    rule = "|" + "|".join(":---" if c in TEXT_COLUMNS else "---:" for c in columns) + "|"
    lines = ["| " + " | ".join(columns) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows])


def describe_model(table: pd.DataFrame, name: str, metric: str) -> str:
    """'name (MB, x smaller; ms, x faster; accuracy)': the facts a finding rests on."""
    row = table.set_index("model").loc[name]
    return (f"{name} ({_scaled(1e6, 1)(row['bytes'])} MB, {_scaled(1, 2, 'x')(row['size_ratio'])} smaller; "
            f"{_scaled(1, 1)(row['median_ms'])} ms, {_scaled(1, 2, 'x')(row['speedup'])} speed-up; "
            f"{METRICS[metric]} {fraction(row[metric])})")


def _picked(table: pd.DataFrame, choice: Pick, metric: str) -> str:
    if choice.model is None:
        return "none measured"
    ties = f" [tied with {', '.join(choice.ties)}]" if choice.ties else ""
    return describe_model(table, choice.model, metric) + ties


def budget_lines(table: pd.DataFrame, rec: Recommendation, illustrative: bool) -> list[str]:
    """The budget and what it selects, labelled as illustration when the numbers cannot carry advice."""
    label = METRICS[rec.metric]
    if not np.isfinite(rec.floor):
        return [f"No budget: {REFERENCE} has no {label}; run `python benchmark.py --only {REFERENCE}`."]
    lines = [f"Budget: {label} at most {rec.max_drop:g} AP point(s) below {REFERENCE} "
             f"(>= {fraction(rec.floor)}): {len(rec.within)} of {rec.candidates} compressed variant(s) within."]
    if not rec.within:
        return lines + [f"No compressed variant stays within the budget: keep {REFERENCE} or raise --max-ap-drop."]
    prefix = ("Illustrative only, not a real accuracy comparison:" if illustrative else "Recommendation:")
    return lines + [f"{prefix} smallest within budget: {_picked(table, rec.smallest, rec.metric)}",
                    f"{prefix} fastest within budget: {_picked(table, rec.fastest, rec.metric)}"]


def finding_lines(table: pd.DataFrame, found: Findings, illustrative: bool) -> list[str]:
    """Every finding as one line of text, computed from the table."""
    label = METRICS[found.metric]
    return [f"Most accurate ({label}): {_picked(table, found.most_accurate, found.metric)}",
            f"Smallest on disk: {_picked(table, found.smallest, found.metric)}",
            f"Fastest (median latency): {_picked(table, found.fastest, found.metric)}",
            f"Pareto-optimal, size vs {label}: {', '.join(found.pareto_size) or 'none'}",
            f"Pareto-optimal, latency vs {label}: {', '.join(found.pareto_latency) or 'none'}",
            *budget_lines(table, found.recommendation, illustrative)]


def header_lines(results: Results) -> list[str]:
    """Provenance first; an untrained baseline or a generated sample is said out loud."""
    lines = [f"{results.title()}; threshold {results.threshold:g}"]
    if results.untrained:
        lines.append("UNTRAINED baseline (random weights): accuracy figures measure the pipeline, not a face detector.")
    if results.generated:
        lines.append("GENERATED SAMPLE, not WIDER FACE: these accuracies say nothing about WIDER FACE.")
    if results.illustrative:
        lines.append("Any recommendation below is illustrative only: computed as it would be, not advice.")
    return lines


def summary_markdown(results: Results, table: pd.DataFrame, found: Findings) -> str:
    """results/summary.md: provenance, the table, its legend and the findings."""
    parts = ["# Compression results", "\n".join(f"> {line}" for line in header_lines(results)),
             markdown_table(display_rows(table), HEADERS), legend(results.threshold), "## Findings",
             "\n".join(f"- {line}" for line in finding_lines(table, found, results.illustrative))]
    return "\n\n".join(parts) + "\n"


def evaluated_images(results: Results, models: Sequence[str]) -> list[str]:
    """The images the benchmark scored for any of `models`, in its order."""
    return list(dict.fromkeys(results.images.loc[results.images["model"].isin(models), "image"]))


def model_curves(predictions: dict[str, np.ndarray], names: list[str],
                 ground_truth: Sequence[MatImage]) -> WiderResult:
    """Official curves as the benchmark scored them: its images only, restricted when not the whole set."""
    kept = {n: predictions.get(n, np.zeros((0, 5))) for n in names}
    partial = len(set(names)) < len(ground_truth)
    return evaluate(kept, ground_truth, restrict_to=names if partial else None)


def pr_curves(results: Results, ground_truth: Sequence[MatImage]) -> dict[str, WiderResult]:
    """Each benchmarked model's Easy / Medium / Hard precision-recall curves, from its cached predictions."""
    curves = {}
    for name in results.models:
        folder, names = results.folder / "predictions" / name, evaluated_images(results, [name])
        if not folder.is_dir() or not names:
            log.warning("%s: no cached predictions in %s; run `python benchmark.py --only %s`", name, folder, name)
            continue
        curves[name] = model_curves(read_prediction_dir(folder), names, ground_truth)
    return curves


def curve_mismatches(curves: dict[str, WiderResult], accuracy: pd.DataFrame) -> list[str]:
    """Settings whose AP from the curves differs from accuracy.csv's (another split folder, stale results)."""
    recorded = accuracy.drop_duplicates("model", keep="last").set_index("model")
    return [f"{name}: WIDER {setting} AP {result.ap[setting]:.6f} from the predictions, "
            f"{recorded.at[name, f'wider_{setting}']:.6f} in {ACCURACY_CSV}"
            for name, result in curves.items() for setting in result.ap
            if name in recorded.index and not np.isclose(result.ap[setting], recorded.at[name, f"wider_{setting}"],
                                                         atol=1e-6, equal_nan=True)]

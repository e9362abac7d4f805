"""The comparison of every variant, read from models/manifest.json and results/ alone: no model is run.

One row per model joins the manifest's file facts (bytes, parameters, FLOPs), the benchmark's latency on a
fixed input and its accuracy; `findings` draws conclusions from that table, `text` writes it out.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.artifacts import (ACCURACY_CSV, FLAGSHIP, IMAGES_CSV, LATENCY_PHASE, MANIFEST, RUN_JSON, TIMING_CSV,
                              TORCH_ROW, load_manifest, reference_of, row_columns)
from ..core.rows import variant_of
from ..core.errors import InputError
from ..evaluation.metrics import ratio
from .styles import Style, model_styles

log = logging.getLogger(__name__)

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
    def families(self) -> dict[str, dict]:
        """Each family's manifest header, in manifest order: where its weights came from, what it is."""
        return self.manifest["families"]

    @property
    def dataset(self) -> str:
        return str(self.run.get("dataset", self.manifest.get("dataset", "unknown dataset")))

    @property
    def threshold(self) -> float:
        return float(self.run.get("threshold", self.accuracy["threshold"].iloc[0]))

    @property
    def latency_rows(self) -> pd.DataFrame:
        """The fixed-input rows, the last per model."""
        return self.timing[self.timing["phase"] == LATENCY_PHASE].drop_duplicates("model", keep="last")

    @property
    def busy(self) -> list[str]:
        """Models whose timing rounds show the machine was busy."""
        rows = self.latency_rows
        return list(rows.loc[rows["busy"].astype(str) == "True", "model"]) if "busy" in rows else []

    @property
    def cpus(self) -> list[str]:
        """Each CPU the latencies were measured on, with its INT8 instruction sets."""
        rows = self.latency_rows
        if "cpu_isa" not in rows:
            return list(dict.fromkeys(rows["cpu"].astype(str))) if "cpu" in rows else []
        return list(dict.fromkeys(f"{cpu} ({isa})" for cpu, isa in zip(rows["cpu"], rows["cpu_isa"])))

    @property
    def skipped(self) -> dict[str, str]:
        """Families inference.py left out because their weights could not be fetched, each with the reason."""
        return self.manifest.get("skipped_families", {})

    def untrained(self, family: str) -> bool:
        return str(self.families[family]["provenance"]).startswith("untrained")

    @property
    def generated(self) -> bool:
        return self.dataset.startswith("generated sample")

    def illustrative(self, family: str | None = None) -> bool:
        """True when accuracy numbers cannot support a real choice (random weights or synthetic scenes).

        Without a family: true when any family's numbers cannot (the overall comparison mixes them all).
        """
        families = [family] if family else list(self.families)
        return self.generated or any(self.untrained(f) for f in families)

    @property
    def models(self) -> list[str]:
        """Models with results, in the benchmark's order."""
        return list(dict.fromkeys(self.accuracy["model"]))

    def by_family(self, models: list[str]) -> dict[str, list[str]]:
        """`models` grouped by family, families in manifest order."""
        variants = self.manifest["variants"]
        family = {name: variants[variant_of(name)].get("family", FLAGSHIP) if variant_of(name) in variants else FLAGSHIP
                  for name in models}
        return {f: members for f in self.families if (members := [m for m in models if family[m] == f])}

    def family_title(self, family: str) -> str:
        """One family's model and weights, and the data."""
        header = self.families[family]
        return f"{header.get('model', family)}, {header['provenance']}; {self.dataset}"

    def title(self) -> str:
        """Each family's model and weights, and the data, as every figure and report carries them."""
        return "; ".join([f"{h.get('model', f)}, {h['provenance']}" for f, h in self.families.items()]
                         + [self.dataset])


def styles_for(results: Results) -> dict[str, Style]:
    """Every model's colour and marker, from the full list so that plots and visualizations agree."""
    variants = results.manifest["variants"]
    names = [*results.models, *variants]
    return model_styles(names, {n: variants[variant_of(n)].get("family", FLAGSHIP) for n in names
                                if variant_of(n) in variants})


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


def _of_known_families(accuracy: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Accuracy rows of the families the manifest has; rows left over from another family's run are dropped."""
    families = accuracy["family"] if "family" in accuracy else pd.Series(FLAGSHIP, index=accuracy.index)
    known = families.isin(list(manifest["families"]))
    for name in accuracy.loc[~known, "model"]:
        log.warning("%s: results of a family the manifest does not have (left over from an earlier run?); left out",
                    name)
    return accuracy[known].reset_index(drop=True)


def load_results(models: str | Path, results: str | Path) -> Results:
    """Read the manifest and results/, refusing what is missing and warning about what is partial."""
    models, results = Path(models), Path(results)
    manifest = load_manifest(models)
    accuracy = _of_known_families(_read_csv(results / ACCURACY_CSV), manifest)
    loaded = Results(manifest, accuracy, _read_csv(results / TIMING_CSV), _read_csv(results / IMAGES_CSV),
                     _read_run(results / RUN_JSON), results)
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
             for name in results.models if variant_of(name) not in results.manifest["variants"] and name != TORCH_ROW]
    recorded = results.run.get("provenance", {})
    gaps += [f"{family}: results are from '{recorded[family]}' but the manifest says '{header['provenance']}'; "
             "run `python benchmark.py` again" for family, header in results.families.items()
             if isinstance(recorded, dict) and recorded.get(family, header["provenance"]) != header["provenance"]]
    return gaps


def latency(timing: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 milliseconds on the fixed input, and the speed-up paired in the same rounds, by model."""
    fixed = timing[timing["phase"] == LATENCY_PHASE].drop_duplicates("model", keep="last")
    return fixed.set_index("model").reindex(columns=["median_ms", "p90_ms", "speedup"])



def _method(name: str, entry: dict | None) -> str:
    if entry is not None:
        return str(entry.get("method", "-"))
    return "pytorch-reference" if name == TORCH_ROW else "-"


def _row(name: str, entry: dict | None, timed: pd.DataFrame, accuracy: pd.DataFrame) -> dict:
    """One model's manifest facts, latency and accuracy; NaN wherever a source lacks it."""
    facts = entry or {}
    row = {"model": name, "method": _method(name, entry), "family": facts.get("family", FLAGSHIP),
           **row_columns(name), "in_manifest": entry is not None}
    row.update({k: float(facts.get(k, math.nan)) for k in MANIFEST_FACTS})
    row["search_drop"] = float(facts.get("search", {}).get("drop_points", math.nan))  # label-free estimate, points
    row.update({k: float(timed.at[name, k]) if name in timed.index else math.nan
                for k in ("median_ms", "p90_ms", "speedup")})
    row.update({k: float(accuracy.at[name, k]) if name in accuracy.index and k in accuracy else math.nan
                for k in ACCURACY})
    return row


def comparison_table(results: Results) -> pd.DataFrame:
    """One row per model, grouped by family in manifest order (benchmarked ones in benchmark order, then manifest
    variants without results); ratios are over each family's own FP32 original."""
    accuracy = results.accuracy.drop_duplicates("model", keep="last").set_index("model")
    timed = latency(results.timing)
    variants = results.manifest["variants"]
    names = list(dict.fromkeys(results.models + list(variants)))
    table = pd.DataFrame([_row(name, variants.get(variant_of(name)), timed, accuracy) for name in names])
    order = {family: i for i, family in enumerate(results.families)}
    table = table.sort_values("family", key=lambda f: f.map(order), kind="mergesort").reset_index(drop=True)
    return with_ratios(table)


def with_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Size ratio and (where the timing had no paired one) speed-up of each row over its family's original."""
    by_model = table.set_index("model")
    references = by_model.reindex([reference_of(f) for f in table["family"]])
    unpaired = [ratio(r, v) for r, v in zip(references["median_ms"], table["median_ms"])]
    table = table.copy()
    table["speedup"] = table["speedup"].where(table["speedup"].notna(), unpaired)  # rows timed without a pair
    table["size_ratio"] = [ratio(r, v) for r, v in zip(references["bytes"], table["bytes"])]
    return table



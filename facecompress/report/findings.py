"""What the comparison table says, computed from it and never written by hand.

The most accurate, smallest and fastest variant, the Pareto sets (size vs accuracy, latency vs accuracy)
and the smallest and fastest variant whose accuracy stays within a budget of the FP32 ONNX original's.
Ties are broken by accuracy, then size, then latency, then table order, and reported as ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..core.artifacts import FLAGSHIP, REFERENCE, reference_of

AP_POINT = 0.01  # budgets are in AP points; 1 point = 0.01 AP
TOLERANCE = 1e-9  # the CSVs round to 6 decimals: a drop of exactly the budget must count as within it


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
    """The smallest and the fastest compressed variant within `max_drop` AP points of `reference`."""

    metric: str
    max_drop: float  # AP points
    reference: str  # the FP32 original the budget is measured from
    floor: float  # the lowest accuracy within budget; NaN when the reference has none
    candidates: int  # compressed variants considered
    within: tuple[str, ...]
    smallest: Pick
    fastest: Pick


def _families(table: pd.DataFrame) -> pd.Series:
    """Each row's family (a table without the column is the flagship's alone)."""
    return table["family"] if "family" in table else pd.Series(FLAGSHIP, index=table.index)


def _within(table: pd.DataFrame, reference: str, candidates: pd.DataFrame, metric: str,
            max_drop: float) -> Recommendation:
    """Apply the budget, measured from `reference`'s accuracy, to `candidates`.

    The smallest and the fastest are picked among those that beat the reference there: a variant no
    smaller or no faster than its original is no reason to deploy it.
    """
    row = table[table["model"] == reference]
    floor = float(row[metric].iloc[0]) - max_drop * AP_POINT if len(row) else math.nan
    within = candidates[candidates[metric] >= floor - TOLERANCE]  # NaN on either side compares False
    base = row.iloc[0] if len(row) else pd.Series({"bytes": math.nan, "median_ms": math.nan})
    return Recommendation(metric, max_drop, reference, floor, len(candidates), tuple(within["model"]),
                          pick(within[within["bytes"] < base["bytes"]], "bytes", metric),
                          pick(within[within["median_ms"] < base["median_ms"]], "median_ms", metric))


def recommend(table: pd.DataFrame, metric: str, max_drop: float, family: str = FLAGSHIP) -> Recommendation:
    """One family's budget: its compressed variants against its own FP32 original."""
    reference = reference_of(family)
    mine = table[_families(table) == family]
    return _within(table, reference, mine[mine["in_manifest"] & (mine["model"] != reference)], metric, max_drop)


def recommend_overall(table: pd.DataFrame, metric: str, max_drop: float) -> Recommendation:
    """Across families: every variant, against the most accurate family's FP32 original.

    This is the comparison a user weighs: is a compressed detector of one family worth it against another
    family built for the CPU?
    """
    originals = table[table["model"].isin([reference_of(f) for f in _families(table).unique()])]
    best = pick(originals, metric, metric).model or REFERENCE
    return _within(table, best, table[table["in_manifest"] & (table["model"] != best)], metric, max_drop)


@dataclass(frozen=True)
class Findings:
    """What the table says, over the manifest's variants (the PyTorch reference row has no file)."""

    metric: str
    most_accurate: Pick
    smallest: Pick
    fastest: Pick
    pareto_size: list[str]
    pareto_latency: list[str]
    recommendations: dict[str, Recommendation]  # per family, in table order
    overall: Recommendation | None  # across families; None with only one


def findings(table: pd.DataFrame, metric: str = "wider_hard", max_drop: float = 1.0) -> Findings:
    """Most accurate, smallest, fastest, both Pareto sets, a recommendation per family and one overall."""
    variants = table[table["in_manifest"]]
    families = list(dict.fromkeys(_families(table)))
    return Findings(metric, pick(variants, metric, metric), pick(variants, "bytes", metric),
                    pick(variants, "median_ms", metric), pareto_front(variants, "bytes", metric),
                    pareto_front(variants, "median_ms", metric),
                    {f: recommend(table, metric, max_drop, f) for f in families},
                    recommend_overall(table, metric, max_drop) if len(families) > 1 else None)

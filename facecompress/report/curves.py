"""Official precision-recall curves of every benchmarked model, recomputed from its cached predictions."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from ..core.artifacts import ACCURACY_CSV, predictions_dir
from ..data.wider import MatImage
from ..evaluation.official import WiderResult, evaluate
from ..evaluation.submission import read_prediction_dir
from .results import Results

log = logging.getLogger(__name__)


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
        folder, names = predictions_dir(results.folder, name), evaluated_images(results, [name])
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

"""Run every variant in models/manifest.json over the dataset: cached predictions, accuracy, honest timing.

Usage: python benchmark.py [--only NAME ...] [--limit N] [--threads N] [--threshold 0.5] [--force]

Writes results/predictions/<model>/<event>/<stem>.txt (WIDER submission format), results/benchmark_results.csv
(one row per model and image), results/accuracy.csv (one row per model), results/timing_results.csv (one row per
model and phase) and results/run.json (the effective configuration). Interrupted and started again, it only
runs the images whose predictions are missing.
"""

from __future__ import annotations

import argparse
import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from facecompress.cli import add_dataset_args, setup_logging
from facecompress.core.artifacts import (ACCURACY_CSV, CACHE_INFO, IMAGES_CSV, LATENCY_PHASE, MANIFEST, REFERENCE,
                                         RUN_JSON, TIMING_CSV, TORCH_ROW, predictions_dir, read_manifest)
from facecompress.core.atomic import write_csv, write_text
from facecompress.core.errors import InputError, check_known, exit_on_input_error
from facecompress.data.dataset import open_dataset
from facecompress.data.wider import read_mat_ground_truth
from facecompress.detectors import family_for
from facecompress.evaluation.accuracy import accuracy_row, image_rows
from facecompress.evaluation.submission import read_prediction_dir
from facecompress.run.loop import (SCORE_FLOOR, LoopTimings, fixed_input_timings, missing, open_cache, run_images,
                                   timing_rows, warm_up)
from facecompress.run.sessions import OnnxRunner
from facecompress.run.timing import cpu_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_args(parser)
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--out", default="results", help="output folder (default: %(default)s)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="benchmark only this variant (repeatable; default: every variant)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="confidence for TP/FP/FN, precision, recall, F1 (default: %(default)s)")
    parser.add_argument("--floor", type=float, default=SCORE_FLOOR,
                        help="lowest score kept in the prediction files (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed runs on a fixed input per model (default: %(default)s)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference row")
    parser.add_argument("--force", action="store_true", help="discard cached predictions and re-run everything")
    return parser.parse_args(argv)


def load_manifest(models: Path) -> dict:
    """The compression stage's manifest, or a one-line error saying what to run."""
    manifest = read_manifest(models / MANIFEST)
    if manifest is None or not manifest["variants"]:
        raise InputError(f"{models / MANIFEST}: no variants yet; run `python inference.py` first")
    return manifest


def chosen(manifest: dict, only: list[str] | None, torch_row: bool) -> list[str]:
    """Variant names to run, in manifest order, the PyTorch reference first."""
    names = ([TORCH_ROW] if torch_row else []) + list(manifest["variants"])
    check_known("--only", only, names, "in the manifest")
    return [n for n in names if not only or n in only]


def runner_for(name: str, manifest: dict, family, models: Path, threads: int | None):
    """An ONNX Runtime session for a manifest variant, or the family's framework model for the reference row."""
    if name != TORCH_ROW:
        return OnnxRunner(models / manifest["variants"][name]["file"], threads)
    import torch

    if threads:
        torch.set_num_threads(threads)
    return family.reference_runner(manifest)


def cache_key(name: str, manifest: dict, floor: float) -> dict:
    """What made a model's predictions; a change of any of it invalidates the cache."""
    entry = manifest["variants"].get(name, {})
    return {"model": name, "sha256": entry.get("sha256", manifest["provenance"]),
            "resolution": manifest["resolution"], "floor": floor}


def context(name: str, threads: int | None) -> dict:
    """Provenance columns every timing row carries."""
    runtime = "torch" if name == TORCH_ROW else "onnxruntime"
    provider = "torch CPU" if name == TORCH_ROW else "CPUExecutionProvider"
    return {"runtime": f"{runtime} {metadata.version(runtime)}", "provider": provider,
            "threads": threads or "all", "batch_size": 1, "cpu": cpu_model(),
            "python": platform.python_version(), "numpy": metadata.version("numpy")}


def run_model(name: str, manifest: dict, args: argparse.Namespace, dataset, out: Path) -> list[dict] | None:
    """Predict the missing images of one model and time it; None when nothing had to run (timings kept)."""
    folder = predictions_dir(out, name)
    open_cache(folder, cache_key(name, manifest, args.floor), args.force)
    todo = missing(dataset, folder)
    if not todo:
        return None
    family = family_for(manifest)
    runner = runner_for(name, manifest, family, Path(args.models), args.threads)
    warm_up(runner, family, args.warmup)
    timings: LoopTimings = run_images(runner, family, dataset, todo, folder, name, args.floor, args.skip_unreadable)
    fixed = fixed_input_timings(runner, family, dataset, args.warmup, args.repeats)
    return timing_rows(name, timings, fixed, context(name, args.threads))


def merged_timings(path: Path, fresh: dict[str, list[dict]], names: list[str]) -> list[dict]:
    """Fresh rows for the models that ran, earlier rows for those whose predictions were all cached."""
    earlier = pd.read_csv(path).to_dict("records") if path.is_file() else []
    keep = [r for r in earlier if r["model"] in names and r["model"] not in fresh]
    return keep + [r for rows in fresh.values() for r in rows]


def accuracy_tables(names: list[str], dataset, out: Path, threshold: float) -> tuple[list[dict], list[dict]]:
    """Per-image and per-model rows for every model, from the cached predictions alone."""
    ground_truth = read_mat_ground_truth(dataset.split_dir)
    predictions = {n: read_prediction_dir(predictions_dir(out, n)) for n in names}
    reference = predictions.get(REFERENCE)
    images = [row for n in names for row in image_rows(n, predictions[n], dataset, threshold)]
    models = [accuracy_row(n, predictions[n], None if n == REFERENCE else reference, dataset, ground_truth,
                           threshold) for n in names]
    return images, models


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    out, models = Path(args.out), Path(args.models)
    manifest = load_manifest(models)
    dataset = open_dataset(args.images, args.split, args.limit)
    names = chosen(manifest, args.only, not args.no_torch)
    print(f"model: {family_for(manifest).describe()}, {manifest['provenance']}; data: {dataset.describe()}")
    fresh = {}
    for name in names:
        rows = run_model(name, manifest, args, dataset, out)
        if rows is not None:
            fresh[name] = rows
    timing = merged_timings(out / TIMING_CSV, fresh, names)
    images, accuracy = accuracy_tables(names, dataset, out, args.threshold)
    provenance = {"provenance": manifest["provenance"], "dataset": dataset.describe()}
    write_csv(out / IMAGES_CSV, images)
    write_csv(out / ACCURACY_CSV, [{**row, **provenance} for row in accuracy])
    write_csv(out / TIMING_CSV, timing)
    write_text(out / RUN_JSON, json.dumps({**vars(args), **provenance, "models": names,
                                             "cache_info": CACHE_INFO}, indent=1) + "\n")
    print(pd.DataFrame(accuracy)[["model", "precision", "recall", "f1", "ap50", "wider_easy", "wider_medium",
                                  "wider_hard", "agreement_ap50"]].to_string(index=False))
    inference = pd.DataFrame(timing).query(f"phase == '{LATENCY_PHASE}'")
    print(inference[["model", "median_ms", "p90_ms", "images_per_s"]].to_string(index=False))
    print(f"results in {out}/ ({manifest['provenance']}; {dataset.describe()})")


if __name__ == "__main__":
    main()

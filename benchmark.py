"""Run every variant in models/manifest.json over the dataset: cached predictions, accuracy, honest timing.

Usage: python benchmark.py [--only NAME ...] [--limit N] [--threads N] [--threshold 0.5] [--force]

Writes results/predictions/<model>/<event>/<stem>.txt (WIDER submission format), results/benchmark_results.csv
(one row per model and image), results/accuracy.csv (one row per model), results/timing_results.csv (one row per
model and phase) and results/run.json (the effective configuration). Interrupted and started again, it only
runs the images whose predictions are missing. --only narrows what is run; the tables keep every model whose
cached predictions still match the manifest. Fixed-input latency is timed for the models that ran (and the
reference, for the ratios) together, in interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

from facecompress.cli import add_dataset_args, reports_wall_time, setup_logging
from facecompress.core.artifacts import (ACCURACY_CSV, CACHE_INFO, FLAGSHIP, IMAGES_CSV, LATENCY_PHASE, RUN_JSON,
                                         TIMING_CSV, TORCH_ROW, family_of, header_of, load_manifest,
                                         predictions_dir, reference_of)
from facecompress.core.atomic import write_csv, write_text
from facecompress.core.errors import InputError, check_known, exit_on_input_error
from facecompress.data.dataset import open_dataset
from facecompress.data.wider import read_mat_ground_truth
from facecompress.detectors import family_for
from facecompress.evaluation.accuracy import accuracy_row, image_rows
from facecompress.evaluation.submission import read_prediction_dir
from facecompress.run.cache import cache_key, cached_models, missing, open_cache, scored_images
from facecompress.run.latency import busy_models, latency_rows
from facecompress.run.loop import SCORE_FLOOR, fixed_input, loop_rows, run_images, warm_up
from facecompress.run.sessions import OnnxRunner, check_file
from facecompress.run.timing import BUSY_SPREAD, cpu_isa, cpu_model

log = logging.getLogger("benchmark")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_args(parser)
    parser.add_argument("--models", default="models", help="folder holding manifest.json (default: %(default)s)")
    parser.add_argument("--out", default="results", help="output folder (default: %(default)s)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="run only this variant (repeatable); the tables keep every cached model "
                             "(default: every variant)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="confidence for TP/FP/FN, precision, recall, F1 (default: %(default)s)")
    parser.add_argument("--floor", type=float, default=SCORE_FLOOR,
                        help="lowest score kept in the prediction files (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per model before timing (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="interleaved timing rounds on a fixed input; p90 is reported from 20 up "
                             "(default: %(default)s)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference row")
    parser.add_argument("--force", action="store_true", help="discard cached predictions and re-run everything")
    return parser.parse_args(argv)


def every_model(manifest: dict, torch_row: bool) -> list[str]:
    """Every model a run can cover, in manifest order, the flagship's PyTorch reference first."""
    return ([TORCH_ROW] if torch_row and FLAGSHIP in manifest["families"] else []) + list(manifest["variants"])


def chosen(manifest: dict, only: list[str] | None, torch_row: bool) -> list[str]:
    """Variant names to run, in manifest order, the PyTorch reference first."""
    names = every_model(manifest, torch_row)
    check_known("--only", only, names, "in the manifest")
    return [n for n in names if not only or n in only]


def runner_for(name: str, manifest: dict, family, models: Path, threads: int | None):
    """An ONNX Runtime session for a manifest variant (its file checked first), or the framework reference model."""
    if name != TORCH_ROW:
        return OnnxRunner(check_file(manifest["variants"][name], models), threads)
    import torch

    if threads:
        torch.set_num_threads(threads)
    return family.reference_runner(header_of(manifest, name))


def context(name: str, threads: int | None) -> dict:
    """Provenance columns every timing row carries: what ran it, and on which CPU (with its INT8 instruction sets)."""
    runtime = "torch" if name == TORCH_ROW else "onnxruntime"
    provider = "torch CPU" if name == TORCH_ROW else "CPUExecutionProvider"
    return {"runtime": f"{runtime} {metadata.version(runtime)}", "provider": provider,
            "threads": threads or "all", "batch_size": 1, "cpu": cpu_model(), "cpu_isa": cpu_isa(),
            "machine": platform.node(), "python": platform.python_version(), "numpy": metadata.version("numpy")}


def predict(name: str, manifest: dict, args: argparse.Namespace, dataset, out: Path):
    """Predict the images `name` still lacks; its runner (for timing) and loop rows, or None when all were cached."""
    folder = predictions_dir(out, name)
    open_cache(folder, cache_key(name, manifest, args.floor), args.force)
    todo = missing(dataset.present, folder)
    if not todo:
        return None
    family = family_for(header_of(manifest, name))
    runner = runner_for(name, manifest, family, Path(args.models), args.threads)
    warm_up(runner, family, args.warmup)
    timings = run_images(runner, family, dataset, todo, folder, name, args.floor, args.skip_unreadable)
    return runner, loop_rows(name, timings, context(name, args.threads), len(dataset.present))


def time_fixed_input(runners: dict, manifest: dict, args: argparse.Namespace, dataset) -> list[dict]:
    """Fixed-input rows of the models that ran, each family's reference timed alongside them for the ratios.

    Every model runs on its own family's preprocessing of the same image, all in the same rounds.
    """
    references = {name: reference_of(family_of(manifest, name)) for name in list(runners)}
    for reference in set(references.values()) - set(runners):
        if reference in manifest["variants"]:
            runners[reference] = runner_for(reference, manifest, None, Path(args.models), args.threads)
            references[reference] = reference
    batches = {family: fixed_input(family_for(manifest["families"][family]), dataset)
               for family in {family_of(manifest, name) for name in runners}}
    calls = {name: (lambda r=runner, b=batches[family_of(manifest, name)]: r.run(b)) for name, runner in runners.items()}
    return latency_rows(calls, references, args.repeats, args.warmup,
                        {name: context(name, args.threads) for name in calls})


def merged_timings(path: Path, fresh: list[dict], names: list[str]) -> list[dict]:
    """Fresh rows, and earlier rows of each (model, phase) that was not measured again, for the models tabled."""
    earlier = pd.read_csv(path).to_dict("records") if path.is_file() else []
    measured = {(r["model"], r["phase"]) for r in fresh}
    return [r for r in earlier if r["model"] in names and (r["model"], r["phase"]) not in measured] + fresh


def tabled(manifest: dict, out: Path, dataset, floor: float, torch_row: bool) -> tuple[list[str], list, list[str]]:
    """(models whose cached predictions cover every scored image, the scored images, the skipped image names)."""
    names = cached_models(every_model(manifest, torch_row), manifest, out, floor)
    scored, skipped = scored_images(dataset, [predictions_dir(out, n) for n in names])
    complete = [n for n in names if not missing(scored, predictions_dir(out, n))]
    for name in sorted(set(names) - set(complete)):
        log.warning("%s: predictions cover %d of %d images; left out of the tables until "
                    "`python benchmark.py --only %s` completes them", name,
                    len(scored) - len(missing(scored, predictions_dir(out, name))), len(scored), name)
    return complete, scored, skipped


def accuracy_tables(names: list[str], manifest: dict, dataset, out: Path,
                    threshold: float) -> tuple[list[dict], list[dict]]:
    """Per-image and per-model rows for every model from the cached predictions alone; each model's agreement is
    with its own family's FP32 original, and each row says the family and where its weights came from."""
    ground_truth = read_mat_ground_truth(dataset.split_dir)
    predictions = {n: read_prediction_dir(predictions_dir(out, n)) for n in names}
    images = [row for n in names for row in image_rows(n, predictions[n], dataset, threshold)]
    models = []
    for n in names:
        family = family_of(manifest, n)
        reference = None if n == reference_of(family) else predictions.get(reference_of(family))
        row = accuracy_row(n, predictions[n], reference, dataset, ground_truth, threshold)
        models.append({**row, "family": family, "provenance": manifest["families"][family]["provenance"]})
    return images, models


def report(accuracy: list[dict], timing: list[dict], busy: list[str]) -> None:
    """The console summary: accuracy, then latency with its paired speed-ups, and a word on a busy machine."""
    print(pd.DataFrame(accuracy).reindex(columns=["model", "precision", "recall", "f1", "ap50", "wider_easy",
                                                  "wider_medium", "wider_hard", "agreement_ap50"]).to_string(index=False))
    latency = pd.DataFrame(timing).query(f"phase == '{LATENCY_PHASE}'")
    print(latency[["model", "median_ms", "p90_ms", "speedup", "spread", "images_per_s"]].to_string(index=False))
    print(f"CPU: {cpu_model()} ({cpu_isa()})")
    if busy:
        print(f"BUSY MACHINE: the timed rounds of {', '.join(busy)} spread by more than {BUSY_SPREAD:.0%} of their "
              "median; speed-ups are paired per round, but the milliseconds are inflated. Re-run on a quiet machine.")


def run_all(names: list[str], manifest: dict, args: argparse.Namespace, dataset, out: Path):
    """Predict with every chosen model; (loop and latency rows, failures). A broken model never stops the rest."""
    runners, rows, failures = {}, [], {}
    for name in names:
        try:
            done = predict(name, manifest, args, dataset, out)
        except InputError as err:
            failures[name] = str(err)
            log.error("%s: %s", name, err)
            continue
        if done is not None:
            runners[name], loop = done
            rows += loop
    if runners:
        rows += time_fixed_input(runners, manifest, args, dataset)
    return rows, failures


@exit_on_input_error
@reports_wall_time
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    out, manifest = Path(args.out), load_manifest(Path(args.models))
    dataset = open_dataset(args.images, args.split, args.limit)
    names = chosen(manifest, args.only, not args.no_torch)
    for family, header in manifest["families"].items():
        print(f"{family}: {header['model']}, {header['provenance']}")
    print(f"data: {dataset.describe()}")
    fresh, failures = run_all(names, manifest, args, dataset, out)
    models, scored, skipped = tabled(manifest, out, dataset, args.floor, not args.no_torch)
    if not models:
        raise InputError(f"{out}: no model has predictions for every scored image" + "".join(
            f"; {name}: {message}" for name, message in failures.items()))
    scored_set = dataset.restricted(scored)
    timing = merged_timings(out / TIMING_CSV, fresh, models)
    images, accuracy = accuracy_tables(models, manifest, scored_set, out, args.threshold)
    provenance = {"provenance": {f: h["provenance"] for f, h in manifest["families"].items()},
                  "dataset": scored_set.describe(skipped)}
    write_csv(out / IMAGES_CSV, images)
    write_csv(out / ACCURACY_CSV, [{**row, "dataset": provenance["dataset"]} for row in accuracy])
    write_csv(out / TIMING_CSV, timing)
    write_text(out / RUN_JSON, json.dumps({**vars(args), **provenance, "models": models, "ran": names,
                                             "skipped_images": skipped, "failed": failures,
                                             "busy": busy_models(timing), "cache_info": CACHE_INFO}, indent=1) + "\n")
    report(accuracy, timing, busy_models(fresh))
    ran = list(dict.fromkeys(row["model"] for row in fresh if row["phase"] != LATENCY_PHASE))
    print(f"ran: {', '.join(ran) or 'nothing'}; reused cached predictions and timings: "
          f"{', '.join(n for n in models if n not in ran) or 'none'}")
    print(f"results in {out}/ ({scored_set.describe(skipped)})")
    for name, message in failures.items():
        print(f"error: {name}: {message}", file=sys.stderr)
    if failures:
        raise SystemExit(2)


if __name__ == "__main__":
    main()

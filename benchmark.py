"""Run every variant in models/manifest.json over the dataset: cached predictions, accuracy, honest timing.

Usage: python benchmark.py [--only NAME ...] [--runtime onnxruntime openvino] [--limit N] [--threads N]
                           [--threshold 0.5] [--force]

Writes results/predictions/<model>/<event>/<stem>.txt (WIDER submission format), results/benchmark_results.csv
(one row per model and image), results/accuracy.csv (one row per model), results/timing_results.csv (one row per
model and phase) and results/run.json (the effective configuration). Interrupted and started again, it only
runs the images whose predictions are missing. --only narrows what is run; the tables keep every model whose
cached predictions still match the manifest. Fixed-input latency is timed for the models that ran (and the
reference, for the ratios) together, in interleaved rounds. A row is (variant, runtime, precision): with --runtime
openvino each variant also gets OpenVINO rows, its predictions cached apart and timed in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from facecompress.cli import add_dataset_args, reports_wall_time, setup_logging
from facecompress.core.artifacts import (ACCURACY_CSV, CACHE_INFO, IMAGES_CSV, LATENCY_PHASE, RUN_JSON, TIMING_CSV,
                                         load_manifest)
from facecompress.core.atomic import write_csv, write_text
from facecompress.core.errors import InputError, exit_on_input_error
from facecompress.data.dataset import open_dataset
from facecompress.data.identity import ground_truth_files, image_digests
from facecompress.run.latency import busy_models
from facecompress.run.loop import SCORE_FLOOR
from facecompress.run.runtimes import planned_rows, runtime_names
from facecompress.run.stage import accuracy_tables, chosen, run_all, tabled, timing_table
from facecompress.run.timing import BUSY_SPREAD, cpu_isa, cpu_model


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
    parser.add_argument("--runtime", nargs="+", choices=runtime_names(), default=["onnxruntime"],
                        help="CPU runtimes to run every variant in; openvino adds rows `<variant>@openvino` (FP32) "
                             "and, on a CPU with BF16, `@openvino-bf16` rows of each original and INT8 file; "
                             "speed-ups stay against ONNX Runtime's FP32 original (default: %(default)s)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="where the prediction pass runs: here, or on Ray workers; latency is always timed "
                             "here (default: %(default)s)")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: a running Ray cluster, e.g. HEAD_IP:6379 (default: start a "
                             "local one)")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --engine ray: single-thread workers (default: one per CPU of the cluster)")
    parser.add_argument("--force", action="store_true", help="discard cached predictions and re-run everything")
    return parser.parse_args(argv)


def report(accuracy: list[dict], timing: list[dict], busy: list[str]) -> None:
    """The console summary: accuracy, then latency with its paired speed-ups, and a word on a busy machine."""
    print(pd.DataFrame(accuracy).reindex(columns=["model", "precision", "recall", "f1", "ap50", "wider_easy",
                                                  "wider_medium", "wider_hard", "agreement_ap50"]).to_string(index=False))
    latency = pd.DataFrame(timing, columns=["model", "phase", "median_ms", "p90_ms", "speedup", "spread",
                                            "images_per_s"])
    print(latency[latency["phase"] == LATENCY_PHASE].drop(columns="phase").to_string(index=False))
    print(f"CPU: {cpu_model()} ({cpu_isa()})")
    if busy:
        print(f"BUSY MACHINE: the timed rounds of {', '.join(busy)} spread by more than {BUSY_SPREAD:.0%} of their "
              "median; speed-ups are paired per round, but the milliseconds are inflated. Re-run on a quiet machine.")


@exit_on_input_error
@reports_wall_time
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: must be at least 1")
    out, manifest = Path(args.out), load_manifest(Path(args.models))
    dataset = open_dataset(args.images, args.split, args.limit)
    names, unrun = planned_rows(chosen(manifest, args.only, not args.no_torch), manifest, args.runtime)
    for message in unrun.values():
        print(message)
    for family, header in manifest["families"].items():
        print(f"{family}: {header['model']}, {header['provenance']}")
    print(f"data: {dataset.describe()}")
    failures: dict[str, str] = {}
    digests = image_digests(dataset)
    runners, loop = run_all(names, manifest, args, dataset, digests, out, failures)
    models, scored, skipped = tabled(manifest, out, dataset, digests, args)
    if not models:
        raise InputError(f"{out}: no model has predictions for every scored image" + "".join(
            f"; {name}: {message}" for name, message in failures.items()))
    scored_set = dataset.restricted(scored)
    timing, fresh = timing_table(runners, loop, models, manifest, args, dataset, out, failures)
    images, accuracy = accuracy_tables(models, manifest, scored_set, out, args.threshold)
    provenance = {"provenance": {f: h["provenance"] for f, h in manifest["families"].items()},
                  "dataset": scored_set.describe(skipped)}
    write_csv(out / IMAGES_CSV, images)
    write_csv(out / ACCURACY_CSV, [{**row, "dataset": provenance["dataset"]} for row in accuracy])
    write_csv(out / TIMING_CSV, timing)
    write_text(out / RUN_JSON, json.dumps({**vars(args), **provenance, "models": models, "ran": names,
                                             "skipped_images": skipped, "skipped_rows": unrun, "failed": failures,
                                             "busy": busy_models(timing), "cache_info": CACHE_INFO,
                                             "ground_truth": ground_truth_files(dataset.split_dir)}, indent=1) + "\n")
    report(accuracy, timing, busy_models(fresh))
    ran = list(dict.fromkeys(m for row in fresh if row["phase"] != LATENCY_PHASE for m in row["model"].split(",")))
    print(f"ran: {', '.join(ran) or 'nothing'}; reused cached predictions and timings: "
          f"{', '.join(n for n in models if n not in ran) or 'none'}")
    print(f"results in {out}/ ({scored_set.describe(skipped)})")
    for name, message in failures.items():
        print(f"error: {name}: {message}", file=sys.stderr)
    if failures:
        raise SystemExit(2)


if __name__ == "__main__":
    main()

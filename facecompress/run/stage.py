"""benchmark.py's stage: which models a run covers, predicting with them, timing them together, and the tables.

Every table is built from the cached predictions alone, so `--only` narrows what is run, never what is
reported; a broken model becomes one line of error while the others still run.
"""

from __future__ import annotations

import argparse
import logging
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from ..core.artifacts import (FLAGSHIP, LATENCY_PHASE, TIMING_CSV, TORCH_ROW, family_of, header_of,
                              predictions_dir, reference_of, row_columns)
from ..core.errors import InputError, check_known
from ..core.rows import is_default, variant_of
from ..data.identity import ground_truth_digest
from ..data.wider import read_mat_ground_truth
from ..detectors import family_for
from ..evaluation.accuracy import accuracy_row, image_rows
from ..evaluation.submission import read_prediction_dir
from .cache import cached_models, missing, open_cache, row_key, scored_images
from .latency import latency_rows
from .loop import fixed_input, loop_rows, run_images, warm_up
from .runtimes import candidate_rows, open_row, record
from .sessions import OnnxRunner, check_file
from .timing import cpu_isa, cpu_model

log = logging.getLogger(__name__)

DISTRIBUTED_PHASE = "distributed_pass"  # the Ray pass's throughput: never a latency


def every_model(manifest: dict, torch_row: bool) -> list[str]:
    """Every model a run can cover, in manifest order, the flagship's PyTorch reference first."""
    return ([TORCH_ROW] if torch_row and FLAGSHIP in manifest["families"] else []) + list(manifest["variants"])


def chosen(manifest: dict, only: list[str] | None, torch_row: bool) -> list[str]:
    """Variant names to run, in manifest order, the PyTorch reference first."""
    names = every_model(manifest, torch_row)
    check_known("--only", only, names, "in the manifest")
    return [n for n in names if not only or n in only]


def runner_for(name: str, manifest: dict, family, models: Path, threads: int | None):
    """A row's runner in its runtime (the variant's file checked first), or the framework reference model."""
    if name != TORCH_ROW:
        return open_row(name, check_file(manifest["variants"][variant_of(name)], models), threads)
    import torch

    if threads:
        torch.set_num_threads(threads)
    return family.reference_runner(header_of(manifest, name))


def context(name: str, threads: int | None, runner=None) -> dict:
    """Provenance columns every timing row carries: what ran it (runtime, version, the precision and threads its
    runner reports), and on which CPU (with its INT8 and BF16 instruction sets)."""
    return {**record(name, runner, threads), "batch_size": 1, "cpu": cpu_model(), "cpu_isa": cpu_isa(),
            "machine": platform.node(), "python": platform.python_version(), "numpy": metadata.version("numpy")}


def open_runner(name: str, manifest: dict, args: argparse.Namespace, failures: dict[str, str]):
    """The model's runner, or None with the one-line reason in `failures`: a broken model never stops the rest."""
    try:
        return runner_for(name, manifest, family_for(header_of(manifest, name)), Path(args.models), args.threads)
    except InputError as err:
        failures[name] = str(err)
        log.error("%s: %s", name, err)
        return None


def predict(name: str, manifest: dict, args: argparse.Namespace, dataset, digests: dict[str, str], out: Path,
            failures: dict[str, str]):
    """Predict the images `name` still lacks (or whose bytes changed: `digests`); its runner (for timing) and loop
    rows, or None when all were cached or the model cannot be loaded. An unreadable image (without
    --skip-unreadable) stops the whole run."""
    folder = predictions_dir(out, name)
    open_cache(folder, row_key(name, manifest, args.floor, args.threads), digests, args.force)
    todo = missing(dataset.present, folder)
    runner = open_runner(name, manifest, args, failures) if todo else None
    if runner is None:
        return None
    family = family_for(header_of(manifest, name))
    warm_up(runner, family, args.warmup)
    timings = run_images(runner, family, dataset, todo, folder, name, args.floor, args.skip_unreadable)
    return runner, loop_rows(name, timings, context(name, args.threads, runner), len(dataset.present))


def time_fixed_input(runners: dict, manifest: dict, args: argparse.Namespace, dataset,
                     failures: dict[str, str]) -> list[dict]:
    """Fixed-input rows of `runners`, each family's reference timed alongside them for the ratios.

    Every model runs on its own family's preprocessing of the same image, all in the same rounds; a
    reference that cannot be loaded leaves its family's speed-ups unmeasured, not the run stopped.
    """
    references = {name: reference_of(family_of(manifest, name)) for name in runners}
    for reference in dict.fromkeys(references.values()):  # in model order: the rows come out the same every run
        if reference not in runners and reference in manifest["variants"]:
            runner = open_runner(reference, manifest, args, failures)
            if runner is not None:
                runners[reference], references[reference] = runner, reference
    batches = {family: fixed_input(family_for(manifest["families"][family]), dataset)
               for family in {family_of(manifest, name) for name in runners}}
    calls = {name: (lambda r=runner, b=batches[family_of(manifest, name)]: r.run(b)) for name, runner in runners.items()}
    return latency_rows(calls, references, args.repeats, args.warmup,
                        {name: context(name, args.threads, runners[name]) for name in calls})


def earlier_timings(path: Path) -> list[dict]:
    """The timing rows an earlier run wrote; none when there is no file or it cannot be read (it is rewritten)."""
    if not path.is_file():
        return []
    try:
        return pd.read_csv(path).to_dict("records")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        log.warning("%s: unreadable (%s); earlier timings are measured again", path, err)
        return []


def untimed(names: list[str], earlier: list[dict]) -> list[str]:
    """Tabled models with no fixed-input latency yet (a run stopped while timing, or a cache from elsewhere)."""
    timed = {row["model"] for row in earlier if row["phase"] == LATENCY_PHASE}
    return [name for name in names if name not in timed]


def merged_timings(earlier: list[dict], fresh: list[dict], names: list[str]) -> list[dict]:
    """Fresh rows, and earlier rows of each (model, phase) not measured again, for the models tabled; the Ray
    pass's throughput row is kept until a new pass replaces it."""
    measured = {(r["model"], r["phase"]) for r in fresh}
    phases = {r["phase"] for r in fresh}
    kept = [r for r in earlier if (r["model"] in names and (r["model"], r["phase"]) not in measured)
            or (r["phase"] == DISTRIBUTED_PHASE and DISTRIBUTED_PHASE not in phases)]
    return kept + fresh


def tabled(manifest: dict, out: Path, dataset, digests: dict[str, str], args: argparse.Namespace,
           ) -> tuple[list[str], list, list[str]]:
    """(models whose cached predictions cover every scored image with files made from its current bytes, the scored
    images, the skipped image names)."""
    names = cached_models(candidate_rows(every_model(manifest, not args.no_torch), manifest), manifest, out,
                          args.floor, args.threads)
    scored, skipped = scored_images(dataset, [predictions_dir(out, n) for n in names])
    lacking = {n: len(missing(scored, predictions_dir(out, n), digests)) for n in names}
    complete = [n for n in names if not lacking[n]]
    for name in sorted(set(names) - set(complete)):
        log.warning("%s: current predictions cover %d of %d images; left out of the tables until "
                    "`python benchmark.py --only %s` completes them", name, len(scored) - lacking[name],
                    len(scored), name)
    return complete, scored, skipped


def accuracy_tables(names: list[str], manifest: dict, dataset, out: Path,
                    threshold: float) -> tuple[list[dict], list[dict]]:
    """Per-image and per-model rows for every model from the cached predictions alone; each model's agreement is
    with its own family's FP32 original, and each row says the family, where its weights came from and which
    ground truth scored it."""
    ground_truth, truth_digest = read_mat_ground_truth(dataset.split_dir), ground_truth_digest(dataset.split_dir)
    predictions = {n: read_prediction_dir(predictions_dir(out, n)) for n in names}
    images = [row for n in names for row in image_rows(n, predictions[n], dataset, threshold)]
    models = []
    for n in names:
        family = family_of(manifest, n)
        reference = None if n == reference_of(family) else predictions.get(reference_of(family))
        row = accuracy_row(n, predictions[n], reference, dataset, ground_truth, threshold)
        models.append({**row, **row_columns(n), "family": family,
                       "provenance": manifest["families"][family]["provenance"],
                       "ground_truth_sha256": truth_digest})
    return images, models


def predict_on_cluster(names: list[str], manifest: dict, args: argparse.Namespace, dataset, digests: dict[str, str],
                       out: Path, failures: dict[str, str]) -> tuple[dict, list[dict]]:
    """The prediction pass of the ONNX variants on Ray (imported only here); (local runners to time, its row).

    Only images whose prediction file is missing are scheduled; the files written are the serial path's,
    byte for byte. Latency is then timed here, on this machine, never on the loaded cluster.
    """
    try:
        from .distributed import model_payload, predict_on_ray, start_ray
    except ImportError as err:
        raise InputError(f"--engine ray: Ray cannot be imported ({err}); `pip install -r requirements.txt`") from None
    models, todo = {}, {}
    for name in names:
        open_cache(predictions_dir(out, name), row_key(name, manifest, args.floor, args.threads), digests,
                   args.force)
        todo[name] = missing(dataset.present, predictions_dir(out, name))
        try:
            models[name] = model_payload(manifest, name, args.models) if todo[name] else None
        except InputError as err:
            failures[name] = str(err)
            log.error("%s: %s", name, err)
    models = {n: m for n, m in models.items() if m is not None}
    if not models:
        return {}, []
    try:
        start_ray(args.address, args.workers)
        summary = predict_on_ray(models, {n: todo[n] for n in models}, dataset, out, args.floor,
                                 args.skip_unreadable, args.workers)
    except InputError:
        raise  # an unreadable image or a model the workers cannot load: already one line
    except Exception as err:  # Ray raises its own types for a cluster it cannot reach or workers dead for good
        detail = (str(err).splitlines() or ["no detail"])[0]
        raise InputError(f"the Ray pass stopped ({type(err).__name__}: {detail}); every "
                         "finished prediction is kept, run benchmark.py again to finish") from None
    runners = {n: OnnxRunner(check_file(manifest["variants"][n], args.models), args.threads) for n in models}
    row = {"model": ",".join(models), "phase": DISTRIBUTED_PHASE, "n": summary["images"],
           "images_per_s": summary["images_per_s"], "workers": summary["workers"],
           "threads": summary["threads"], "overhead_ms_per_image": summary["overhead_ms_per_image"],
           "machine": f"ray {args.address or 'local'}"}
    return runners, [row]


def run_all(names: list[str], manifest: dict, args: argparse.Namespace, dataset, digests: dict[str, str], out: Path,
            failures: dict[str, str]) -> tuple[dict, list[dict]]:
    """Predict with every chosen model: (the runners of the models that ran, their loop rows)."""
    runners, rows = {}, []
    serial = [n for n in names if args.engine == "local" or n == TORCH_ROW or not is_default(n)]  # Ray runs ORT
    if args.engine == "ray":
        runners, rows = predict_on_cluster([n for n in names if n not in serial], manifest, args, dataset, digests,
                                           out, failures)
    for name in serial:
        done = predict(name, manifest, args, dataset, digests, out, failures)
        if done is not None:
            runners[name], loop = done
            rows += loop
    return runners, rows


def timing_table(runners: dict, loop: list[dict], models: list[str], manifest: dict, args: argparse.Namespace,
                 dataset, out: Path, failures: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """(every timing row of the tabled models, the rows measured now): the models that ran and any tabled model
    without a latency yet are timed together, here, in shared rounds."""
    earlier = earlier_timings(out / TIMING_CSV)
    for name in untimed(models, earlier):
        if name not in runners and (runner := open_runner(name, manifest, args, failures)) is not None:
            runners[name] = runner
    fresh = loop + (time_fixed_input(runners, manifest, args, dataset, failures) if runners else [])
    return merged_timings(earlier, fresh, models), fresh

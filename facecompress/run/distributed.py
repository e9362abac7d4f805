"""The benchmark's prediction pass on a Ray cluster: the files `run_images` writes, made by many workers.

The driver reads each image's bytes and sends a few images per task through Ray's object store, so no
worker needs the dataset or the models on its disk. A worker builds one ONNX session per model from the
file's bytes, decodes each image exactly as `load_rgb` does, runs exactly `loop.detect` and sends back the
submission rows. Only the driver writes, one atomic file per image as its batch comes back: a killed driver
keeps every finished file, and a task Ray re-runs after a worker died is still written once. Nothing here
is timed per image: latency stays serial and local (`latency`), this pass is for accuracy and throughput.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

import numpy as np
import ray
from tqdm import tqdm

from ..core.artifacts import header_of, predictions_dir
from ..core.errors import InputError
from ..data.dataset import Dataset
from ..data.images import decode_rgb, read_bytes
from ..data.wider import ImageAnnotation
from ..detectors import family_for
from ..detectors.family import Family
from ..evaluation.submission import prediction_path, write_prediction_file
from .loop import detect
from .sessions import OnnxRunner, check_file

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]  # shipped to the workers, which may have no copy of the repository
BATCH = 4  # images per task: enough to hide the scheduling round trip, few enough to spread the tail
IN_FLIGHT = 2  # tasks queued per worker, so a worker never waits for the driver to hand it the next batch
RETRIES = 3  # restarts of a worker process that died (and re-runs of the task it held)


def start_ray(address: str | None = None, workers: int | None = None) -> None:
    """Join the cluster at `address`, or start a local one with `workers` CPUs (default: all); quiet and offline.

    A process already connected to Ray (a test's cluster, a notebook's) keeps its connection.
    """
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report to send home from an offline machine
    common = {"runtime_env": {"py_modules": [str(PACKAGE)]}, "logging_level": logging.WARNING,
              "log_to_driver": False}  # worker errors come back with the task; their logs would tear the progress bar
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, **common)


def model_payload(manifest: dict, name: str, root: str | os.PathLike) -> tuple[bytes, dict]:
    """(ONNX bytes, family header) of a manifest variant, its file checked against the manifest first."""
    entry = manifest["variants"][name]
    path = check_file(entry, root)
    if len(entry.get("files", [entry["file"]])) > 1:
        raise InputError(f"{path}: its weights are in external data files, which a session made from bytes "
                         "cannot find; run it without --engine ray")
    return path.read_bytes(), header_of(manifest, name)


class Predictor:
    """One Ray worker: the current model's session, built once from its bytes; image bytes in, submission rows out.

    Only one session is kept: tasks come model by model, and a session per model would multiply the memory.
    """

    def __init__(self, threads: int):
        self.threads = threads
        self.model: str | None = None
        self.runner: OnnxRunner | None = None
        self.family: Family | None = None

    def _load(self, model: str, header: dict, payload: list) -> None:
        """Build the session for `model` unless it is the current one; `payload` wraps the bytes' object ref."""
        if model != self.model:
            self.runner = OnnxRunner(ray.get(payload[0]), self.threads, label=model)
            self.family, self.model = family_for(header), model

    def predict(self, model: str, header: dict, payload: list, floor: float,
                images: list[tuple[str, str, bytes]]) -> tuple[list[tuple[str, np.ndarray | str]], float]:
        """((name, rows or the InputError's message) per image, seconds spent decoding and detecting)."""
        self._load(model, header, payload)
        start, results = time.perf_counter(), []
        for name, path, data in images:
            try:
                image = decode_rgb(data, path)
            except InputError as err:
                results.append((name, str(err)))
                continue
            results.append((name, detect(self.runner, self.family, image, floor)))
        return results, time.perf_counter() - start


def _unreadable(message: str, skip: bool) -> None:
    """The serial loop's rule: an unreadable image stops the run, or with `skip` is logged and left unpredicted."""
    if not skip:
        raise InputError(message)
    log.warning("skipping %s", message)


def _batches(todo: dict[str, list[ImageAnnotation]], size: int) -> deque[tuple[str, list[ImageAnnotation]]]:
    """(model, images) tasks, model by model, so each worker builds each model's session once."""
    return deque((model, images[i:i + size]) for model, images in todo.items() for i in range(0, len(images), size))


def _result(ref):
    """A task's result; an InputError raised on a worker comes back as its one line, not a remote traceback."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, InputError):
            raise err.cause from None
        raise


def worker_count(workers: int | None, threads: int) -> int:
    """Workers that fit the cluster's machines at `threads` CPUs each (default: as many as fit).

    A worker no machine can place would hold its tasks forever, so asking for more is cut down, with a warning.
    """
    slots = sum(int(node["Resources"].get("CPU", 0)) // threads for node in ray.nodes() if node["Alive"])
    if slots < 1:
        raise InputError(f"{threads} threads per worker: no machine of the Ray cluster has that many CPUs")
    if workers is not None and workers > slots:
        log.warning("%d workers of %d threads do not fit the cluster's machines; using %d", workers, threads, slots)
    return slots if workers is None else min(workers, slots)


class _Driver:
    """The driver's side of one pass: reads and hands out batches, writes what comes back, counts."""

    def __init__(self, models: dict[str, tuple[bytes, dict]], todo: dict[str, list[ImageAnnotation]],
                 dataset: Dataset, out: Path, floor: float, skip: bool, batch: int):
        self.headers = {model: header for model, (_, header) in models.items()}
        self.payloads = {model: [ray.put(models[model][0])] for model, images in todo.items() if images}
        self.queue = _batches(todo, batch)
        self.dataset, self.out, self.floor, self.skip = dataset, out, floor, skip
        self.pending: dict = {}  # task ref -> (worker, model, images in it)
        self.predicted = {model: 0 for model in todo}
        self.skipped: list[str] = []
        self.busy_s = 0.0
        self.progress = tqdm(total=sum(len(images) for images in todo.values()), desc="ray", unit="img", leave=False)

    def run(self, pool: list) -> None:
        """Keep every worker IN_FLIGHT tasks deep; write each batch as it comes back, in whatever order."""
        with self.progress:
            for worker in pool * IN_FLIGHT:
                self.submit(worker)
            while self.pending:
                [ref], _ = ray.wait(list(self.pending), num_returns=1)
                worker, model, count = self.pending.pop(ref)
                results, busy = _result(ref)
                self.busy_s += busy
                self.write(model, results)
                self.progress.update(count)
                self.submit(worker)

    def submit(self, worker) -> None:
        """Give `worker` the next batch that still has a readable image, if any is left."""
        while self.queue:
            model, images = self.queue.popleft()
            loaded = self.read(images)
            self.progress.update(len(images) - len(loaded))
            if loaded:
                ref = worker.predict.remote(model, self.headers[model], self.payloads[model], self.floor, loaded)
                self.pending[ref] = (worker, model, len(loaded))
                return

    def read(self, images: list[ImageAnnotation]) -> list[tuple[str, str, bytes]]:
        """(name, path, bytes) of each image of a batch; one the driver cannot read follows `_unreadable`."""
        loaded = []
        for annotation in images:
            path = self.dataset.image_path(annotation)
            try:
                loaded.append((annotation.name, str(path), read_bytes(path)))
            except InputError as err:
                _unreadable(str(err), self.skip)
                self.skipped.append(annotation.name)
        return loaded

    def write(self, model: str, results: list[tuple[str, np.ndarray | str]]) -> None:
        """Each image's prediction file, atomically and only here, so a task Ray re-ran is still written once."""
        folder = predictions_dir(self.out, model)
        for name, rows in results:
            if isinstance(rows, str):
                _unreadable(rows, self.skip)
                self.skipped.append(name)
                continue
            write_prediction_file(prediction_path(folder, name), name, rows)
            self.predicted[model] += 1

    def summary(self, wall_s: float, workers: int, threads: int) -> dict:
        """The pass's throughput; the overhead is worker time not spent on images (start-up, loading, waiting)."""
        images = sum(self.predicted.values())
        idle_s = wall_s * workers - self.busy_s
        return {"images": images, "per_model": self.predicted, "skipped": self.skipped, "wall_s": round(wall_s, 3),
                "images_per_s": round(images / wall_s, 3) if images else None, "workers": workers,
                "threads": threads, "busy_s": round(self.busy_s, 3),
                "overhead_ms_per_image": round(1000 * idle_s / images, 3) if images else None}


def predict_on_ray(models: dict[str, tuple[bytes, dict]], todo: dict[str, list[ImageAnnotation]], dataset: Dataset,
                   out: Path, floor: float, skip_unreadable: bool = False, workers: int | None = None,
                   threads: int = 1, batch: int = BATCH) -> dict:
    """Write the prediction files of the images in `todo` (model -> images still missing) with Ray workers.

    `models` maps each model to (its ONNX bytes, its family header); Ray must be started (`start_ray`).
    Returns the pass's throughput: images predicted (per model too), unreadable images skipped, wall
    seconds, images per second, workers, threads per worker, and the worker time not spent on images.
    """
    workers = worker_count(workers, threads)
    start = time.perf_counter()
    driver = _Driver(models, todo, dataset, out, floor, skip_unreadable, batch)
    actor = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)(Predictor)
    pool = [actor.options(num_cpus=threads).remote(threads) for _ in range(workers)]
    try:
        driver.run(pool)
    finally:
        for worker in pool:
            ray.kill(worker)
    return driver.summary(time.perf_counter() - start, workers, threads)

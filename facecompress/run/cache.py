"""Which predictions a benchmark run can trust, which it must make, and which images it scores.

Predictions live in `results/predictions/<model>/<event>/<stem>.txt` with every detection above a low
score floor (the official AP needs the low-score tail). `MODEL.json` beside them records what made them:
the key (the model file's sha256, or the reference model's source hashed anew; the family's decoder
version and parameters; the runtime with its version, the precision and the thread count; the floor) and,
per image, the digest of the bytes each file was predicted from. A changed key discards the folder; a
changed image discards only its own file; otherwise a restarted run only does the images whose file is
missing. A model's predictions enter the tables only when they cover every scored image with current files.
"""

from __future__ import annotations

import json
import logging
import shutil
from importlib import metadata
from pathlib import Path

from ..core.artifacts import CACHE_INFO, TORCH_ROW, header_of, predictions_dir
from ..core.atomic import write_text
from ..core.checksums import sha256_file
from ..core.errors import InputError
from ..core.rows import parse_row, variant_of
from ..data.dataset import Dataset
from ..data.wider import ImageAnnotation
from ..detectors import family_for
from ..evaluation.submission import prediction_path

log = logging.getLogger(__name__)


def source_digest(header: dict) -> str:
    """What the reference row's model is made from, hashed now: a replaced checkpoint never reuses old predictions."""
    source = header["source"]
    if source["kind"] != "checkpoint":
        return header["provenance"]
    path = Path(source["path"])
    if not path.is_file():
        raise InputError(f"{path}: the checkpoint the manifest was made from is gone; run `python inference.py`")
    digest = sha256_file(path)
    if digest != source["sha256"]:
        raise InputError(f"{path}: changed since the manifest was made (sha256 {digest[:12]}, recorded "
                         f"{source['sha256'][:12]}); run `python inference.py --checkpoint {path}` again")
    return digest


def runtime_label(name: str, manifest_name: str) -> str:
    """The runtime that makes a model's predictions, with its version (a new version may round differently)."""
    runtime = "torch" if manifest_name == TORCH_ROW else name
    return f"{runtime} {metadata.version(runtime)}"


def cache_key(name: str, manifest: dict, floor: float, threads: int | None = None, runtime: str = "onnxruntime",
              precision: str = "fp32") -> dict:
    """What made a model's predictions, images aside; a change of any of it invalidates the whole cache."""
    entry, header = manifest["variants"].get(name), header_of(manifest, name)
    digest = entry["sha256"] if entry is not None else source_digest(header)
    return {"model": name, "sha256": digest, "decoding": family_for(header).decoding, "floor": floor,
            "runtime": runtime_label(runtime, name), "precision": precision, "threads": threads or "all"}


def row_key(row: str, manifest: dict, floor: float, threads: int | None = None) -> dict:
    """The key of a result row's predictions: its variant's, with the runtime and precision the row names, so one
    runtime's predictions are never taken for another's."""
    parsed = parse_row(row)
    return cache_key(parsed.variant, manifest, floor, threads, runtime=parsed.runtime, precision=parsed.precision)


def open_cache(folder: Path, key: dict, images: dict[str, str], force: bool) -> None:
    """Keep the cached predictions made by the same key, and of those only the images whose bytes are unchanged.

    `images` maps each present image to its digest (`data.identity.image_digests`); the record written
    afterwards says which bytes every file in the folder was, or will be, predicted from.
    """
    record = None if force else read_record(folder)
    if record is None or record.get("key") != key:
        if folder.exists():
            log.info("%s: cached predictions are stale or --force given; starting over", folder)
            shutil.rmtree(folder)
        record = {"images": {}}
    recorded = record.get("images", {})
    changed = [n for n, digest in images.items() if recorded.get(n) != digest and prediction_path(folder, n).is_file()]
    for image in changed:
        prediction_path(folder, image).unlink()
    if changed:
        log.info("%s: %d image(s) changed since their predictions were made; predicting them again", folder,
                 len(changed))
    write_text(folder / CACHE_INFO, json.dumps({"key": key, "images": {**recorded, **images}}, indent=1,
                                               sort_keys=True) + "\n")


def read_record(folder: Path) -> dict | None:
    """The recorded key and image digests of a prediction folder, or None (no folder, or a damaged record)."""
    try:
        record = json.loads((folder / CACHE_INFO).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("images"), dict) else None


def read_key(folder: Path) -> dict | None:
    """The recorded cache key of a prediction folder, or None."""
    record = read_record(folder)
    return None if record is None else record.get("key")


def missing(annotations: tuple[ImageAnnotation, ...] | list[ImageAnnotation], folder: Path,
            images: dict[str, str] | None = None) -> list[ImageAnnotation]:
    """Images whose prediction file is not written yet or, given their digests, was made from other bytes."""
    recorded = (read_record(folder) or {"images": {}})["images"] if images is not None else {}
    return [a for a in annotations if not prediction_path(folder, a.name).is_file()
            or (images is not None and recorded.get(a.name) != images.get(a.name))]


def cached_models(names: list[str], manifest: dict, results: Path, floor: float,
                  threads: int | None = None) -> list[str]:
    """Models whose prediction folder was made by what the manifest now describes (any number of images)."""
    def current(name: str) -> bool:
        try:
            recorded, key = read_key(predictions_dir(results, name)), row_key(name, manifest, floor, threads)
        except InputError as err:  # the reference row's checkpoint changed or vanished
            log.warning("%s: cached predictions not used: %s", name, err)
            return False
        if recorded is not None and recorded != key:  # made another way: say which, not leave it out silently
            changed = sorted(k for k in key if recorded.get(k) != key[k])
            log.warning("%s: cached predictions left out of the tables: made with another %s; "
                        "`python benchmark.py --only %s` (with the same flags) predicts them again", name,
                        ", ".join(changed), name)
        return recorded == key
    return [n for n in names if (variant_of(n) in manifest["variants"] or n == TORCH_ROW) and current(n)]


def scored_images(dataset: Dataset, folders: list[Path]) -> tuple[list[ImageAnnotation], list[str]]:
    """(images scored, images skipped): an image no model has a prediction for was unreadable (or never reached)."""
    done = {a.name for a in dataset.present if any(prediction_path(f, a.name).is_file() for f in folders)}
    return [a for a in dataset.present if a.name in done], [a.name for a in dataset.present if a.name not in done]

"""Which predictions a benchmark run can trust, which it must make, and which images it scores.

Predictions live in `results/predictions/<model>/<event>/<stem>.txt` with every detection above a low
score floor (the official AP needs the low-score tail). `MODEL.json` beside them records what made them
(the file's sha256, or the reference model's source hashed anew, the resolution, the floor); when that
changes the cache is discarded, otherwise a restarted run only does the images whose file is missing.
A model's predictions enter the tables only when they cover every scored image.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..core.artifacts import CACHE_INFO, TORCH_ROW, header_of, predictions_dir
from ..core.atomic import write_text
from ..core.checksums import sha256_file
from ..core.errors import InputError
from ..data.dataset import Dataset
from ..data.wider import ImageAnnotation
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


def cache_key(name: str, manifest: dict, floor: float) -> dict:
    """What made a model's predictions; a change of any of it invalidates the cache."""
    entry, header = manifest["variants"].get(name), header_of(manifest, name)
    digest = entry["sha256"] if entry is not None else source_digest(header)
    return {"model": name, "sha256": digest, "resolution": header.get("resolution", header.get("input_size")),
            "floor": floor}


def open_cache(folder: Path, key: dict, force: bool) -> None:
    """Keep the cached predictions only if they were made by the same model file and settings."""
    info = folder / CACHE_INFO
    if force or read_key(folder) != key:
        if folder.exists():
            log.info("%s: cached predictions are stale or --force given; starting over", folder)
            shutil.rmtree(folder)
        write_text(info, json.dumps(key, indent=1, sort_keys=True) + "\n")


def read_key(folder: Path) -> dict | None:
    """The recorded cache key of a prediction folder, or None (no folder, or a damaged record)."""
    try:
        return json.loads((folder / CACHE_INFO).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def missing(annotations: tuple[ImageAnnotation, ...] | list[ImageAnnotation], folder: Path) -> list[ImageAnnotation]:
    """Images whose prediction file is not written yet."""
    return [a for a in annotations if not prediction_path(folder, a.name).is_file()]


def cached_models(names: list[str], manifest: dict, results: Path, floor: float) -> list[str]:
    """Models whose prediction folder was made by what the manifest now describes (any number of images)."""
    def current(name: str) -> bool:
        try:
            return read_key(predictions_dir(results, name)) == cache_key(name, manifest, floor)
        except InputError as err:  # the reference row's checkpoint changed or vanished
            log.warning("%s: cached predictions not used: %s", name, err)
            return False
    return [n for n in names if (n in manifest["variants"] or n == TORCH_ROW) and current(n)]


def scored_images(dataset: Dataset, folders: list[Path]) -> tuple[list[ImageAnnotation], list[str]]:
    """(images scored, images skipped): an image no model has a prediction for was unreadable (or never reached)."""
    done = {a.name for a in dataset.present if any(prediction_path(f, a.name).is_file() for f in folders)}
    return [a for a in dataset.present if a.name in done], [a.name for a in dataset.present if a.name not in done]

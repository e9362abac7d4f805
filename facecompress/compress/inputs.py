"""The images one family's variants are made with: calibration, the INT8 search's check images, and parity.

With a calibration folder (`--calibration-dir`) calibration and checking read only that folder, and the
manifest header lists each calibration image with its sha256 (the check images are in the search's entry,
so that another --search-images rebuilds the search alone); an image whose bytes are also among the evaluated ones is named
as an overlap. Without one, both fall back to a seeded subset of the evaluated images, and the manifest and
the summary say "calibration overlaps evaluation". Parity (a check of each file against the model it came
from, not a reported accuracy) always uses a few evaluated images.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..data import calibration as folder
from ..data.dataset import Dataset
from ..data.identity import image_digests
from ..data.images import load_rgb
from ..detectors.family import Family
from .builder import load_inputs
from .search import CheckImages

log = logging.getLogger(__name__)

OVERLAP = "calibration overlaps evaluation"


@dataclass(frozen=True)
class Inputs:
    """(name, array, size) triples for calibration and parity, the check images, and the manifest's record."""

    calibration: list
    check: CheckImages
    parity: list
    record: dict


def _check(triples: list) -> CheckImages:
    return CheckImages(tuple(n for n, _, _ in triples), tuple(a for _, a, _ in triples), tuple(s for _, _, s in triples))


def _decoded(root: Path, paths: list[Path], family: Family, skip_unreadable: bool) -> list:
    """(name, input, size) of each image of the folder that decodes (an unreadable one stops the run unless skipped)."""
    triples = []
    for path in paths:
        try:
            image = load_rgb(root / path)
        except InputError as err:
            if not skip_unreadable:
                raise
            log.warning("skipping calibration image %s", err)
            continue
        triples.append((str(path), family.preprocess(image), image.size))
    return triples


def from_folder(root: str | os.PathLike, dataset: Dataset, family: Family, calibration: int, check: int,
                parity: int, skip_unreadable: bool = False, seed: int = 0) -> Inputs:
    """Calibration and check images from `root`, parity from the dataset; overlaps with it found by content."""
    root = Path(root)
    chosen = folder.choose(root, calibration + check, seed)
    triples = _decoded(root, chosen, family, skip_unreadable)
    if not triples:
        raise InputError(f"--calibration-dir {root}: no readable image")
    calibrating, checking = triples[:calibration], triples[calibration:] or triples[:check]
    _, parity_triples = load_inputs(dataset, family, 0, parity, skip_unreadable, seed)
    records = folder.records(root, [Path(n) for n, _, _ in triples])
    evaluated = {digest.split(":", 1)[1] for digest in image_digests(dataset).values()}
    overlaps = [r["name"] for r in records if r["sha256"] in evaluated]
    if overlaps:
        log.warning("%s: %d calibration image(s) are also evaluated images (%s ...): %s", root, len(overlaps),
                    overlaps[0], OVERLAP)
    record = {"source": "folder", "folder": str(root), "overlaps_evaluation": bool(overlaps),
              "overlapping": overlaps, "images": records[:len(calibrating)]}  # the check images: in the search's entry
    return Inputs(calibrating, _check(checking), parity_triples, record)


def from_dataset(dataset: Dataset, family: Family, calibration: int, check: int, parity: int,
                 skip_unreadable: bool = False, seed: int = 0) -> Inputs:
    """Calibration and check images drawn from the evaluated images themselves: the fallback, flagged as such."""
    calibrating, parity_triples = load_inputs(dataset, family, calibration + check, parity, skip_unreadable, seed)
    used, checking = calibrating[:calibration], calibrating[calibration:] or calibrating[:check]
    record = {"source": "evaluation images", "overlaps_evaluation": True, "note": OVERLAP,
              "images": [{"name": n} for n, _, _ in used]}
    return Inputs(used, _check(checking), parity_triples, record)

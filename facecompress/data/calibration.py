"""Calibration images from a folder of their own, so that no reported accuracy is measured on its own calibration.

`inference.py --calibration-dir DIR` takes any folder of images (searched recursively, links followed; no
labels needed). Images are spread over its subfolders (WIDER's events) in a seeded order, so the first N
calibration images and the search's check images after them each see as many kinds of scene as they can.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from ..core.checksums import sha256_file
from ..core.errors import InputError

T = TypeVar("T")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def spread(items: Sequence[T], group: Callable[[T], str], seed: int) -> list[T]:
    """All `items`, ordered so that any first N cover as many groups as they can; the same for the same seed.

    Each group's items and the groups themselves are shuffled with `seed`, then taken one per group in turn.
    """
    rng = random.Random(seed)
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(group(item), []).append(item)
    queues = [rng.sample(members, len(members)) for members in groups.values()]
    rng.shuffle(queues)
    rounds = max((len(q) for q in queues), default=0)
    return [queue[i] for i in range(rounds) for queue in queues if i < len(queue)]


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Every image file under `folder`, relative to it, sorted; a missing or imageless folder is one line of error."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"--calibration-dir {root}: not a folder")
    found = [Path(dirpath, name).relative_to(root) for dirpath, _, names in os.walk(root, followlinks=True)
             for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
    if not found:
        raise InputError(f"--calibration-dir {root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it")
    return sorted(found)


def choose(folder: str | os.PathLike, count: int, seed: int) -> list[Path]:
    """`count` images of the folder (relative paths), spread over its subfolders with `seed`."""
    return spread(find_images(folder), lambda path: str(path.parent), seed)[:count]


def records(folder: str | os.PathLike, images: Sequence[Path]) -> list[dict]:
    """Name and sha256 of each chosen image, for the manifest: which bytes calibrated the files."""
    return [{"name": str(path), "sha256": sha256_file(Path(folder) / path)} for path in images]

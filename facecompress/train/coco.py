"""WIDER FACE annotations as the COCO dataset rfdetr's trainer reads: `<root>/train/` and `<root>/valid/`.

Each split folder gets `_annotations.coco.json` and, per event, a link to the WIDER event folder, so
the images are not copied (`file_name` is `<event>/<file>.jpg`). One category, `face`, which rfdetr
maps to label 0: the class slot the rest of the pipeline reads. Faces are dropped when their box is
empty (the official files hold a few, e.g. a width of 0), when flagged invalid (if asked), or when
narrower or shorter than `min_size` pixels (if asked); every drop is counted.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..core import atomic
from ..core.errors import InputError
from ..data.wider import INVALID, ImageAnnotation

ANNOTATIONS = "_annotations.coco.json"
SPLITS = {"train": "train", "val": "valid"}  # WIDER split -> rfdetr's folder name ("valid", not "val")
CATEGORY = {"id": 1, "name": "face", "supercategory": "none"}


@dataclass(frozen=True)
class Filters:
    """Which faces a training set leaves out; by default only those WIDER itself flags invalid (and empty boxes)."""

    drop_invalid: bool = True
    min_size: int = 0  # pixels; a face narrower or shorter than this is dropped


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise InputError(f"{path}: image listed in the annotations but not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: unreadable image ({err})") from None


def face_verdicts(annotation: ImageAnnotation, size: tuple[int, int], filters: Filters) -> tuple[np.ndarray, list[str]]:
    """Boxes (x, y, w, h, clipped to the image) of one image's real faces, and per face 'kept' or why it was dropped."""
    width, height = size
    mask = annotation.face_mask
    boxes, invalid = annotation.boxes[mask].astype(np.float64), annotation.attributes[mask, INVALID] == 1
    x0, y0 = np.clip(boxes[:, 0], 0, width), np.clip(boxes[:, 1], 0, height)
    x1, y1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width), np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    clipped = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    verdicts = []
    for (w, h), bad in zip(clipped[:, 2:], invalid):
        if w <= 0 or h <= 0:
            verdicts.append("empty box")
        elif filters.drop_invalid and bad:
            verdicts.append("invalid")
        elif min(w, h) < filters.min_size:
            verdicts.append(f"smaller than {filters.min_size} px")
        else:
            verdicts.append("kept")
    return clipped, verdicts


def coco_dataset(annotations: list[ImageAnnotation], size_of: Callable[[ImageAnnotation], tuple[int, int]],
                 filters: Filters, progress: str | None = None) -> tuple[dict, Counter]:
    """The COCO dict of one split, and counts of faces kept and dropped by reason ('images' too).

    `size_of` gives an image's (width, height): COCO records it, and boxes are clipped to it.
    """
    images, faces, counts = [], [], Counter()
    for image_id, annotation in enumerate(tqdm(annotations, desc=progress, unit="img", disable=progress is None)):
        width, height = size_of(annotation)
        images.append({"id": image_id, "file_name": annotation.name, "width": width, "height": height})
        boxes, verdicts = face_verdicts(annotation, (width, height), filters)
        counts.update(verdicts)
        for box, verdict in zip(boxes.tolist(), verdicts):
            if verdict == "kept":
                faces.append({"id": len(faces), "image_id": image_id, "category_id": CATEGORY["id"], "bbox": box,
                              "area": box[2] * box[3], "iscrowd": 0})
    counts["images"] = len(images)
    counts["images without faces"] = len(images) - len({face["image_id"] for face in faces})
    return {"info": {"description": "WIDER FACE, converted by facecompress.coco"}, "images": images,
            "annotations": faces, "categories": [CATEGORY]}, counts


def link_events(annotations: list[ImageAnnotation], images_dir: Path, folder: Path) -> None:
    """Make each event folder of `images_dir` visible under `folder`: a symlink, or a copy where links fail."""
    for event in sorted({a.event for a in annotations}):
        source, target = (images_dir / event).resolve(), folder / event
        if target.is_symlink() and target.resolve() == source:
            continue
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        try:
            os.symlink(source, target, target_is_directory=True)
        except OSError:
            shutil.copytree(source, target)


def write_split(annotations: list[ImageAnnotation], images_dir: Path, root: Path, split: str,
                filters: Filters) -> Counter:
    """Write `<root>/<train|valid>/`: the annotation file (atomically) beside links to the images."""
    folder = root / SPLITS[split]
    folder.mkdir(parents=True, exist_ok=True)
    coco, counts = coco_dataset(annotations, lambda a: image_size(images_dir / a.name), filters, f"COCO {split}")
    link_events(annotations, images_dir, folder)
    atomic.write_text(folder / ANNOTATIONS, json.dumps(coco) + "\n")
    return counts

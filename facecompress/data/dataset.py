"""A WIDER FACE validation set on disk: which annotated images are present, and where it came from."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from PIL import Image

from ..core.errors import InputError
from ..data.images import load_rgb
from ..data.wider import BBX_FILE, ImageAnnotation, read_bbx

log = logging.getLogger(__name__)

DEFAULT_IMAGES = Path("WIDER_val/images")
DEFAULT_SPLIT = Path("wider_face_split")
SAMPLE_MARKER = "GENERATED_SAMPLE.json"  # written by facecompress.data.sample into both folders


@dataclass(frozen=True)
class Dataset:
    """Annotations from the split folder, restricted to the images that exist under the images folder."""

    images_dir: Path
    split_dir: Path
    annotations: tuple[ImageAnnotation, ...]
    present: tuple[ImageAnnotation, ...]
    generated: bool

    @property
    def complete(self) -> bool:
        return len(self.present) == len(self.annotations)

    def image_path(self, annotation: ImageAnnotation) -> Path:
        return self.images_dir / annotation.name

    def restricted(self, present: list[ImageAnnotation] | tuple[ImageAnnotation, ...]) -> Dataset:
        """The same dataset over fewer of its images (the ones scored)."""
        return replace(self, present=tuple(present))

    def describe(self, skipped: list[str] | tuple[str, ...] = ()) -> str:
        """The provenance line every report carries; `skipped` images (unreadable) are counted out loud."""
        faces = sum(len(a.faces) for a in self.present)
        left_out = f"; {len(skipped)} unreadable image(s) skipped" if skipped else ""
        if self.generated:
            return f"generated sample, not WIDER FACE ({len(self.present)} images, {faces} faces{left_out})"
        if self.complete:
            return f"WIDER FACE val, full ({len(self.present)} images, {faces} faces)"
        return (f"WIDER FACE val, partial ({len(self.present)} of {len(self.annotations)} images, "
                f"{faces} faces{left_out})")


def sample_info(folder: str | os.PathLike) -> dict | None:
    """The generated-sample marker's contents, or None when `folder` holds no generated sample."""
    marker = Path(folder) / SAMPLE_MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def open_dataset(images_dir: str | os.PathLike = DEFAULT_IMAGES, split_dir: str | os.PathLike = DEFAULT_SPLIT,
                 limit: int | None = None) -> Dataset:
    """Open a dataset; `limit` keeps the first N present images in annotation order (deterministic)."""
    images_dir, split_dir = Path(images_dir), Path(split_dir)
    if not images_dir.is_dir():
        raise InputError(f"{images_dir}: images folder not found (run `make data` for the generated sample "
                         "or `python -m facecompress.data.download` for WIDER FACE val)")
    annotations = tuple(read_bbx(split_dir / BBX_FILE))
    present = tuple(a for a in annotations if (images_dir / a.name).is_file())
    if not present:
        raise InputError(f"{images_dir}: none of the {len(annotations)} images listed in "
                         f"{split_dir / BBX_FILE} is present")
    if limit is not None:
        present = present[:limit]
    generated = sample_info(split_dir) is not None
    return Dataset(images_dir, split_dir, annotations, present, generated)


def read_image(dataset: Dataset, annotation: ImageAnnotation, skip_unreadable: bool = False) -> Image.Image | None:
    """One image decoded to RGB; an unreadable one raises, or with `skip_unreadable` is logged and gives None."""
    try:
        return load_rgb(dataset.image_path(annotation))
    except InputError as err:
        if not skip_unreadable:
            raise
        log.warning("skipping %s", err)
        return None


def iter_images(dataset: Dataset, skip_unreadable: bool = False) -> Iterator[tuple[ImageAnnotation, Image.Image]]:
    """Yield each present image decoded to RGB; an unreadable one stops the run unless `skip_unreadable`."""
    for annotation in dataset.present:
        image = read_image(dataset, annotation, skip_unreadable)
        if image is not None:
            yield annotation, image

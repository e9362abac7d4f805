"""Image loading that turns every valid picture into upright RGB and every broken one into an InputError."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.errors import InputError


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode fully (so a truncated JPEG fails here, not mid-inference), undo EXIF rotation, convert to RGB.

    Grayscale, palette, CMYK and RGBA images are valid WIDER-style inputs and are converted, not refused.
    """
    path = Path(path)
    return decode_rgb(read_bytes(path), path)


def read_bytes(path: str | os.PathLike) -> bytes:
    """An image file's bytes, undecoded: what a machine without the dataset is sent to decode."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: image not found") from None
    except OSError as err:
        raise InputError(f"{path}: unreadable image ({err})") from None


def decode_rgb(data: bytes, path: str | os.PathLike) -> Image.Image:
    """`load_rgb` on bytes already read, naming `path` in its error, so every machine decodes them alike."""
    path = Path(path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # in place: a WIDER-sized copy costs ~1 ms
            return image if image.mode == "RGB" else image.convert("RGB")
    except UnidentifiedImageError:  # PIL would name the buffer object: name the file, as opening it by path does
        raise InputError(f"{path}: unreadable image (cannot identify image file {os.fspath(path)!r})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: unreadable image ({err})") from None

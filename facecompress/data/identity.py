"""What a dataset is by content, not by name: each image's bytes and the ground truth's files, as digests.

Cached predictions are kept per image only while the image's digest is the one they were made from, so
replacing the pixels of `WIDER_val/` under the same file names re-runs exactly those images; the ground
truth's digest goes into every accuracy row, so a table says which annotations scored it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..core.checksums import sha256_file
from .dataset import Dataset
from .wider import BBX_FILE, MAT_FILE, SETTING_MAT_FILES


def image_digests(dataset: Dataset) -> dict[str, str]:
    """'<bytes>:<sha256>' of every present image, by its WIDER name; an unreadable file is recorded as such."""
    return {a.name: _file_identity(dataset.image_path(a)) for a in dataset.present}


def _file_identity(path: Path) -> str:
    try:
        return f"{path.stat().st_size}:{sha256_file(path)}"
    except OSError as err:  # a broken or vanished file: the loop reports it; its predictions must not be reused
        return f"unreadable:{type(err).__name__}"


def ground_truth_files(split_dir: str | os.PathLike) -> dict[str, str]:
    """sha256 of each annotation file the evaluation reads (bbx text and the four .mat files) that exists."""
    names = (BBX_FILE, MAT_FILE, *SETTING_MAT_FILES.values())
    return {name: sha256_file(Path(split_dir) / name) for name in names if (Path(split_dir) / name).is_file()}


def ground_truth_digest(split_dir: str | os.PathLike) -> str:
    """One sha256 over the ground truth's files and their digests: the `ground_truth_sha256` of accuracy rows."""
    listing = "".join(f"{name} {digest}\n" for name, digest in sorted(ground_truth_files(split_dir).items()))
    return hashlib.sha256(listing.encode()).hexdigest()

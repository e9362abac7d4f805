"""WIDER FACE annotations: the official bbx text file and the four evaluation `.mat` files.

The text file lists, per image, a name line, a face count and one row of ten integers per face
(`x y w h blur expression illumination invalid occlusion pose`). An image without faces is written
as a count of 1 (val) or 0 (train) followed by one all-zero row; that placeholder row is kept as
read, exactly like the `.mat` files keep their `[0 0 0 0]` box, so the two sources stay comparable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError

ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
INVALID = ATTRIBUTES.index("invalid")  # faces flagged 1 here are ignored by scoring and dropped from training
SETTINGS = ("easy", "medium", "hard")
BBX_FILE = "wider_face_val_bbx_gt.txt"
MAT_FILE = "wider_face_val.mat"
SETTING_MAT_FILES = {s: f"wider_{s}_val.mat" for s in SETTINGS}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity, not element-wise
class ImageAnnotation:
    """One image's ground truth: `name` is `<event>/<file>.jpg`; boxes are x, y, w, h in pixels."""

    name: str
    boxes: np.ndarray  # (N, 4) int64, rows as in the file
    attributes: np.ndarray  # (N, 6) int64, columns in ATTRIBUTES order

    @property
    def event(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def stem(self) -> str:
        """File name without folder or suffix: the key the `.mat` files and submissions use."""
        return os.path.splitext(self.name.split("/", 1)[-1])[0]

    @property
    def face_mask(self) -> np.ndarray:
        """True for real faces, False for the all-zero placeholder row of a faceless image."""
        return np.any(np.concatenate([self.boxes, self.attributes], axis=1) != 0, axis=1)

    @property
    def faces(self) -> np.ndarray:
        """The real face boxes (placeholder rows dropped)."""
        return self.boxes[self.face_mask]


@dataclass(frozen=True, eq=False)
class MatImage:
    """One image of the official evaluation files, in their order.

    `keep` maps each setting to the 0-based indices of the boxes that setting scores; detections on
    the other boxes are ignored, as MATLAB's eval_tools do.
    """

    event: str
    stem: str
    boxes: np.ndarray  # (N, 4) int32, as stored
    attributes: np.ndarray  # (N, 6) int64
    keep: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return f"{self.event}/{self.stem}.jpg"


def _parse_ints(fields: list[str], path: Path, lineno: int) -> list[int]:
    try:
        return [int(f) for f in fields]
    except ValueError:
        bad = next(f for f in fields if not f.lstrip("-").isdigit())
        raise InputError(f"{path}:{lineno}: non-numeric field {bad!r}") from None


def _face_row(lines: list[str], index: int, path: Path, name: str) -> list[int]:
    if index >= len(lines):
        raise InputError(f"{path}:{index + 1}: file ends inside the face rows of {name} (truncated?)")
    fields = lines[index].split()
    if len(fields) == 1 and _looks_like_name(fields[0]):
        raise InputError(f"{path}:{index + 1}: {name} declares more faces than the rows that follow")
    if len(fields) != 10:
        raise InputError(f"{path}:{index + 1}: expected 10 fields per face, got {len(fields)}")
    return _parse_ints(fields, path, index + 1)


def _looks_like_name(line: str) -> bool:
    return line.lower().endswith(IMAGE_SUFFIXES)


def _parse_block(lines: list[str], index: int, path: Path) -> tuple[ImageAnnotation, int]:
    """Parse one image block starting at `index`; return it and the index after it."""
    name = lines[index].strip()
    if not _looks_like_name(name):
        raise InputError(f"{path}:{index + 1}: expected an image name, got {name!r} "
                         "(a face count that disagrees with the rows that follow?)")
    if index + 1 >= len(lines):
        raise InputError(f"{path}:{index + 2}: file ends after the name {name} (truncated?)")
    (count,) = _parse_ints(lines[index + 1].split()[:1] or ["<empty>"], path, index + 2)
    if count < 0:
        raise InputError(f"{path}:{index + 2}: negative face count {count}")
    rows = [_face_row(lines, index + 2 + i, path, name) for i in range(count)]
    end = index + 2 + count
    if count == 0 and end < len(lines) and not _looks_like_name(lines[end].strip()):
        if _parse_ints(lines[end].split(), path, end + 1) != [0] * 10:
            raise InputError(f"{path}:{end + 1}: {name} declares 0 faces but a face row follows")
        rows, end = [[0] * 10], end + 1  # the train file's placeholder row
    table = np.asarray(rows, dtype=np.int64).reshape(-1, 10)
    return ImageAnnotation(name, table[:, :4], table[:, 4:]), end


def read_bbx(path: str | os.PathLike) -> list[ImageAnnotation]:
    """Read a `wider_face_*_bbx_gt.txt` file; raise InputError naming the line of any defect."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read annotation file ({err})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"{path}: annotation file is empty")
    annotations, index = [], 0
    while index < len(lines):
        annotation, index = _parse_block(lines, index, path)
        annotations.append(annotation)
    return annotations


def _load_mat(path: Path, keys: tuple[str, ...]) -> dict:
    import scipy.io  # a fifth of a second to import, and only the evaluation files need it

    if not path.is_file():
        raise InputError(f"{path}: evaluation file not found")
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises several unrelated types for a damaged file
        raise InputError(f"{path}: not a readable MATLAB file ({type(err).__name__}: {err})") from None
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)} (not an official WIDER FACE file?)")
    return data


def _cells(array: np.ndarray) -> list:
    """Flatten a MATLAB cell array as scipy loads it into a Python list."""
    return list(array.reshape(-1))


def _mat_attributes(data: dict, event: int, image: int, count: int) -> np.ndarray:
    columns = [np.asarray(_cells(data[f"{a}_label_list"][event, 0])[image]).reshape(-1) for a in ATTRIBUTES]
    return np.stack(columns, axis=1).astype(np.int64) if count else np.zeros((0, 6), np.int64)


def read_mat_ground_truth(split_dir: str | os.PathLike) -> list[MatImage]:
    """Read `wider_face_val.mat` and the three setting files from `split_dir`, in official order."""
    split_dir = Path(split_dir)
    keys = ("event_list", "file_list", "face_bbx_list") + tuple(f"{a}_label_list" for a in ATTRIBUTES)
    data = _load_mat(split_dir / MAT_FILE, keys)
    settings = {s: _load_mat(split_dir / f, ("gt_list",))["gt_list"] for s, f in SETTING_MAT_FILES.items()}
    images = []
    for e, event_cell in enumerate(_cells(data["event_list"])):
        event = str(np.asarray(event_cell).reshape(-1)[0])
        files = _cells(data["file_list"][e, 0])
        boxes = _cells(data["face_bbx_list"][e, 0])
        for i, (file_cell, box) in enumerate(zip(files, boxes)):
            box = np.asarray(box, dtype=np.int32).reshape(-1, 4)
            keep = {s: np.asarray(_cells(g[e, 0])[i], dtype=np.int64).reshape(-1) - 1 for s, g in settings.items()}
            stem = str(np.asarray(file_cell).reshape(-1)[0])
            images.append(MatImage(event, stem, box, _mat_attributes(data, e, i, len(box)), keep))
    return images


def compare_txt_and_mat(annotations: list[ImageAnnotation], mat: list[MatImage]) -> list[str]:
    """List every disagreement between the text file and the `.mat` files, one line each."""
    by_name = {a.name: a for a in annotations}
    differences = [f"{name}: only in the text file" for name in sorted(set(by_name) - {m.name for m in mat})]
    for image in mat:
        annotation = by_name.get(image.name)
        if annotation is None:
            differences.append(f"{image.name}: only in the .mat files")
        elif annotation.boxes.shape != image.boxes.shape:
            differences.append(f"{image.name}: {len(annotation.boxes)} boxes in the text, {len(image.boxes)} in the .mat")
        else:
            for row in np.flatnonzero(np.any(annotation.boxes != image.boxes, axis=1)):
                differences.append(f"{image.name}: box {row} is {annotation.boxes[row].tolist()} in the text, "
                                   f"{image.boxes[row].tolist()} in the .mat")
            if not np.array_equal(annotation.attributes, image.attributes):
                differences.append(f"{image.name}: attributes differ")
    return differences

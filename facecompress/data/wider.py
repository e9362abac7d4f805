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
BOX_CLASSES = {("i", 4): np.int32, ("f", 8): np.float64}  # box classes scored as MATLAB does: official, re-saved


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
    boxes: np.ndarray  # (N, 4) in the stored class, int32 (official) or float64; MATLAB computes in it
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
    """The `keys` of one .mat file: face_bbx_list in its MATLAB class, the rest as stored (the cheaper read)."""
    import scipy.io  # a fifth of a second to import, and only the evaluation files need it

    if not path.is_file():
        raise InputError(f"{path}: evaluation file not found")
    try:  # scipy gives an array's compact storage type unless mat_dtype; eval_tools compute in its class
        data = scipy.io.loadmat(str(path), variable_names=[k for k in keys if k != "face_bbx_list"])
        if "face_bbx_list" in keys:
            data.update(scipy.io.loadmat(str(path), variable_names=["face_bbx_list"], mat_dtype=True))
    except Exception as err:  # scipy raises several unrelated types for a damaged file
        raise InputError(f"{path}: not a readable MATLAB file ({type(err).__name__}: {err})") from None
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)} (not an official WIDER FACE file?)")
    return data


def _cells(array: np.ndarray) -> list:
    """Flatten a MATLAB cell array as scipy loads it into a Python list."""
    return list(array.reshape(-1))


def _box_class(cell: np.ndarray, path: Path, name: str) -> type | None:
    """The class of one face_bbx_list cell (None when empty: MATLAB skips the image, so no arithmetic runs)."""
    if cell.size == 0:
        return None
    stored = BOX_CLASSES.get((cell.dtype.kind, cell.dtype.itemsize))
    if stored is None:
        raise InputError(f"{path}: face_bbx_list of {name} is stored as {cell.dtype}; only int32 (official) and "
                         "double can be scored as MATLAB does")
    return stored


def _image_boxes(cell: np.ndarray, path: Path, setting_cells: dict[Path, np.ndarray], name: str) -> np.ndarray:
    """One image's boxes in their class, which every setting file must share: MATLAB scores each with its own boxes."""
    stored = _box_class(cell, path, name)
    for other, other_cell in setting_cells.items():
        if cell.size and other_cell.size and _box_class(other_cell, other, name) is not stored:
            raise InputError(f"{other}: face_bbx_list of {name} is {other_cell.dtype}, {cell.dtype} in {path.name}; "
                             "MATLAB scores each setting in its own file's class (re-save the four files alike)")
    return np.asarray(cell, dtype=stored or np.int32).reshape(-1, 4)


def _event_images(main: Path, settings: dict[str, Path], files: dict[Path, dict], e: int) -> list[MatImage]:
    """The images of event `e` in file order, from `files` (the contents of the main and the setting .mat files)."""
    data = files[main]
    event = str(np.asarray(_cells(data["event_list"])[e]).reshape(-1)[0])
    names = [str(np.asarray(cell).reshape(-1)[0]) for cell in _cells(data["file_list"][e, 0])]
    boxes = _cells(data["face_bbx_list"][e, 0])
    labels = [_cells(data[f"{a}_label_list"][e, 0]) for a in ATTRIBUTES]
    setting_boxes = {path: _cells(files[path]["face_bbx_list"][e, 0]) for path in settings.values()}
    keeps = {s: _cells(files[path]["gt_list"][e, 0]) for s, path in settings.items()}
    images = []
    for i, (stem, cell) in enumerate(zip(names, boxes)):
        others = {path: np.asarray(cells[i]) for path, cells in setting_boxes.items()}
        box = _image_boxes(np.asarray(cell), main, others, f"{event}/{stem}.jpg")
        columns = [np.asarray(label[i]).reshape(-1) for label in labels]
        attributes = np.stack(columns, axis=1).astype(np.int64) if len(box) else np.zeros((0, 6), np.int64)
        keep = {s: np.asarray(k[i], dtype=np.int64).reshape(-1) - 1 for s, k in keeps.items()}
        images.append(MatImage(event, stem, box, attributes, keep))
    return images


def read_mat_ground_truth(split_dir: str | os.PathLike) -> list[MatImage]:
    """Read `wider_face_val.mat` and the three setting files from `split_dir`, in official order.

    Boxes keep their class (int32 officially, double when another tool re-saved the files), because MATLAB's
    eval_tools compute in it; the evaluator follows it.
    """
    split_dir = Path(split_dir)
    main, settings = split_dir / MAT_FILE, {s: split_dir / f for s, f in SETTING_MAT_FILES.items()}
    keys = ("event_list", "file_list", "face_bbx_list") + tuple(f"{a}_label_list" for a in ATTRIBUTES)
    files = {main: _load_mat(main, keys)}
    files.update({path: _load_mat(path, ("gt_list", "face_bbx_list")) for path in settings.values()})
    events = len(_cells(files[main]["event_list"]))
    return [image for e in range(events) for image in _event_images(main, settings, files, e)]


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

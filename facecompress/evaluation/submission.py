"""Detections in the WIDER FACE submission layout: `<event>/<stem>.txt`, read the way each evaluator reads it.

A file holds the image name (line 1), a box count (line 2), then one `x y w h score` line per box.
Values are written with Python's `repr`, the shortest text that reads back to the same float64, so that
evaluating the files gives bit for bit what evaluating the arrays in memory gives.

The two readers differ where the evaluators differ (see facecompress.evaluation.official for the scoring):
- matlab (eval_tools' read_pred.m): the file is found from the ground truth's event and stem, so the key
  comes from the path and line 1 is ignored; exactly the stated count of lines is read, extra lines are
  ignored; each line's numbers are parsed as str2num does (at least four, the score is the *last* one);
  a file with too few lines, a bad count or a bad line is "Invalid format" and gives no predictions at
  all (logged); a count of 0 or less gives none. Blank lines count as lines (textscan keeps them as
  empty cells), so a blank line among the counted ones makes the file invalid.
- port (the Python evaluation.py most papers use): the key comes from line 1 (its basename, `.jpg`
  stripped with `str.rstrip`, as the port does); the count is ignored and every later line is read;
  lines starting with a space or empty are skipped; fields are split on single spaces and the first
  five taken, the score being the fifth; any defect crashes the port, so it raises InputError here.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.atomic import write_text
from ..core.errors import InputError

log = logging.getLogger(__name__)

COMPAT = ("matlab", "port")
_NEWLINE = re.compile(r"\r\n|\n|\r")  # textscan's end-of-line characters
_NUMBER_SEP = re.compile(r"[\s,]+")  # str2num separates numbers by blanks or commas


def prediction_path(pred_dir: str | os.PathLike, image_name: str) -> Path:
    """Where the submission layout keeps `<event>/<file>.jpg`'s detections: `<event>/<stem>.txt`."""
    event, file = image_name.split("/", 1)
    return Path(pred_dir) / event / f"{os.path.splitext(file)[0]}.txt"


def format_prediction_file(image_name: str, dets: np.ndarray) -> str:
    """The submission text for one image; `repr` keeps every float64 exact."""
    dets = np.asarray(dets, dtype=np.float64)
    if dets.ndim != 2 or dets.shape[1] != 5:
        raise ValueError(f"{image_name}: detections must be (N, 5) x, y, w, h, score; got shape {dets.shape}")
    rows = (" ".join(map(repr, row)) for row in dets.tolist())
    return "\n".join([image_name.rsplit("/", 1)[-1], str(len(dets)), *rows]) + "\n"


def write_prediction_file(path: str | os.PathLike, image_name: str, dets: np.ndarray) -> None:
    """Write one image's detections atomically, so an interrupted run never leaves a file the reader trusts."""
    write_text(path, format_prediction_file(image_name, dets))


def _numbers(line: str) -> list[float] | None:
    """str2num on a line of plain numbers: None where MATLAB would fail."""
    tokens = [t for t in _NUMBER_SEP.split(line.strip()) if t]
    if not all(t.isascii() and "_" not in t for t in tokens):  # Python's float takes 1_000 and ١, MATLAB does not
        return None
    try:
        return [float(t) for t in tokens]
    except ValueError:
        return None


def _matlab_count(line: str) -> int | None:
    """The box count of line 2 as zeros(bbx_num, 5) accepts it: one finite whole number."""
    numbers = _numbers(line)
    if numbers is None or len(numbers) != 1 or not np.isfinite(numbers[0]) or numbers[0] != int(numbers[0]):
        return None
    return int(numbers[0])


def parse_matlab(text: str) -> np.ndarray | None:
    """Boxes as read_pred.m reads them (file order); None for a file it calls "Invalid format"."""
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # textscan makes no empty cell after the final newline
    count = _matlab_count(lines[1]) if len(lines) >= 2 else None
    if count is None or len(lines) < 2 + count:
        return None
    rows = []
    for line in lines[2:2 + max(count, 0)]:
        numbers = _numbers(line)
        if numbers is None or len(numbers) < 4:
            return None
        rows.append(numbers[:4] + numbers[-1:])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def _port_key(event: str, first_line: str) -> str:
    """The port's image key: line 1's basename with `.rstrip('.jpg')` (a character set, as it does)."""
    return f"{event}/{first_line.rstrip(chr(10) + chr(13)).split('/')[-1].rstrip('.jpg')}.jpg"


def parse_port(text: str, path: Path) -> tuple[str, np.ndarray]:
    """(key, boxes) as the Python port reads a file; raise InputError where the port would crash."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").splitlines(keepends=True)  # universal newlines
    if not lines:
        raise InputError(f"{path}: empty prediction file (the port cannot read it)")
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.rstrip("\r\n").split(" ")
        if fields[0] == "":
            continue
        try:
            rows.append([float(fields[i]) for i in range(5)])
        except (ValueError, IndexError):
            raise InputError(f"{path}:{number}: expected 'x y w h score', got {line.strip()!r}") from None
    return _port_key(path.parent.name, lines[0]), np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def _fast_body(data: bytes, compat: str) -> tuple[bytes, int] | None:
    """(box lines, their count) of a plainly written file, or None to read it the slow, exact way.

    The bulk parser is strict (single spaces, exactly five fields, see _bulk_parse), so a file it would
    read differently from Python's float() fails there and goes the slow way too.
    """
    parts = data.split(b"\n", 2)
    if len(parts) < 3 or not parts[2].endswith(b"\n") or parts[2].startswith((b" ", b"\n")) or b"\r" in data:
        return None
    body = parts[2]
    lines = body.count(b"\n")
    if compat == "port":
        return body, lines
    count = _matlab_count(parts[1].decode("latin-1"))
    if count is None or count <= 0 or lines < count:
        return None
    return (body, count) if lines == count else (b"\n".join(body.split(b"\n", count)[:count]) + b"\n", count)


def _bulk_parse(bodies: list[bytes], counts: list[int]) -> list[np.ndarray | None]:
    """Parse many files' box lines in one C pass; None for a file whose rows need the slow reader.

    With a single-space separator any blank, doubled or trailing space makes an extra or empty field:
    a parser error or a changed column count sends every file the slow way, a short row shows as NaN.
    """
    if not bodies:
        return []
    try:
        table = pd.read_csv(io.BytesIO(b"".join(bodies)), sep=" ", header=None, dtype=np.float64,
                            engine="c", quoting=csv.QUOTE_NONE, skip_blank_lines=False).to_numpy()
    except (ValueError, pd.errors.ParserError):
        return [None] * len(bodies)
    if table.shape != (sum(counts), 5):
        return [None] * len(bodies)
    arrays = np.split(table, np.cumsum(counts)[:-1])
    return [None if np.isnan(a).any() else a for a in arrays]  # NaN: a missing field or a literal nan


def _list_files(pred_dir: Path) -> list[tuple[str, str]]:
    """(event, file path) of every `<event>/*.txt`, sorted."""
    if not pred_dir.is_dir():
        raise InputError(f"{pred_dir}: prediction folder not found")
    events = sorted((e.name, e.path) for e in os.scandir(pred_dir) if e.is_dir())
    return [(name, f.path) for name, path in events for f in sorted(os.scandir(path), key=lambda f: f.name)
            if f.name.endswith(".txt") and f.is_file()]


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _read_one(path: Path, data: bytes, compat: str) -> tuple[str, np.ndarray]:
    """The slow, exact reading of one file: (key, boxes)."""
    if compat == "port":
        try:
            return parse_port(data.decode("utf-8"), path)
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text (the port cannot read it)") from None
    boxes = parse_matlab(data.decode("latin-1"))
    if boxes is None:
        log.warning("%s: invalid format, read as no predictions (as eval_tools does)", path)
        boxes = np.zeros((0, 5))
    return f"{path.parent.name}/{path.stem}.jpg", boxes


def _fast_key(event: str, path: str, data: bytes, compat: str) -> str:
    if compat == "matlab":
        return f"{event}/{os.path.basename(path)[:-4]}.jpg"
    return _port_key(event, data.split(b"\n", 1)[0].decode("utf-8", "replace"))


def read_prediction_dir(pred_dir: str | os.PathLike, compat: str = "matlab") -> dict[str, np.ndarray]:
    """Every `<event>/*.txt` under `pred_dir` as {`<event>/<stem>.jpg`: (N, 5) float64, file order}."""
    if compat not in COMPAT:
        raise ValueError(f"compat must be one of {COMPAT}, got {compat!r}")
    files = _list_files(Path(pred_dir))
    datas = [_read_bytes(path) for _, path in files]
    fast = [_fast_body(d, compat) for d in datas]
    parsed = iter(_bulk_parse([f[0] for f in fast if f is not None], [f[1] for f in fast if f is not None]))
    result: dict[str, np.ndarray] = {}
    for (event, path), data, body in zip(files, datas, fast):
        boxes = next(parsed) if body is not None else None
        if boxes is None:
            key, boxes = _read_one(Path(path), data, compat)
        else:
            key = _fast_key(event, path, data, compat)
        if key in result:
            raise InputError(f"{path}: a second prediction file for {key}")
        result[key] = boxes
    return result

"""Side-by-side detection panels: the annotated faces, then each model's cached detections at the threshold.

Boxes are drawn with supervision's annotators on the decoded image: annotated faces as white corner
brackets (full white boxes in the ground-truth panel), each model's detections as boxes in its colour
from `styles`. Each panel's title carries its TP / FP / FN counts from `evaluation.metrics`,
so a panel reads the same as the benchmark's per-image row.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import supervision as sv
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from ..core.errors import InputError, check_known
from ..evaluation.metrics import image_metrics
from ..evaluation.submission import parse_matlab, prediction_path
from ..report.plots import DPI, legend_handles
from ..report.styles import GROUND_TRUTH, Style
from ..data.wider import ATTRIBUTES, ImageAnnotation

log = logging.getLogger(__name__)

COLUMNS = 4  # panels per row
PANEL_INCHES = (4.0, 3.6)  # width, height of one panel with its two-line title
LEGEND_INCHES = 1.0  # the legend strip under the panels
FRAME_WIDTH = 4  # points: each model panel is framed in the model's colour
TITLE_INCHES = 0.45  # the two title lines above each panel
LINE_PX = 2  # box lines, drawn at the panel's display resolution


def choose_images(pool: Sequence[str], count: int, seed: int) -> list[str]:
    """`count` images drawn with a fixed seed, kept in the pool's order: the same picks on every run."""
    if count >= len(pool):
        return list(pool)
    picked = set(random.Random(seed).sample(list(pool), count))
    return [name for name in pool if name in picked]


def select(available: Sequence[str], wanted: Sequence[str] | None, flag: str, among: str) -> list[str]:
    """The wanted names in the order given (all available when None); unknown ones are a one-line error."""
    check_known(flag, wanted, list(available), f"among the {among}")
    return list(dict.fromkeys(wanted)) if wanted else list(available)


def images_to_draw(present: Sequence[str], scored: set[str], wanted: Sequence[str] | None, count: int,
                   seed: int) -> list[str]:
    """The named images, or `count` seeded picks, among the present images the benchmark scored."""
    pool = [name for name in present if name in scored]
    if not pool:
        raise InputError("none of the images present was benchmarked; run `python benchmark.py` on this dataset")
    if wanted:
        return select(pool, wanted, "--image", "benchmarked images present")
    return choose_images(pool, count, seed)


def prediction_dirs(folder: Path, models: Sequence[str]) -> dict[str, Path]:
    """Each model's cached predictions folder; a missing one is logged with the command that makes it."""
    found = {}
    for model in models:
        if (folder / model).is_dir():
            found[model] = folder / model
        else:
            log.warning("%s: no predictions in %s; run `python benchmark.py --only %s`", model, folder / model, model)
    return found


def read_image_predictions(pred_dir: Path, image: str) -> np.ndarray:
    """One image's cached detections as the benchmark scored them; none when its file is missing or invalid."""
    path = prediction_path(pred_dir, image)
    boxes = parse_matlab(path.read_text(encoding="latin-1")) if path.is_file() else None
    return np.zeros((0, 5)) if boxes is None else boxes


def _detections(boxes: np.ndarray) -> sv.Detections:
    """x, y, w, h rows (score optional) as supervision's corner boxes."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if len(boxes) == 0:
        return sv.Detections.empty()
    return sv.Detections(xyxy=sv.xywh_to_xyxy(boxes[:, :4]), confidence=boxes[:, 4] if boxes.shape[1] > 4 else None)


def display_scale(image: Image.Image) -> float:
    """The factor that fits an image into one panel: boxes drawn after it stay crisp, and drawing is cheap."""
    width, height = PANEL_INCHES[0] * DPI, (PANEL_INCHES[1] - TITLE_INCHES) * DPI
    return min(1.0, width / image.width, height / image.height)


def scaled(boxes: np.ndarray, scale: float) -> np.ndarray:
    """Boxes (x, y, w, h, optional score) with their coordinates multiplied by `scale`."""
    boxes = np.array(boxes, dtype=np.float64)
    boxes[:, :4] *= scale
    return boxes


def draw_truth(image: Image.Image, faces: np.ndarray, corners: bool) -> Image.Image:
    """Annotated faces in white: corner brackets under a model's boxes, full boxes in the ground-truth panel."""
    colour = sv.Color.from_hex(GROUND_TRUTH)
    annotator = (sv.BoxCornerAnnotator(color=colour, thickness=LINE_PX, corner_length=3 * LINE_PX,
                                       color_lookup=sv.ColorLookup.INDEX) if corners else
                 sv.BoxAnnotator(color=colour, thickness=LINE_PX, color_lookup=sv.ColorLookup.INDEX))
    return annotator.annotate(image.copy(), _detections(faces))


def draw_detections(image: Image.Image, dets: np.ndarray, colour: str) -> Image.Image:
    """A model's detections as boxes in its colour."""
    annotator = sv.BoxAnnotator(color=sv.Color.from_hex(colour), thickness=LINE_PX, color_lookup=sv.ColorLookup.INDEX)
    return annotator.annotate(image.copy(), _detections(dets))


def grid(panels: int) -> tuple[int, int]:
    """(rows, columns) for a number of panels."""
    columns = min(COLUMNS, panels)
    return math.ceil(panels / columns), columns


def figure_inches(panels: int) -> tuple[float, float]:
    """Figure size: fixed panels plus the legend strip, so the output's pixel size is predictable."""
    rows, columns = grid(panels)
    return columns * PANEL_INCHES[0], rows * PANEL_INCHES[1] + LEGEND_INCHES


def _show(ax: Axes, picture: Image.Image, title: str, frame: str | None) -> None:
    """One panel: the picture, its title, and a frame in the model's colour (none for ground truth)."""
    ax.imshow(np.asarray(picture))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set(visible=frame is not None, color=frame or "none", linewidth=FRAME_WIDTH)


def _legend(fig: Figure, names: Sequence[str], styles: dict[str, Style], threshold: float) -> None:
    handles = [Patch(facecolor=GROUND_TRUTH, edgecolor="black", label="annotated faces (white)")]
    handles += legend_handles(names, styles, linewidth=3)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8,
               title=f"boxes: detections scoring >= {threshold:g}; white corners: annotated faces", title_fontsize=8)


def panel_title(name: str, dets: np.ndarray, annotation: ImageAnnotation, threshold: float) -> str:
    """'model' over 'TP a  FP b  FN c', the benchmark's counts for this image."""
    counts = image_metrics(dets, annotation, threshold).counts
    return f"{name}\nTP {counts.tp}  FP {counts.fp}  FN {counts.fn}"


def truth_title(annotation: ImageAnnotation) -> str:
    """'ground truth' over the face count, naming the invalid faces that scoring ignores."""
    invalid = int(np.sum(annotation.attributes[annotation.face_mask, ATTRIBUTES.index("invalid")] == 1))
    ignored = f" ({invalid} invalid, ignored)" if invalid else ""
    return f"ground truth\n{len(annotation.faces)} faces{ignored}"


def comparison_figure(image: Image.Image, annotation: ImageAnnotation, predictions: dict[str, np.ndarray],
                      styles: dict[str, Style], threshold: float, title: str) -> Figure:
    """The ground-truth panel, then one panel per model with its detections at `threshold`."""
    fig = Figure(figsize=figure_inches(len(predictions) + 1), layout="constrained")
    fig.suptitle(f"{annotation.name}\n{title}", fontsize=10)
    rows, columns = grid(len(predictions) + 1)
    axes = fig.subplots(rows, columns, squeeze=False).flat
    scale = display_scale(image)
    small = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    faces = scaled(annotation.faces, scale)
    _show(next(axes), draw_truth(small, faces, corners=False), truth_title(annotation), None)
    base = draw_truth(small, faces, corners=True)
    for name, dets in predictions.items():
        kept = scaled(dets[dets[:, 4] >= threshold], scale)
        _show(next(axes), draw_detections(base, kept, styles[name].colour),
              panel_title(name, dets, annotation, threshold), styles[name].colour)
    for ax in axes:
        ax.set_axis_off()
    _legend(fig, list(predictions), styles, threshold)
    return fig

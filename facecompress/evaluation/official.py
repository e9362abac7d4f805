"""WIDER FACE Easy / Medium / Hard AP exactly as the official MATLAB eval_tools compute it, or as the Python port does.

The protocol (both modes): scores are min-max normalised over the whole prediction set; each image's
detections are walked in order and each one is matched to one face when their overlap reaches 0.5; a
detection on a face outside the setting's gt_list is dropped (neither TP nor FP), a second detection on
an already found face is a false positive; an image without predictions is skipped (its faces still
count); at each of 1000 thresholds t = 1 - k/1000 an image contributes the detections up to the *last*
one scoring >= t; AP is the VOC area under the monotone precision envelope.

Where `compat="matlab"` (eval_tools) and `compat="port"` (wondervictor's evaluation.py, copied into
RetinaFace and most face-detection repositories) part:
1. Order. read_pred.m stably sorts each image's boxes by descending score (NaN first); the port keeps
   file order, so its "up to the last box above t" cut also takes lower-scored boxes listed before it.
2. Overlap arithmetic. MATLAB computes in the class the .mat stores the boxes in. The official files
   store int32, so boxoverlap.m runs in MATLAB int32 arithmetic: the prediction's corners are rounded
   (half away from zero) by max/min against the face, the union is rounded after adding the prediction's
   double area, the int32 division rounds the IoU itself to 0 or 1, and all int32 results saturate. `max`
   then picks the *first* face (in .mat order) with rounded IoU 1, not the best one. Files re-saved by
   other tools often store double: then the IoU is plain float64 and `max` picks the first face of highest
   IoU. Each image follows its own cell's class, and WiderResult.arithmetic says which ran. The port
   converts the boxes to float whatever their class, so it always computes in float64.
3. Normalisation. norm_score.m seeds max/min with realmin/realmax('single'), so the extremes and the
   normalised scores are single precision; the seeds only bind when every score is <= 0. The port seeds
   max with 0 and min with 1 (so scores all above 1 or all below 0 normalise differently), computes in
   float64, and normalises over every prediction given, not only the images evaluated.
4. Missing image. MATLAB: no predictions. The port crashes; here InputError. NaN scores: MATLAB ignores
   them in max/min and sorts them first; the port's result depends on file order, so here InputError.
5. VOCap. MATLAB's max skips NaN precision (0/0 where nothing passes a threshold); numpy propagates it.
   This changes AP only for a setting without faces (NaN either way).
Reading the files differs too; see facecompress.evaluation.submission.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core.errors import InputError
from ..evaluation.submission import COMPAT
from ..data.wider import SETTINGS, MatImage

log = logging.getLogger(__name__)

THRESHOLDS = 1 - np.arange(1, 1001) / 1000  # eval_tools' thresholds, high to low, bit-identical to 1-t/1000
IOU_THRESHOLD = 0.5
ARITHMETIC = ("int32", "double")  # MATLAB's class of the .mat boxes: int32 as published, double as often re-saved
_I32_MIN, _I32_MAX = -2.0 ** 31, 2.0 ** 31 - 1
_SINGLE_MAX, _SINGLE_MIN = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class PRCurve:
    """One setting's precision and recall at THRESHOLDS (high to low), as eval_tools plot them."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


@dataclass(frozen=True)
class WiderResult:
    """AP per setting, the curves behind it, and what was evaluated (restricted_to: None for the full set).

    `arithmetic` is the overlap arithmetic: "int32", "double", "int32+double" when the images' classes
    differ, or "none" when no image has a box.
    """

    ap: dict[str, float]
    pr_curves: dict[str, PRCurve]
    faces: dict[str, int]
    images: int
    compat: str
    arithmetic: str
    restricted_to: int | None


def _sat(x: np.ndarray) -> np.ndarray:
    return np.clip(x, _I32_MIN, _I32_MAX)


def _to_int32(x: np.ndarray) -> np.ndarray:
    """MATLAB's double -> int32: round half away from zero, saturate, NaN -> 0 (values kept as float64)."""
    whole = np.trunc(x)
    fraction = x - whole  # exact
    rounded = _sat(whole + (fraction >= 0.5) - (fraction <= -0.5))
    rounded[np.isnan(rounded)] = 0.0
    return rounded


def _rounded(values: np.ndarray, if_nan: float) -> np.ndarray:
    """A detection corner as max/min against an int32 see it; MATLAB's max and min skip a NaN operand."""
    return np.where(np.isnan(values), if_nan, _to_int32(values))


def box_arithmetic(boxes: np.ndarray, compat: str) -> str:
    """The arithmetic an evaluator scores these ground-truth boxes in: MATLAB follows their class, the port is float."""
    return "double" if compat == "port" or boxes.dtype.kind == "f" else "int32"


def _det_geometry(dets: np.ndarray, arithmetic: str) -> tuple[np.ndarray, np.ndarray]:
    """Corners (x1, y1, x2, y2) as the overlap compares them, and the double area it adds to the union."""
    x1, y1 = dets[:, 0], dets[:, 1]
    x2, y2 = x1 + dets[:, 2], y1 + dets[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    if arithmetic == "int32":  # max/min with an int32 operand return int32
        x1, y1, x2, y2 = _rounded(x1, _I32_MIN), _rounded(y1, _I32_MIN), _rounded(x2, _I32_MAX), _rounded(y2, _I32_MAX)
    return np.column_stack([x1, y1, x2, y2]), area


def _face_geometry(gt: np.ndarray, arithmetic: str) -> tuple[np.ndarray, np.ndarray]:
    """Face corners and areas: int32 saturating arithmetic or float64 (MATLAB on double boxes, and the port)."""
    g = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if arithmetic == "double":
        x2, y2 = g[:, 2] + g[:, 0], g[:, 3] + g[:, 1]
        return np.column_stack([g[:, 0], g[:, 1], x2, y2]), (x2 - g[:, 0] + 1) * (y2 - g[:, 1] + 1)
    x2, y2 = _sat(g[:, 0] + g[:, 2]), _sat(g[:, 1] + g[:, 3])
    area = _sat(_sat(_sat(x2 - g[:, 0]) + 1) * _sat(_sat(y2 - g[:, 1]) + 1))
    return np.column_stack([g[:, 0], g[:, 1], x2, y2]), area


def _loosened(x: np.ndarray) -> np.ndarray:
    """x lowered by a little more than 1 plus any rounding: a safe bound for a cheap pre-filter."""
    return x - (2 + np.abs(x) * 1e-12)


def _overlapping_pairs(dets: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detection, face, w*h) for the pairs whose intersection has w > 0 and h > 0; every other overlap is 0.

    Boolean comparisons first keep a superset of the pairs that can overlap in x; w = min - max + 1 is then
    computed exactly, as the evaluators do, only for those. With integer corners w and h are exact wherever
    positive, so int32 saturation cannot touch them.
    """
    near = (faces[:, 2] > _loosened(dets[:, 0])[:, None]) & (dets[:, 2, None] > _loosened(faces[:, 0]))
    rows, cols = np.nonzero(near)
    w = np.minimum(faces[cols, 2], dets[rows, 2]) - np.maximum(faces[cols, 0], dets[rows, 0]) + 1
    h = np.minimum(faces[cols, 3], dets[rows, 3]) - np.maximum(faces[cols, 1], dets[rows, 1]) + 1
    keep = (w > 0) & (h > 0)
    return rows[keep], cols[keep], w[keep] * h[keep]


def _overlaps(inter: np.ndarray, det_area: np.ndarray, face_area: np.ndarray, arithmetic: str) -> np.ndarray:
    """boxoverlap.m in int32 (union rounded, the ratio rounded to an integer) or in float64 (as the port too)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if arithmetic == "double":
            return inter / (det_area + face_area - inter)
        inter = np.minimum(inter, _I32_MAX)
        union = _sat(_to_int32(face_area + det_area) - inter)
        return _to_int32(inter / union)


def _first_best(rows: np.ndarray, cols: np.ndarray, overlap: np.ndarray, count: int) -> np.ndarray:
    """`[m, idx] = max(o)` per detection: the first face with the maximal overlap, if it reaches 0.5; else -1.

    Pairs must come sorted by (row, col), as np.nonzero gives them; then no sort is needed.
    """
    good = overlap >= IOU_THRESHOLD
    rows, cols, overlap = rows[good], cols[good], overlap[good]
    matched = np.full(count, -1, dtype=np.int64)
    if len(rows):
        new_row = np.r_[True, rows[1:] != rows[:-1]]
        best = np.maximum.reduceat(overlap, np.flatnonzero(new_row))[np.cumsum(new_row) - 1]
        rows, cols = rows[overlap == best], cols[overlap == best]
        first = np.r_[True, rows[1:] != rows[:-1]]
        matched[rows[first]] = cols[first]
    return matched


def match_faces(dets: np.ndarray, gt: np.ndarray, compat: str = "matlab") -> np.ndarray:
    """The face (row of `gt`) each detection of one image is matched to by the evaluator, -1 for none.

    MATLAB's arithmetic follows `gt`'s dtype: floating point is double, any integer type int32.
    """
    gt = np.asarray(gt)
    arithmetic = box_arithmetic(gt, compat)
    det_corners, det_area = _det_geometry(np.asarray(dets, dtype=np.float64).reshape(-1, 5), arithmetic)
    face_corners, face_area = _face_geometry(gt, arithmetic)
    rows, cols, inter = _overlapping_pairs(det_corners, face_corners)
    return _first_best(rows, cols, _overlaps(inter, det_area[rows], face_area[cols], arithmetic), len(det_area))


def score_range(pool: np.ndarray, compat: str) -> tuple[float, float]:
    """(bottom, top) of norm_score.m (singles, seeded with realmax/realmin('single')) or of the port (seeds 1, 0)."""
    if compat == "port":
        return min(float(pool.min(initial=1.0)), 1.0), max(float(pool.max(initial=0.0)), 0.0)
    finite = pool[~np.isnan(pool)]
    with np.errstate(over="ignore"):
        return (np.float32(min(float(finite.min(initial=np.inf)), _SINGLE_MAX)),
                np.float32(max(float(finite.max(initial=-np.inf)), _SINGLE_MIN)))


def normalise_scores(scores: np.ndarray, bottom: float, top: float, compat: str) -> np.ndarray:
    """(score - bottom) / (top - bottom): in single precision as MATLAB mixes single and double, or float64."""
    with np.errstate(all="ignore"):
        if compat == "port":
            return (scores - bottom) / (top - bottom)
        return ((scores.astype(np.float32) - bottom) / (top - bottom)).astype(np.float64)


def _suffix_max(scores: np.ndarray) -> np.ndarray:
    """Best score at or after each position: a detection is inside the cut at t iff this is >= t."""
    best = np.fmax.accumulate(scores[::-1])[::-1]
    return np.where(np.isnan(best), -np.inf, best)


def voc_ap(recall: np.ndarray, precision: np.ndarray, skip_nan: bool = True) -> float:
    """VOCap.m: area under the precision envelope where recall changes (skip_nan: MATLAB's max)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    envelope = (np.fmax if skip_nan else np.maximum).accumulate(mpre[::-1])[::-1]
    change = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[change] - mrec[change - 1]) * envelope[change]))


def _passes(cut: np.ndarray) -> np.ndarray:
    """Index of the highest threshold each detection passes (it passes all lower ones); len(THRESHOLDS): none."""
    return len(THRESHOLDS) - np.searchsorted(THRESHOLDS[::-1], cut, side="right")


def _counts_above(first_pass: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sum of `weights` over detections inside the cut at every threshold, by counting, without a sort."""
    return np.cumsum(np.bincount(first_pass, weights=weights, minlength=len(THRESHOLDS) + 1))[:-1]


def _setting_curve(matched: np.ndarray, first_pass: np.ndarray, kept: np.ndarray, faces: int) -> PRCurve:
    """One setting's curve from every detection's matched face (global index, -1 none) and first threshold."""
    hit = matched >= 0
    kept_hit = hit & kept[np.where(hit, matched, 0)]
    proposal = (~hit | kept_hit).astype(np.int64)
    first = np.zeros(len(matched), dtype=np.int64)  # the detection that first finds each kept face
    hits_at = np.flatnonzero(kept_hit)
    first[hits_at[np.unique(matched[hits_at], return_index=True)[1]]] = 1
    proposals = _counts_above(first_pass, proposal)
    found = _counts_above(first_pass, first)
    with np.errstate(divide="ignore", invalid="ignore"):
        return PRCurve(THRESHOLDS.copy(), found / proposals, found / np.float64(faces))


def _select(ground_truth: Sequence[MatImage], restrict_to: Iterable[str] | None) -> list[MatImage]:
    """The images to score, in official order; a restriction is logged, since its AP is not the full set's."""
    if restrict_to is None:
        return list(ground_truth)
    wanted = set(restrict_to)
    unknown = wanted - {image.name for image in ground_truth}
    if unknown:
        raise InputError(f"{len(unknown)} image(s) to restrict to are not in the ground truth, "
                         f"e.g. {sorted(unknown)[0]}")
    images = [image for image in ground_truth if image.name in wanted]
    log.info("ground truth restricted to %d of %d images (AP is not comparable with full-set AP)",
             len(images), len(ground_truth))
    return images


def _checked(predictions: Mapping[str, np.ndarray], image: MatImage, compat: str) -> np.ndarray:
    """One image's detections as (N, 5) float64; refuses what the chosen evaluator cannot take."""
    if image.name not in predictions and compat == "port":
        raise InputError(f"no predictions for {image.name} (the port crashes on a missing file)")
    dets = np.asarray(predictions.get(image.name, np.zeros((0, 5))), dtype=np.float64)
    if dets.ndim != 2 or dets.shape[1] != 5:
        raise ValueError(f"{image.name}: detections must be (N, 5) x, y, w, h, score; got shape {dets.shape}")
    return dets


def _stacked(predictions: Mapping[str, np.ndarray], images: list[MatImage],
             compat: str) -> tuple[np.ndarray, np.ndarray]:
    """All evaluated detections in one (M, 5) array in evaluation order, and where each image starts (n + 1)."""
    boxes = [_checked(predictions, image, compat) for image in images]
    starts = np.cumsum([0] + [len(b) for b in boxes])
    dets = np.concatenate([np.zeros((0, 5))] + boxes)
    if compat == "port":
        return dets, starts
    return dets[_descending_by_image(dets[:, 4], starts)], starts


def _descending(score: np.ndarray) -> np.ndarray:
    """read_pred.m's `sort(..., 'descend')` of one image: stable, NaN first."""
    nan = np.isnan(score)
    if nan.any():
        return np.lexsort((np.where(nan, 0.0, -score), ~nan))
    return np.argsort(-score, kind="stable")


def _descending_by_image(score: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The permutation that sorts every image's detections as read_pred.m does (small sorts beat one big one)."""
    return np.concatenate([np.zeros(0, dtype=np.int64)] + [
        a + _descending(score[a:b]) for a, b in zip(starts[:-1], starts[1:]) if a < b])


def _score_pool(predictions: Mapping[str, np.ndarray], dets: np.ndarray, compat: str) -> np.ndarray:
    """The scores normalisation sees: the evaluated images (MATLAB) or every prediction given (port)."""
    if compat == "matlab":
        return dets[:, 4]
    pool = np.concatenate([np.zeros(0)] + [np.asarray(d, dtype=np.float64).reshape(-1, 5)[:, 4]
                                           for d in predictions.values()])
    if np.isnan(pool).any():
        raise InputError("a NaN score among the predictions (the port's result would depend on file order)")
    return pool


def _face_starts(images: list[MatImage]) -> np.ndarray:
    return np.cumsum([0] + [len(image.boxes) for image in images])


def _pairs(det_corners: np.ndarray, face_corners: np.ndarray, starts: np.ndarray, face_starts: np.ndarray,
           chosen: Sequence[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping (detection, face, w*h) over the chosen images, and which of their detections count.

    evaluation.m skips an image without boxes or without predictions: its detections count nowhere.
    """
    rows, cols, inters = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    active = np.zeros(starts[-1], dtype=bool)
    for i in range(len(starts) - 1):
        (a, b), (f, g) = starts[i:i + 2], face_starts[i:i + 2]
        if a < b and f < g and chosen[i]:
            r, c, inter = _overlapping_pairs(det_corners[a:b], face_corners[f:g])
            rows.append(r + a)
            cols.append(c + f)
            inters.append(inter)
            active[a:b] = True
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(inters), active


def _cut_scores(normalised: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per image, the suffix maximum of the normalised scores (see _suffix_max)."""
    parts = [_suffix_max(normalised[a:b]) for a, b in zip(starts[:-1], starts[1:]) if a < b]
    return np.concatenate([np.zeros(0)] + parts)


def _arithmetics(images: list[MatImage], compat: str) -> list[str]:
    """The arithmetics the images with boxes are scored in, in ARITHMETIC order (an empty image computes none)."""
    used = {box_arithmetic(image.boxes, compat) for image in images if len(image.boxes)}
    return [a for a in ARITHMETIC if a in used]


def _match_in(arithmetic: str, chosen: list[bool], images: list[MatImage], dets: np.ndarray,
              starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_match_all over the chosen images, all of them scored in one arithmetic; the others' detections get -1."""
    faces = np.concatenate([np.zeros((0, 4))] + [image.boxes.reshape(-1, 4) for image in images])
    with np.errstate(invalid="ignore"):  # inf - inf from infinite coordinates: NaN, which matches nothing
        det_corners, det_area = _det_geometry(dets, arithmetic)
        face_corners, face_area = _face_geometry(faces, arithmetic)
        rows, cols, inter, active = _pairs(det_corners, face_corners, starts, _face_starts(images), chosen)
    overlap = _overlaps(inter, det_area[rows], face_area[cols], arithmetic)
    return _first_best(rows, cols, overlap, len(dets)), active


def _match_all(images: list[MatImage], dets: np.ndarray, starts: np.ndarray,
               compat: str) -> tuple[np.ndarray, np.ndarray]:
    """Each detection's face (index into all images' boxes, -1 none), and which detections count.

    MATLAB's class is per cell, so each image is scored in its own boxes' arithmetic: one pass per class present.
    """
    kinds = [box_arithmetic(image.boxes, compat) for image in images]
    matched, active = np.full(len(dets), -1, dtype=np.int64), np.zeros(len(dets), dtype=bool)
    for arithmetic in _arithmetics(images, compat):
        found, counted = _match_in(arithmetic, [k == arithmetic for k in kinds], images, dets, starts)
        matched, active = np.maximum(matched, found), active | counted
    return matched, active


def _kept(images: list[MatImage], setting: str) -> np.ndarray:
    """Which of all images' boxes the setting scores (its gt_list)."""
    starts = _face_starts(images)
    kept = np.zeros(starts[-1], dtype=bool)
    for image, start in zip(images, starts):
        kept[start + image.keep[setting]] = True
    return kept


def evaluate(predictions: Mapping[str, np.ndarray], ground_truth: Sequence[MatImage], compat: str = "matlab",
             restrict_to: Iterable[str] | None = None) -> WiderResult:
    """Easy / Medium / Hard AP of `{<event>/<stem>.jpg: (N, 5) x, y, w, h, score}` under the official protocol."""
    if compat not in COMPAT:
        raise ValueError(f"compat must be one of {COMPAT}, got {compat!r}")
    images = _select(ground_truth, restrict_to)
    dets, starts = _stacked(predictions, images, compat)
    bottom, top = score_range(_score_pool(predictions, dets, compat), compat)
    cut = _cut_scores(normalise_scores(dets[:, 4], bottom, top, compat), starts)
    matched, active = _match_all(images, dets, starts, compat)
    matched, first_pass = matched[active], _passes(cut[active])
    curves, faces = {}, {}
    for setting in SETTINGS:
        kept = _kept(images, setting)
        faces[setting] = int(kept.sum())
        curves[setting] = _setting_curve(matched, first_pass, kept, faces[setting])
    ap = {s: voc_ap(curves[s].recall, curves[s].precision, skip_nan=compat == "matlab") for s in SETTINGS}
    return WiderResult(ap, curves, faces, len(images), compat, "+".join(_arithmetics(images, compat)) or "none",
                       None if restrict_to is None else len(images))

"""The vectorised evaluator against line-by-line transcriptions of eval_tools' .m files and of the Python port.

The transcriptions below follow the original loops statement by statement, with MATLAB's types done by
hand on Python scalars (int32: round half away from zero, saturation; double: IEEE 754 with MATLAB's
NaN-skipping max and min; single: numpy float32), and are compared with facecompress.evaluation.official
on random crowded images built to hit the awkward cases: boxes on half pixels, overlapping faces,
duplicates, tied scores, scores outside [0, 1], empty images; ground truth stored as int32 (the official
class), as double (files re-saved by other tools), or both in one set (MATLAB's class is per cell).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from facecompress.data.wider import SETTINGS, MatImage, read_mat_ground_truth
from facecompress.evaluation.official import THRESHOLDS, evaluate

I32_MIN, I32_MAX = -2 ** 31, 2 ** 31 - 1


def m_int32(x: float) -> int:
    """MATLAB int32(x)."""
    if math.isnan(x):
        return 0
    if math.isinf(x):
        return I32_MAX if x > 0 else I32_MIN
    low = math.floor(x)
    fraction = x - low
    value = low + 1 if fraction > 0.5 or (fraction == 0.5 and x > 0) else low
    return max(I32_MIN, min(I32_MAX, value))


def sat(v: int) -> int:
    return max(I32_MIN, min(I32_MAX, v))


def m_max(a: int, b: float) -> int:
    """max(int32, double) -> int32; NaN is skipped."""
    return a if math.isnan(b) else max(a, m_int32(b))


def m_min(a: int, b: float) -> int:
    return a if math.isnan(b) else min(a, m_int32(b))


def m_idiv(a: int, b: int) -> int:
    """int32 ./ int32."""
    if b == 0:
        return 0 if a == 0 else (I32_MAX if a > 0 else I32_MIN)
    return m_int32(a / b)


def m_boxoverlap(a: list[list[int]], b: list[float]) -> list[int]:
    """boxoverlap.m with `a` int32 rows (x1 y1 x2 y2) and `b` a double row."""
    out = []
    for a1, a2, a3, a4 in a:
        x1, y1, x2, y2 = m_max(a1, b[0]), m_max(a2, b[1]), m_min(a3, b[2]), m_min(a4, b[3])
        w, h = sat(sat(x2 - x1) + 1), sat(sat(y2 - y1) + 1)
        inter = sat(w * h)
        aarea = sat(sat(sat(a3 - a1) + 1) * sat(sat(a4 - a2) + 1))
        barea = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        union = sat(m_int32(aarea + barea) - inter)
        o = m_idiv(inter, union)
        out.append(0 if w <= 0 or h <= 0 else o)
    return out


def d_max(a: float, b: float) -> float:
    """max(double, double): a NaN operand is skipped."""
    return a if math.isnan(b) else b if math.isnan(a) else max(a, b)


def d_min(a: float, b: float) -> float:
    return a if math.isnan(b) else b if math.isnan(a) else min(a, b)


def d_div(a: float, b: float) -> float:
    """double ./ double as IEEE 754 (Python raises on a zero divisor)."""
    if b != 0 or math.isnan(b):
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.inf if (a > 0) == (math.copysign(1.0, b) > 0) else -math.inf


def d_boxoverlap(a: list[list[float]], b: list[float]) -> list[float]:
    """boxoverlap.m with `a` double rows (x1 y1 x2 y2) and `b` a double row."""
    out = []
    for a1, a2, a3, a4 in a:
        x1, y1, x2, y2 = d_max(a1, b[0]), d_max(a2, b[1]), d_min(a3, b[2]), d_min(a4, b[3])
        w, h = x2 - x1 + 1, y2 - y1 + 1
        inter = w * h
        aarea = (a3 - a1 + 1) * (a4 - a2 + 1)
        barea = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        o = d_div(inter, aarea + barea - inter)
        out.append(0.0 if w <= 0 or h <= 0 else o)  # o(w <= 0) = 0: a NaN w keeps a NaN o
    return out


def m_max_index(values: list) -> tuple[float, int]:
    """[m, idx] = max(v): the first index of the maximum, NaN skipped (all NaN: NaN at index 1)."""
    numbers = [i for i, v in enumerate(values) if not math.isnan(v)]
    if not numbers:
        return math.nan, 0
    best = max(values[i] for i in numbers)
    return best, next(i for i in numbers if values[i] == best)


def m_read_sort(dets: np.ndarray) -> np.ndarray:
    """read_pred.m's [~, i] = sort(bbx(:,5), 'descend'): stable, NaN first."""
    keys = [(0, 0.0) if math.isnan(s) else (1, -s) for s in dets[:, 4]]
    return dets[sorted(range(len(dets)), key=lambda i: keys[i])]


def m_norm(pred: list[np.ndarray]) -> list[np.ndarray]:
    """norm_score.m with single-precision extremes."""
    top, bottom = np.float32(np.finfo(np.float32).tiny), np.float32(np.finfo(np.float32).max)
    for dets in pred:
        if len(dets):
            scores = dets[:, 4][~np.isnan(dets[:, 4])]
            if len(scores):
                top = np.float32(max(float(top), float(scores.max())))
                bottom = np.float32(min(float(bottom), float(scores.min())))
    out = []
    for dets in pred:
        dets = dets.copy()
        with np.errstate(all="ignore"):
            dets[:, 4] = [(np.float32(s) - bottom) / (top - bottom) for s in dets[:, 4]]
        out.append(dets)
    return out


def m_image_evaluation(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray) -> tuple[list[int], list[int]]:
    """image_evaluation.m, in the class the ground truth is stored in: int32 or double."""
    pred = pred.copy()
    pred[:, 2] += pred[:, 0]
    pred[:, 3] += pred[:, 1]
    if gt.dtype == np.float64:  # gt_bbx(:,3) = gt_bbx(:,1) + gt_bbx(:,3) in double
        rows = [[float(x), float(y), float(x) + float(w), float(y) + float(h)] for x, y, w, h in gt]
        boxoverlap = d_boxoverlap
    else:
        assert gt.dtype == np.int32
        rows = [[int(x), int(y), sat(int(x) + int(w)), sat(int(y) + int(h))] for x, y, w, h in gt]
        boxoverlap = m_boxoverlap
    recall_list, proposal, pred_recall = [0] * len(gt), [1] * len(pred), [0] * len(pred)
    for h in range(len(pred)):
        overlap = boxoverlap(rows, [float(v) for v in pred[h, :4]])
        best, idx = m_max_index(overlap)
        if best >= 0.5:
            if ignore[idx] == 0:
                recall_list[idx] = -1
                proposal[h] = -1
            elif recall_list[idx] == 0:
                recall_list[idx] = 1
        pred_recall[h] = recall_list.count(1)
    return pred_recall, proposal


def pr_info(scores: np.ndarray, proposal: list[int], pred_recall: list[int]) -> np.ndarray:
    """image_pr_info (identical in both): the last box scoring >= t and everything before it."""
    info = np.zeros((1000, 2))
    for t in range(1000):
        above = np.flatnonzero(scores >= 1 - (t + 1) / 1000)
        if len(above):
            r = above[-1]
            info[t] = [sum(1 for p in proposal[:r + 1] if p == 1), pred_recall[r]]
    return info


def m_vocap(rec: np.ndarray, prec: np.ndarray) -> float:
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        a, b = mpre[i], mpre[i + 1]
        mpre[i] = b if math.isnan(a) else (a if math.isnan(b) else max(a, b))  # MATLAB max skips NaN
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def matlab_reference(predictions: dict, images: list[MatImage]) -> dict[str, float]:
    pred = m_norm([m_read_sort(predictions[im.name]) if im.name in predictions else np.zeros((0, 5))
                   for im in images])
    aps = {}
    for setting in SETTINGS:
        curve, faces = np.zeros((1000, 2)), 0
        for im, dets in zip(images, pred):
            faces += len(im.keep[setting])
            if len(im.boxes) == 0 or len(dets) == 0:
                continue
            ignore = np.zeros(len(im.boxes))
            ignore[im.keep[setting]] = 1
            pred_recall, proposal = m_image_evaluation(dets, im.boxes, ignore)
            curve += pr_info(dets[:, 4], proposal, pred_recall)
        with np.errstate(all="ignore"):
            aps[setting] = m_vocap(curve[:, 1] / faces, curve[:, 1] / curve[:, 0])
    return aps


def port_overlaps(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The port's bbox_overlaps.pyx, loop for loop."""
    out = np.zeros((len(boxes), len(query)))
    for k in range(len(query)):
        box_area = (query[k, 2] - query[k, 0] + 1) * (query[k, 3] - query[k, 1] + 1)
        for n in range(len(boxes)):
            iw = min(boxes[n, 2], query[k, 2]) - max(boxes[n, 0], query[k, 0]) + 1
            if iw > 0:
                ih = min(boxes[n, 3], query[k, 3]) - max(boxes[n, 1], query[k, 1]) + 1
                if ih > 0:
                    ua = float((boxes[n, 2] - boxes[n, 0] + 1) * (boxes[n, 3] - boxes[n, 1] + 1) + box_area - iw * ih)
                    out[n, k] = iw * ih / ua
    return out


def port_reference(predictions: dict, images: list[MatImage]) -> dict[str, float]:
    pred = {k: v.copy() for k, v in predictions.items()}
    top, bottom = 0, 1
    for v in pred.values():
        if len(v):
            top, bottom = max(np.max(v[:, -1]), top), min(np.min(v[:, -1]), bottom)
    for v in pred.values():
        if len(v):
            v[:, -1] = (v[:, -1] - bottom) / (top - bottom)
    aps = {}
    for setting in SETTINGS:
        curve, faces = np.zeros((1000, 2)), 0
        for im in images:
            dets, gt = pred[im.name], im.boxes.astype("float")
            faces += len(im.keep[setting])
            if len(gt) == 0 or len(dets) == 0:
                continue
            ignore = np.zeros(len(gt))
            ignore[im.keep[setting]] = 1
            p, g = dets.copy(), gt.copy()
            p[:, 2] += p[:, 0]
            p[:, 3] += p[:, 1]
            g[:, 2] += g[:, 0]
            g[:, 3] += g[:, 1]
            overlaps = port_overlaps(p[:, :4], g)
            recall_list, proposal, pred_recall = np.zeros(len(g)), [1] * len(p), [0] * len(p)
            for h in range(len(p)):
                best, idx = overlaps[h].max(), overlaps[h].argmax()
                if best >= 0.5:
                    if ignore[idx] == 0:
                        recall_list[idx], proposal[h] = -1, -1
                    elif recall_list[idx] == 0:
                        recall_list[idx] = 1
                pred_recall[h] = int(np.sum(recall_list == 1))
            curve += pr_info(dets[:, 4], proposal, pred_recall)
        with np.errstate(all="ignore"):
            prec, rec = curve[:, 1] / curve[:, 0], curve[:, 1] / faces
        mrec, mpre = np.concatenate(([0.], rec, [1.])), np.concatenate(([0.], prec, [0.]))
        for i in range(mpre.size - 1, 0, -1):
            mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        aps[setting] = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    return aps


def random_image(rng: np.random.Generator, index: int) -> tuple[MatImage, np.ndarray]:
    """A crowded image (clusters of overlapping faces) and detections made to hit the edge cases."""
    count = int(rng.integers(0, 12))
    centre = rng.integers(20, 80, 2)
    boxes = np.column_stack([centre + rng.integers(-12, 12, (count, 2)), rng.integers(3, 25, (count, 2))])
    if count and rng.random() < 0.3:
        boxes[-1] = boxes[0]  # a duplicated face, as the real files hold one
    boxes = boxes.astype(np.int32).reshape(-1, 4)
    keep = {"hard": np.flatnonzero(rng.random(count) < 0.8)}
    keep["medium"] = keep["hard"][rng.random(len(keep["hard"])) < 0.7]
    keep["easy"] = keep["medium"][rng.random(len(keep["medium"])) < 0.6]
    near = np.zeros((0, 4))
    if count:  # copies of faces moved by half pixels, so that MATLAB's int32 rounding meets its ties
        near = boxes[rng.integers(0, count, 2 * count)] + rng.integers(-3, 4, (2 * count, 4)) * 0.5
    far = np.column_stack([rng.uniform(0, 100, (4, 2)), rng.uniform(2, 30, (4, 2))])
    coords = np.concatenate([near, far]).astype(np.float64)
    scores = np.round(rng.uniform(-0.5, 2.0, len(coords)), 1)  # ties, and scores outside [0, 1]
    image = MatImage("0--Test", f"img_{index}", boxes, np.zeros((count, 6), np.int64), keep)
    return image, np.column_stack([coords, scores])


def as_double(images: list[MatImage]) -> list[MatImage]:
    """The same ground truth stored as double, as other tools re-save the .mat files."""
    return [replace(image, boxes=image.boxes.astype(np.float64)) for image in images]


def odd_image(rng: np.random.Generator, index: int, double: bool) -> tuple[MatImage, np.ndarray]:
    """random_image, its faces moved by half pixels when stored as double, plus detections with NaN, inf or w < 0."""
    image, dets = random_image(rng, index)
    if double:
        image = replace(image, boxes=image.boxes + rng.integers(0, 2, image.boxes.shape) * 0.5)
    odd = np.column_stack([rng.uniform(0, 100, (6, 2)), rng.uniform(-5, 30, (6, 2)), rng.uniform(-0.5, 2, 6)])
    odd[np.arange(4), rng.integers(0, 4, 4)] = [np.nan, np.inf, -np.inf, 1e12]
    return image, np.concatenate([dets, odd])


@pytest.fixture(scope="module")
def random_set():
    rng = np.random.default_rng(7)
    pairs = [random_image(rng, i) for i in range(60)]
    return [p[0] for p in pairs], {p[0].name: p[1] for p in pairs}


@pytest.fixture(scope="module", params=["int32", "double", "int32+double"])
def odd_set(request):
    """Awkward images whose boxes are int32, double, or each image's class drawn at random (per cell, as MATLAB)."""
    rng = np.random.default_rng(11)
    classes = request.param.split("+")
    pairs = [odd_image(rng, i, rng.choice(classes) == "double") for i in range(60)]
    return [p[0] for p in pairs], {p[0].name: p[1] for p in pairs}, request.param


@pytest.mark.parametrize("compat, reference", [("matlab", matlab_reference), ("port", port_reference)])
def test_matches_line_by_line_transcription(random_set, compat, reference):
    images, predictions = random_set
    result = evaluate(predictions, images, compat)
    expected = reference(predictions, images)
    for setting in SETTINGS:
        assert result.ap[setting] == pytest.approx(expected[setting], rel=1e-12, abs=1e-15)


def test_matlab_transcription_with_nan_scores_and_missing_images(random_set):
    images, predictions = random_set
    predictions = dict(predictions)
    names = sorted(predictions)
    del predictions[names[0]]
    predictions[names[1]] = predictions[names[1]].copy()
    predictions[names[1]][::3, 4] = np.nan
    result = evaluate(predictions, images, "matlab")
    expected = matlab_reference(predictions, images)
    assert result.ap == pytest.approx(expected, rel=1e-12)


def test_double_ground_truth_matches_transcription_and_differs_from_int32(random_set):
    images, predictions = random_set
    double = as_double(images)
    result = evaluate(predictions, double, "matlab")
    assert result.arithmetic == "double" and evaluate(predictions, images).arithmetic == "int32"
    assert result.ap == pytest.approx(matlab_reference(predictions, double), rel=1e-12, abs=1e-15)
    int32 = evaluate(predictions, images).ap
    assert max(abs(result.ap[s] - int32[s]) for s in SETTINGS) > 0.01  # same boxes, other class, other AP
    port = evaluate(predictions, double, "port")
    assert port.arithmetic == "double" and port.ap == evaluate(predictions, images, "port").ap


@pytest.mark.parametrize("compat, reference", [("matlab", matlab_reference), ("port", port_reference)])
def test_stored_class_matches_transcription_on_awkward_boxes(odd_set, compat, reference):
    images, predictions, classes = odd_set
    result = evaluate(predictions, images, compat)
    assert result.arithmetic == (classes if compat == "matlab" else "double")
    expected = reference(predictions, images)
    for setting in SETTINGS:
        assert result.ap[setting] == pytest.approx(expected[setting], rel=1e-12, abs=1e-15)


def test_real_ground_truth_subset_matches_transcriptions(wider_real):
    images = read_mat_ground_truth(wider_real / "ground_truth")[:40]  # crowded parade images come first
    rng = np.random.default_rng(3)
    predictions = {}
    for image in images:
        faces = image.boxes[rng.integers(0, len(image.boxes), 25)].astype(np.float64)
        dets = faces + rng.normal(0, 1.5, faces.shape)
        predictions[image.name] = np.column_stack([dets, rng.random(25)]).astype(np.float32).astype(np.float64)
    for compat, reference in (("matlab", matlab_reference), ("port", port_reference)):
        assert evaluate(predictions, images, compat).ap == pytest.approx(reference(predictions, images), rel=1e-12)


def test_curve_thresholds_are_eval_tools_own():
    assert np.array_equal(THRESHOLDS, np.array([1 - t / 1000 for t in range(1, 1001)]))


def test_real_ground_truth_as_double_matches_transcriptions(wider_real):
    images = as_double(read_mat_ground_truth(wider_real / "ground_truth")[:40])
    rng = np.random.default_rng(5)
    predictions = {}
    for image in images:
        faces = image.boxes[rng.integers(0, len(image.boxes), 25)]
        dets = faces + rng.integers(-4, 5, faces.shape) * 0.5  # half pixels: where int32 rounding parts from double
        predictions[image.name] = np.column_stack([dets, rng.random(25)])
    for compat, reference in (("matlab", matlab_reference), ("port", port_reference)):
        result = evaluate(predictions, images, compat)
        assert result.arithmetic == "double" and result.ap == pytest.approx(reference(predictions, images), rel=1e-12)

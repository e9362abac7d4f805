"""Threshold metrics and AP@0.5: hand-computed cases, and pycocotools on the same matching for reference."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest

from facecompress.evaluation.metrics import (FP, IGNORED, TP, Counts, agreement, average_precision, dataset_metrics,
                                  image_metrics, iou_matrix, match_detections, pooled_average_precision)
from facecompress.data.wider import ImageAnnotation, read_bbx

FACE, FACE2, FAR = [10, 10, 20, 20], [100, 100, 20, 20], [500, 500, 10, 10]


def annotation(boxes, invalid=()) -> ImageAnnotation:
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    attributes = np.zeros((len(boxes), 6), np.int64)
    attributes[list(invalid), 3] = 1
    return ImageAnnotation("0--Test/a.jpg", boxes, attributes)


def dets(*rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def test_iou_matrix():
    iou = iou_matrix(np.array([[0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 0, 0]]), np.array([[0, 0, 10, 10]]))
    assert iou[:, 0].tolist() == [1.0, 50 / 150, 0.0]


def test_one_face_one_hit():
    m = image_metrics(dets([*FACE, 0.9]), annotation([FACE]))
    assert (m.counts, m.faces, m.detections, m.ap50) == (Counts(1, 0, 0), 1, 1, 1.0)
    assert m.counts.precision == m.counts.recall == m.counts.f1 == 1.0


def test_duplicate_is_a_false_positive():
    m = image_metrics(dets([*FACE, 0.9], [*FACE, 0.8]), annotation([FACE]))
    assert m.counts == Counts(1, 1, 0) and m.counts.f1 == pytest.approx(2 / 3) and m.ap50 == 1.0


def test_invalid_face_is_ignored():
    m = image_metrics(dets([*FACE2, 0.9], [*FACE, 0.8]), annotation([FACE, FACE2], invalid=[1]))
    assert m.counts == Counts(1, 0, 0) and m.faces == 1 and m.detections == 2 and m.ap50 == 1.0
    assert image_metrics(dets(), annotation([FACE, FACE2], invalid=[1])).counts == Counts(0, 0, 1)


def test_placeholder_row_is_no_face():
    m = image_metrics(dets([*FAR, 0.9]), annotation([[0, 0, 0, 0]]))
    assert m.counts == Counts(0, 1, 0) and m.faces == 0
    assert m.counts.precision == 0.0 and math.isnan(m.counts.recall) and m.counts.f1 == 0.0 and math.isnan(m.ap50)
    empty = image_metrics(dets(), annotation([[0, 0, 0, 0]])).counts
    assert all(math.isnan(v) for v in (empty.precision, empty.recall, empty.f1))


def test_no_detections():
    m = image_metrics(None, annotation([FACE, FACE2]))
    assert m.counts == Counts(0, 0, 2) and math.isnan(m.counts.precision) and m.counts.recall == 0.0
    assert m.counts.f1 == 0.0 and m.ap50 == 0.0


def test_threshold_cuts_counts_not_matching():
    m = image_metrics(dets([*FACE, 0.9], [*FACE2, 0.3], [*FAR, 0.2]), annotation([FACE, FACE2]), score_threshold=0.5)
    assert m.counts == Counts(1, 0, 1) and m.detections == 1 and m.ap50 == 1.0


def test_greedy_takes_the_best_unmatched_face():
    faces = np.array([[0, 0, 10, 10], [3, 0, 10, 10]])
    # both detections prefer face 0; the second, lower-scored one then takes face 1 (IoU 70/130 >= 0.5)
    assert match_detections(dets([1, 0, 10, 10, 0.5], [0, 0, 10, 10, 0.9]), faces).tolist() == [TP, TP]
    assert match_detections(dets([1, 0, 10, 10, 0.5], [0, 0, 10, 10, 0.9]), faces[:1]).tolist() == [FP, TP]


def test_ties_in_score_keep_input_order_and_ties_in_iou_take_the_later_face():
    assert match_detections(dets([*FACE, 0.5], [*FACE, 0.5]), np.array([FACE])).tolist() == [TP, FP]
    faces = np.array([[0, 0, 10, 10], [4, 0, 10, 10]])
    assert match_detections(dets([2, 0, 10, 10, 1]), faces).tolist() == [TP]
    assert match_detections(dets([2, 0, 10, 10, 1], [0, 0, 10, 10, 0.5]), faces).tolist() == [TP, TP]


def test_ignored_only_when_no_valid_face_is_left():
    outcome = match_detections(dets([*FACE, 0.9], [*FACE, 0.8], [*FACE2, 0.7]), np.array([FACE]),
                               ignored=np.array([FACE, FACE2]))
    assert outcome.tolist() == [TP, IGNORED, IGNORED]


def test_average_precision_by_hand():
    scores, outcomes = np.array([0.9, 0.8, 0.7]), np.array([TP, FP, TP])
    assert average_precision(scores, outcomes, 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(scores, outcomes, 2, points=101) == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert average_precision(scores, outcomes, 4) == pytest.approx(0.25 + 0.25 * 2 / 3)
    assert average_precision(np.array([0.9, 0.5]), np.array([IGNORED, TP]), 1) == 1.0
    assert average_precision(np.zeros(0), np.zeros(0), 3) == 0.0 and math.isnan(average_precision(scores, outcomes, 0))


def test_perfect_predictions_score_one(wider_real):
    sample = read_bbx(wider_real / "wider_face_split" / "sample_val_bbx_gt.txt")
    predictions = {a.name: np.column_stack([a.faces, np.ones(len(a.faces))]) for a in sample}
    result = dataset_metrics(predictions, sample)
    assert result.ap50 == 1.0 and result.counts.fp == 0 and result.counts.fn == 0
    assert result.counts.tp == sum(r.faces for r in result.images) == 471 - 79 - 1  # 79 invalid, 1 placeholder


def test_dataset_sums_counts():
    images = [annotation([FACE]), ImageAnnotation("0--Test/b.jpg", np.array([FACE]), np.zeros((1, 6), np.int64))]
    result = dataset_metrics({"0--Test/a.jpg": dets([*FACE, 0.9], [*FAR, 0.8])}, images)
    assert result.counts == Counts(1, 1, 1) and [r.counts for r in result.images] == [Counts(1, 1, 0), Counts(0, 0, 1)]
    assert result.ap50 == pytest.approx(0.5)


def test_agreement():
    reference = {"a": dets([*FACE, 0.9], [*FACE2, 0.6], [*FAR, 0.2]), "b": dets([*FACE, 0.8])}
    same = agreement(reference, reference, confidence=0.5)
    assert (same.ap50, same.reproduced, same.reference_boxes, same.images) == (1.0, 1.0, 3, 2)
    half = agreement({"a": dets([*FACE, 0.9], [*FACE2, 0.4])}, reference, confidence=0.5)
    assert half.reproduced == pytest.approx(1 / 3) and half.ap50 == pytest.approx(2 / 3)
    assert math.isnan(agreement({}, {"a": dets([*FAR, 0.1])}).reproduced)


# --- pycocotools, on the same matching with its 101-point interpolation ----------------------------------

def coco_eval(faces: list[np.ndarray], detections: list[np.ndarray]):
    """COCOeval at IoU 0.5 with no detection limit in practice (maxDets 10,000) and one area range."""
    from pycocotools import coco, cocoeval  # a pinned requirement: its absence is a failure, not a skip

    gt = coco.COCO()
    annotations = [{"id": k + 1, "image_id": i, "category_id": 1, "bbox": box.tolist(),
                    "area": float(box[2] * box[3]), "iscrowd": 0}
                   for k, (i, box) in enumerate((i, b) for i, f in enumerate(faces) for b in f)]
    gt.dataset = {"images": [{"id": i} for i in range(len(faces))], "annotations": annotations,
                  "categories": [{"id": 1, "name": "face"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": i, "category_id": 1, "bbox": d[:4].tolist(), "score": float(d[4])}
                         for i, ds in enumerate(detections) for d in ds])
        evaluator = cocoeval.COCOeval(gt, dt, "bbox")
        evaluator.params.iouThrs = np.array([0.5])
        evaluator.params.maxDets = [10_000]
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def random_scene(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    faces = np.column_stack([rng.uniform(0, 200, (count, 2)), rng.uniform(5, 40, (count, 2))])
    picks = rng.integers(0, max(count, 1), 3 * count) if count else np.zeros(0, int)
    near = faces[picks] + rng.normal(0, 4, (len(picks), 4)) if count else np.zeros((0, 4))
    near[:, 2:] = np.abs(near[:, 2:]) + 1  # COCO ignores an unmatched box of negative area; keep boxes valid
    stray = np.column_stack([rng.uniform(0, 200, (5, 2)), rng.uniform(5, 40, (5, 2))])
    boxes = np.concatenate([near, stray])
    return faces, np.column_stack([boxes, rng.random(len(boxes))])


def test_matching_and_ap_equal_pycocotools():
    rng = np.random.default_rng(11)
    scenes = [random_scene(rng, int(rng.integers(0, 15))) for _ in range(40)]
    faces, detections = [s[0] for s in scenes], [s[1] for s in scenes]
    evaluator = coco_eval(faces, detections)
    outcomes = [match_detections(d, f) for f, d in zip(faces, detections)]
    first_id = np.cumsum([0] + [len(d) for d in detections])
    for record in evaluator.evalImgs:
        if record is None:
            continue
        mine = outcomes[record["image_id"]][np.asarray(record["dtIds"]) - 1 - first_id[record["image_id"]]]
        assert np.array_equal(record["dtMatches"][0] > 0, mine == TP)
    precision = evaluator.eval["precision"][0, :, 0, 0, 0]
    ours = pooled_average_precision([d[:, 4] for d in detections], outcomes, sum(len(f) for f in faces), points=101)
    assert ours == pytest.approx(float(np.mean(precision[precision > -1])), abs=1e-12)


def test_real_faces_ap_equals_pycocotools(wider_real):
    rng = np.random.default_rng(5)
    sample = read_bbx(wider_real / "wider_face_split" / "sample_val_bbx_gt.txt")
    faces = [a.faces.astype(np.float64) for a in sample]
    detections = [np.column_stack([f[rng.integers(0, len(f), 2 * len(f))] * rng.normal(1, 0.03, (2 * len(f), 4)),
                                   rng.random(2 * len(f))]) for f in faces]
    evaluator = coco_eval(faces, detections)
    precision = evaluator.eval["precision"][0, :, 0, 0, 0]
    outcomes = [match_detections(d, f) for f, d in zip(faces, detections)]
    ours = pooled_average_precision([d[:, 4] for d in detections], outcomes, sum(map(len, faces)), points=101)
    assert ours == pytest.approx(float(np.mean(precision[precision > -1])), abs=1e-12)

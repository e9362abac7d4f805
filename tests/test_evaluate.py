"""The WIDER FACE protocol: hand-computed cases, where MATLAB and the port part, the real ground truth, the CLI."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from facecompress.evaluation import __main__ as cli
from facecompress.core.errors import InputError
from facecompress.evaluation.submission import prediction_path, write_prediction_file
from facecompress.data.wider import (MAT_FILE, SETTING_MAT_FILES, SETTINGS, MatImage, read_bbx,
                                     read_mat_ground_truth)
from facecompress.evaluation.official import THRESHOLDS, evaluate, match_faces, voc_ap

FAR = [500.0, 500.0, 10.0, 10.0]  # a box that overlaps no face


def image(stem: str, boxes, keep=None, dtype=np.int32) -> MatImage:
    """A ground-truth image, its boxes stored as `dtype`; every face in every setting unless `keep` says otherwise."""
    boxes = np.asarray(boxes, dtype=dtype).reshape(-1, 4)
    kept = np.arange(len(boxes)) if keep is None else np.asarray(keep, dtype=np.int64)
    return MatImage("0--Test", stem, boxes, np.zeros((len(boxes), 6), np.int64), {s: kept for s in SETTINGS})


def dets(*rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def ap(predictions, images, compat="matlab") -> float:
    result = evaluate(predictions, images, compat)
    assert len(set(result.ap.values())) == 1  # every face is in every setting here
    return result.ap["easy"]


FACE = [10, 10, 20, 20]
FACE2 = [100, 100, 20, 20]


@pytest.mark.parametrize("compat", ["matlab", "port"])
def test_one_face_one_hit(compat):
    # normalised: hit 1, stray 0; the stray enters only at t = 0 -> (P 1, R 1) then (P 1/2, R 1)
    assert ap({"0--Test/a.jpg": dets([*FACE, 0.9], [*FAR, 0.1])}, [image("a", [FACE])], compat) == 1.0


@pytest.mark.parametrize("compat", ["matlab", "port"])
def test_a_single_score_value_normalises_to_nan_and_scores_zero(compat):
    # (s - min) / (max - min) = 0/0: no detection passes any threshold, however good it is
    assert ap({"0--Test/a.jpg": dets([*FACE, 0.9])}, [image("a", [FACE])], compat) == 0.0


@pytest.mark.parametrize("compat", ["matlab", "port"])
def test_duplicate_detection_is_a_false_positive(compat):
    # normalised 1, 0.75, 0.5, 0: (P 1, R .5), (P 1/2, R .5), (P 2/3, R 1), (P 1/2, R 1) -> .5 * 1 + .5 * 2/3
    predictions = {"0--Test/a.jpg": dets([*FACE, 0.9], [*FACE, 0.7], [*FACE2, 0.5], [*FAR, 0.1])}
    assert ap(predictions, [image("a", [FACE, FACE2])], compat) == pytest.approx(5 / 6, abs=1e-12)


@pytest.mark.parametrize("compat", ["matlab", "port"])
def test_detection_on_an_ignored_face_is_neither_tp_nor_fp(compat):
    predictions = {"0--Test/a.jpg": dets([*FACE2, 0.9], [*FACE, 0.5], [*FAR, 0.1])}
    result = evaluate(predictions, [image("a", [FACE, FACE2], keep=[0])], compat)
    assert result.ap["hard"] == 1.0
    curve = result.pr_curves["hard"]
    assert np.isnan(curve.precision[0]) and curve.recall[0] == 0  # only the ignored one is above: 0/0
    assert curve.precision[-1] == 0.5 and curve.recall[-1] == 1.0


def test_faceless_image_placeholder_box_makes_its_detections_false_positives():
    # the .mat's [0 0 0 0] box keeps the image in play: its detection (normalised 1) is a false positive
    images = [image("a", [FACE]), image("b", [[0, 0, 0, 0]], keep=[])]
    predictions = {"0--Test/a.jpg": dets([*FACE, 0.5]), "0--Test/b.jpg": dets([*FAR, 0.9])}
    assert ap(predictions, images) == 0.5


def test_image_without_boxes_is_skipped_but_still_normalised():
    # evaluation.m skips an image whose box list is empty; its score still sets the normalisation maximum
    images = [image("a", [FACE]), image("b", np.zeros((0, 4)))]
    predictions = {"0--Test/a.jpg": dets([*FACE, 0.5]), "0--Test/b.jpg": dets([*FAR, 0.9])}
    result = evaluate(predictions, images)
    assert result.ap["easy"] == 1.0 and np.isnan(result.pr_curves["easy"].precision[0])


def test_missing_file_means_no_predictions_in_matlab_and_an_error_in_the_port():
    images = [image("a", [FACE]), image("b", [FACE])]
    predictions = {"0--Test/a.jpg": dets([*FACE, 0.9], [*FAR, 0.1])}
    assert ap(predictions, images) == 0.5  # b's face is never found
    with pytest.raises(InputError, match="b.jpg"):
        evaluate(predictions, images, "port")
    assert ap({**predictions, "0--Test/b.jpg": dets()}, images, "port") == 0.5  # a file with no detections


@pytest.mark.parametrize("compat", ["matlab", "port"])
def test_no_predictions_at_all(compat):
    result = evaluate({"0--Test/a.jpg": dets()}, [image("a", [FACE])], compat)
    assert result.ap == {s: 0.0 for s in SETTINGS}


def test_unsorted_file_order_matlab_sorts_the_port_does_not():
    # file order: a stray (0.15), the hit (0.9), the minimum (0.1). MATLAB sorts: the hit alone is above
    # every t > 0.0625. The port cuts "up to the last box >= t", which drags the earlier stray along.
    predictions = {"0--Test/a.jpg": dets([*FAR, 0.15], [*FACE, 0.9], [*FAR, 0.1])}
    assert ap(predictions, [image("a", [FACE])]) == 1.0
    assert ap(predictions, [image("a", [FACE])], "port") == 0.5


def test_integer_overlap_takes_the_first_face_not_the_best():
    # the detection sits exactly on face 1; face 0 (ignored) overlaps it with IoU 99/143 = 0.69, which
    # int32 division rounds to 1 - the same as face 1's - and MATLAB's max takes the first
    faces = [[0, 0, 10, 10], [2, 0, 10, 10]]
    predictions = {"0--Test/a.jpg": dets([2, 0, 10, 10, 0.9], [*FAR, 0.1])}
    assert list(match_faces(predictions["0--Test/a.jpg"], np.array(faces))) == [0, -1]
    assert list(match_faces(predictions["0--Test/a.jpg"], np.array(faces), "port")) == [1, -1]
    assert ap(predictions, [image("a", faces, keep=[1])]) == 0.0
    assert ap(predictions, [image("a", faces, keep=[1])], "port") == 1.0


def test_integer_overlap_rounds_the_detection_corners():
    # face 0..9 (10 px); detection x 5.4..9: the port's IoU is 46/100, below 0.5. MATLAB rounds x1 to 5:
    # intersection 50, union round(100 + 46) - 50 = 96, 50/96 -> int32 1: a hit.
    face, det = [0, 0, 9, 9], [5.4, 0, 3.6, 9]
    assert match_faces(dets([*det, 1]), np.array([face]))[0] == 0
    assert match_faces(dets([*det, 1]), np.array([face]), "port")[0] == -1


def test_double_boxes_take_the_best_face_not_the_first():
    # the case above with the .mat storing double: IoU 99/143 and 1 stay apart, so max finds face 1
    faces = [[0, 0, 10, 10], [2, 0, 10, 10]]
    predictions = {"0--Test/a.jpg": dets([2, 0, 10, 10, 0.9], [*FAR, 0.1])}
    assert list(match_faces(predictions["0--Test/a.jpg"], np.array(faces, dtype=np.float64))) == [1, -1]
    result = evaluate(predictions, [image("a", faces, keep=[1], dtype=np.float64)])
    assert result.ap["easy"] == 1.0 and result.arithmetic == "double"
    assert evaluate(predictions, [image("a", faces, keep=[1])]).arithmetic == "int32"


def test_double_boxes_do_not_round_the_detection_corners():
    # the 5.4 corner above, against a double face: intersection 46, union 100 + 46 - 46, IoU 0.46 - a miss
    face, det = [0, 0, 9, 9], [5.4, 0, 3.6, 9]
    assert match_faces(dets([*det, 1]), np.array([face], dtype=np.float64))[0] == -1
    predictions = {"0--Test/a.jpg": dets([*det, 0.9], [*FAR, 0.1])}
    assert ap(predictions, [image("a", [face], dtype=np.float64)]) == 0.0
    assert ap(predictions, [image("a", [face])]) == 1.0


def test_scores_outside_unit_range_normalise_differently():
    # logits 100.05 (hit) and 100.0 (stray): MATLAB maps them to 1 and 0; the port's min is seeded with 1,
    # so both land above 0.999 and enter together
    predictions = {"0--Test/a.jpg": dets([*FACE, 100.05], [*FAR, 100.0])}
    assert ap(predictions, [image("a", [FACE])]) == 1.0
    assert ap(predictions, [image("a", [FACE])], "port") == 0.5


def test_single_precision_normalisation_moves_a_score_across_a_threshold():
    # 0.49999999 is below t = 0.5 in double but rounds to 0.5 in single: MATLAB lets the hit in at t = 0.5,
    # ahead of the stray at 0.4995; in double both enter at t = 0.499
    predictions = {"0--Test/a.jpg": dets([*FAR, 1.0], [*FACE, 0.49999999], [*FAR, 0.4995], [*FAR, 0.0])}
    assert ap(predictions, [image("a", [FACE])]) == 0.5
    assert ap(predictions, [image("a", [FACE])], "port") == pytest.approx(1 / 3, abs=1e-12)


@pytest.mark.parametrize("compat", ["matlab", "port"])
def test_tied_scores_do_not_depend_on_file_order(compat):
    rows = [[*FACE, 0.5], [*FAR, 0.5], [*FACE2, 0.5], [*FAR, 0.1]]
    images = [image("a", [FACE, FACE2])]
    expected = ap({"0--Test/a.jpg": dets(*rows)}, images, compat)
    assert ap({"0--Test/a.jpg": dets(*rows[::-1][1:], rows[-1])}, images, compat) == expected


def test_tied_overlap_goes_to_the_first_face():
    faces = np.array([[0, 0, 10, 10], [4, 0, 10, 10]])
    for compat in ("matlab", "port"):
        assert match_faces(dets([2, 0, 10, 10, 1]), faces, compat)[0] == 0


def test_voc_ap_skips_or_propagates_nan():
    recall, precision = np.array([0.0, 0.5, 1.0]), np.array([np.nan, 1.0, 0.5])
    assert voc_ap(recall, precision) == voc_ap(recall, precision, skip_nan=False) == 0.75
    assert np.isnan(voc_ap(np.full(3, np.nan), precision))


def test_restrict_to_reports_itself(caplog):
    caplog.set_level(logging.INFO, logger="facecompress.evaluation.official")
    images = [image("a", [FACE]), image("b", [FACE])]
    predictions = {"0--Test/a.jpg": dets([*FACE, 0.9], [*FAR, 0.1])}
    result = evaluate(predictions, images, restrict_to=["0--Test/a.jpg"])
    assert result.ap["easy"] == 1.0 and result.restricted_to == 1 and result.images == 1
    assert "restricted to 1 of 2" in caplog.text
    with pytest.raises(InputError, match="not in the ground truth"):
        evaluate(predictions, images, restrict_to=["0--Test/zzz.jpg"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="compat"):
        evaluate({}, [], "octave")
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        evaluate({"0--Test/a.jpg": np.zeros((2, 4))}, [image("a", [FACE])])
    with pytest.raises(InputError, match="NaN"):
        evaluate({"0--Test/a.jpg": dets([*FACE, np.nan])}, [image("a", [FACE])], "port")


# --- the real ground truth -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_gt(wider_real):
    return read_mat_ground_truth(wider_real / "ground_truth")


def perfect(ground_truth, score=1.0):
    return {m.name: np.column_stack([m.boxes.astype(np.float64), np.full(len(m.boxes), score)]) for m in ground_truth}


def test_real_ground_truth_as_predictions_all_equal_scores_is_zero(real_gt):
    assert evaluate(perfect(real_gt), real_gt).ap == {s: 0.0 for s in SETTINGS}


def test_real_ground_truth_as_predictions(real_gt):
    # every box predicted (score 1) plus one stray at score 0 so that normalisation is defined. Still not
    # 1.0: a .mat box with w = -2 (39_Ice_Skating_iceskiing_39_583) can match nothing and is a false
    # positive everywhere; in crowds MATLAB's first-face rule sends some detections to a neighbour.
    predictions = perfect(real_gt)
    first = real_gt[0].name
    predictions[first] = np.vstack([predictions[first], [[0, 0, 1, 1, 0.0]]])
    matlab = evaluate(predictions, real_gt)
    port = evaluate(predictions, real_gt, "port")
    assert matlab.faces == {"easy": 7211, "medium": 13319, "hard": 31958} and matlab.images == 3226
    assert all(0.999 < matlab.ap[s] < port.ap[s] < 1.0 for s in SETTINGS)
    assert all(port.pr_curves[s].recall[0] > 0.9999 for s in SETTINGS)


def test_real_ground_truth_restricted_to_the_sample(wider_real, real_gt):
    sample = read_bbx(wider_real / "wider_face_split" / "sample_val_bbx_gt.txt")
    rng = np.random.default_rng(0)
    predictions = {a.name: np.column_stack([a.boxes, rng.uniform(0.5, 1, len(a.boxes))]) for a in sample}
    result = evaluate(predictions, real_gt, restrict_to=predictions)
    assert result.restricted_to == 19 and result.faces["easy"] == 108
    assert result.ap["easy"] == 1.0 and 0.98 < result.ap["hard"] <= 1.0
    assert evaluate(predictions, real_gt).ap["hard"] < 0.02  # the other 3,207 images count as missed


def test_curves_are_the_thresholds_high_to_low(real_gt):
    curve = evaluate(perfect(real_gt[:5], 0.7) | {real_gt[0].name: np.zeros((0, 5))}, real_gt[:5]).pr_curves["hard"]
    assert np.array_equal(curve.thresholds, THRESHOLDS) and len(curve.precision) == len(curve.recall) == 1000


# --- ground truth re-saved in another class ----------------------------------------------------------------

def resave(source, target, dtype, names=(MAT_FILE, *SETTING_MAT_FILES.values())):
    """Copy the four .mat files, re-saving `names` with every face_bbx_list cell as `dtype`, as other tools do."""
    import scipy.io

    target.mkdir(parents=True, exist_ok=True)
    for name in (MAT_FILE, *SETTING_MAT_FILES.values()):
        if name not in names:
            shutil.copy(source / name, target / name)
            continue
        data = {k: v for k, v in scipy.io.loadmat(source / name).items() if not k.startswith("__")}
        events = data["face_bbx_list"].copy()
        for e in range(len(events)):
            events[e, 0] = events[e, 0].copy()
            for i in range(len(events[e, 0])):
                events[e, 0][i, 0] = events[e, 0][i, 0].astype(dtype)
        scipy.io.savemat(target / name, {**data, "face_bbx_list": events})
    return target


def test_double_mat_keeps_its_class(sample_dataset, tmp_path):
    split = sample_dataset[1]
    stored, double = read_mat_ground_truth(split), read_mat_ground_truth(resave(split, tmp_path, np.float64))
    assert all(m.boxes.dtype == np.int32 for m in stored) and all(m.boxes.dtype == np.float64 for m in double)
    for a, b in zip(stored, double):
        assert a.name == b.name and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.attributes, b.attributes)
        assert all(np.array_equal(a.keep[s], b.keep[s]) for s in SETTINGS)


def test_setting_file_of_another_class_is_refused(sample_dataset, tmp_path):
    # eval_tools score each setting with the boxes of its own file, so one class must hold in all four
    resave(sample_dataset[1], tmp_path, np.float64, names=(MAT_FILE,))
    with pytest.raises(InputError) as err:
        read_mat_ground_truth(tmp_path)
    assert "wider_easy_val.mat: face_bbx_list of" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_box_class_matlab_would_compute_otherwise_is_refused(sample_dataset, tmp_path, dtype):
    resave(sample_dataset[1], tmp_path, dtype)
    with pytest.raises(InputError, match=f"wider_face_val.mat: face_bbx_list of .* stored as {np.dtype(dtype)}"):
        read_mat_ground_truth(tmp_path)


# --- the command line --------------------------------------------------------------------------------------

def test_cli_prints_json_last(tmp_path, wider_real, real_gt, capsys):
    sample = read_bbx(wider_real / "wider_face_split" / "sample_val_bbx_gt.txt")
    for i, annotation in enumerate(sample):
        boxes = np.column_stack([annotation.boxes, np.linspace(1, 0.5, len(annotation.boxes)) - i / 100])
        write_prediction_file(prediction_path(tmp_path, annotation.name), annotation.name, boxes)
    args = ["--pred", str(tmp_path), "--gt", str(wider_real / "ground_truth"), "--restrict"]
    summary = cli.main(args)
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == summary and set(SETTINGS) <= set(last) and last["restricted_to"] == 19
    assert cli.main(args + ["--compat", "port"])["compat"] == "port"


def test_cli_bad_input_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--pred", str(tmp_path / "nowhere"), "--gt", str(tmp_path)])
    assert exit_info.value.code == 2 and "prediction folder not found" in capsys.readouterr().err


def test_cli_says_which_arithmetic(tmp_path, wider_real, capsys):
    sample = read_bbx(wider_real / "wider_face_split" / "sample_val_bbx_gt.txt")
    rng = np.random.default_rng(1)
    for annotation in sample:  # faces moved by half pixels: where int32 rounding and double part
        boxes = annotation.boxes + rng.integers(-4, 5, annotation.boxes.shape) * 0.5
        write_prediction_file(prediction_path(tmp_path / "pred", annotation.name), annotation.name,
                              np.column_stack([boxes, rng.random(len(boxes))]))
    double = resave(wider_real / "ground_truth", tmp_path / "double", np.float64)
    args = ["--pred", str(tmp_path / "pred"), "--restrict"]
    runs = {}
    for gt, compat in ((wider_real / "ground_truth", "matlab"), (double, "matlab"), (double, "port")):
        runs[gt.name, compat] = cli.main(args + ["--gt", str(gt), "--compat", compat])
        out = capsys.readouterr().out.strip().splitlines()
        assert json.loads(out[-1]) == runs[gt.name, compat]
        assert f"overlap arithmetic: {runs[gt.name, compat]['arithmetic']} (" in out[0]
    assert [r["arithmetic"] for r in runs.values()] == ["int32", "double", "double"]
    assert runs["ground_truth", "matlab"]["hard"] != runs["double", "matlab"]["hard"]

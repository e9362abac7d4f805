"""The WIDER FACE annotation parsers, on the real official files and on every kind of damaged input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from facecompress.core.errors import InputError
from facecompress.data.wider import (BBX_FILE, SETTINGS, compare_txt_and_mat, read_bbx, read_mat_ground_truth)

ICE = "39--Ice_Skating/39_Ice_Skating_iceskiing_39_583.jpg"
FACELESS = {"0--Parade/0_Parade_Parade_0_275.jpg", "37--Soccer/37_Soccer_soccer_ball_37_281.jpg",
            "50--Celebration_Or_Party/50_Celebration_Or_Party_houseparty_50_715.jpg",
            "7--Cheering/7_Cheering_Cheering_7_426.jpg"}


@pytest.fixture(scope="module")
def real_txt(wider_real):
    return read_bbx(wider_real / "wider_face_split" / BBX_FILE)


@pytest.fixture(scope="module")
def real_mat(wider_real):
    return read_mat_ground_truth(wider_real / "ground_truth")


def test_real_txt_counts(real_txt):
    assert len(real_txt) == 3226
    assert sum(len(a.boxes) for a in real_txt) == 39708
    assert len({a.event for a in real_txt}) == 61
    assert sum(int(a.attributes[:, 3].sum()) for a in real_txt) == 585  # invalid=1 rows


def test_real_txt_known_boxes(real_txt):
    by_name = {a.name: a for a in real_txt}
    first = real_txt[0]
    assert first.name == "0--Parade/0_Parade_marchingband_1_465.jpg" and len(first.boxes) == 126
    assert first.boxes[0].tolist() == [345, 211, 4, 4] and first.attributes[0].tolist() == [2, 0, 0, 0, 2, 0]
    assert first.attributes[1].tolist() == [0, 0, 0, 1, 0, 0]
    assert by_name["0--Parade/0_Parade_Parade_0_829.jpg"].boxes.tolist() == [[501, 160, 285, 443]]
    last = real_txt[-1]
    assert last.name == "9--Press_Conference/9_Press_Conference_Press_Conference_9_183.jpg"
    assert last.boxes[-1].tolist() == [560, 136, 170, 204] and last.attributes[-1, 0] == 1
    assert by_name[ICE].boxes[7].tolist() == [1026, 474, 0, 23]


def test_real_txt_faceless_convention(real_txt):
    faceless = {a.name for a in real_txt if len(a.faces) == 0}
    assert faceless == FACELESS
    for name in FACELESS:
        annotation = next(a for a in real_txt if a.name == name)
        assert annotation.boxes.tolist() == [[0, 0, 0, 0]] and not annotation.face_mask.any()
    assert sum(len(a.faces) for a in real_txt) == 39708 - 4


def test_real_mat_counts(real_mat):
    assert len(real_mat) == 3226 and len({m.event for m in real_mat}) == 61
    assert sum(len(m.boxes) for m in real_mat) == 39708
    assert [sum(len(m.keep[s]) for m in real_mat) for s in SETTINGS] == [7211, 13319, 31958]
    assert all(m.boxes.dtype == np.int32 for m in real_mat)
    assert all(np.all(m.keep[s] >= 0) and np.all(m.keep[s] < len(m.boxes)) for m in real_mat for s in SETTINGS)


def test_real_settings_are_nested(real_mat):
    for m in real_mat:
        assert set(m.keep["easy"]) <= set(m.keep["medium"]) <= set(m.keep["hard"])


def test_txt_and_mat_agree_but_for_the_known_quirk(real_txt, real_mat):
    assert compare_txt_and_mat(real_txt, real_mat) == [
        f"{ICE}: box 7 is [1026, 474, 0, 23] in the text, [1026, 474, -2, 23] in the .mat"]


def test_train_convention_zero_count_with_placeholder(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("0--A/a.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n0--A/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0 \n0--A/c.jpg\n0\n")
    a, b, c = read_bbx(path)
    assert a.boxes.tolist() == [[0, 0, 0, 0]] and len(a.faces) == 0
    assert b.faces.tolist() == [[1, 2, 3, 4]]
    assert c.boxes.shape == (0, 4)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("0--A/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0 \n", ":4: file ends inside the face rows"),
    ("0--A/a.jpg\n", ":2: file ends after the name"),
    ("0--A/a.jpg\n1\n1 2 x 4 0 0 0 0 0 0 \n", ":3: non-numeric field 'x'"),
    ("0--A/a.jpg\none\n", ":2: non-numeric field 'one'"),
    ("0--A/a.jpg\n1\n1 2 3 4 0 0 0 0 0 \n", ":3: expected 10 fields"),
    ("0--A/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0 \n0--A/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0 \n",
     ":4: 0--A/a.jpg declares more faces than the rows"),
    ("0--A/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0 \n1 2 3 4 0 0 0 0 0 0 \n", ":4: expected an image name"),
    ("0--A/a.jpg\n0\n1 2 3 4 0 0 0 0 0 0 \n", ":3: 0--A/a.jpg declares 0 faces but a face row follows"),
    ("0--A/a.jpg\n-1\n", ":2: negative face count"),
])
def test_malformed_bbx_names_file_and_line(tmp_path, text, message):
    path = tmp_path / BBX_FILE
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_bbx(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_bbx(tmp_path):
    with pytest.raises(InputError, match="annotation file not found"):
        read_bbx(tmp_path / BBX_FILE)


def test_missing_mat(wider_real, tmp_path):
    shutil.copy(wider_real / "ground_truth" / "wider_face_val.mat", tmp_path)
    with pytest.raises(InputError, match="wider_easy_val.mat: evaluation file not found"):
        read_mat_ground_truth(tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_keys"])
def test_corrupt_mat(wider_real, tmp_path, damage):
    for f in (wider_real / "ground_truth").glob("*.mat"):
        shutil.copy(f, tmp_path)
    target = tmp_path / "wider_face_val.mat"
    data = target.read_bytes()
    if damage == "garbage":
        target.write_bytes(b"not a mat file at all" * 10)
    elif damage == "truncated":
        target.write_bytes(data[: len(data) // 3])
    else:
        import scipy.io
        scipy.io.savemat(target, {"something": 1})
    with pytest.raises(InputError) as err:
        read_mat_ground_truth(tmp_path)
    assert "wider_face_val.mat" in str(err.value) and "\n" not in str(err.value)

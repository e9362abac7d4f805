"""Submission files: exact round trips, and each evaluator's way of reading odd files, fast path or not."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from facecompress.core.errors import InputError
from facecompress.evaluation.submission import (parse_matlab, parse_port, prediction_path, read_prediction_dir,
                                      write_prediction_file)

NAME = "0--Parade/0_Parade_marchingband_1_465.jpg"


def write_raw(root, name: str, text: str) -> None:
    path = prediction_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


def test_round_trip_is_exact_in_both_modes(tmp_path):
    rng = np.random.default_rng(0)
    boxes = {f"{e}--Ev/img_{i}.jpg": np.column_stack([rng.normal(300, 300, (40, 4)), rng.random(40)])
             for e in range(3) for i in range(4)}
    boxes["0--Ev/img_0.jpg"] = boxes["0--Ev/img_0.jpg"].astype(np.float32)  # as a model emits them
    boxes["1--Ev/img_1.jpg"] = np.zeros((0, 5))
    boxes["2--Ev/img_2.jpg"] = np.array([[1e-300, -0.0, 1e300, 5e-324, 0.1 + 0.2]])
    for name, dets in boxes.items():
        write_prediction_file(prediction_path(tmp_path, name), name, dets)
    for compat in ("matlab", "port"):
        read = read_prediction_dir(tmp_path, compat)
        assert set(read) == set(boxes)
        for name, dets in boxes.items():
            assert read[name].dtype == np.float64 and np.array_equal(read[name], dets.astype(np.float64))


def test_file_layout(tmp_path):
    path = prediction_path(tmp_path, NAME)
    assert path == tmp_path / "0--Parade" / "0_Parade_marchingband_1_465.txt"
    write_prediction_file(path, NAME, np.array([[1.5, 2.0, 3.0, 4.0, 0.25]]))
    assert path.read_text() == "0_Parade_marchingband_1_465.jpg\n1\n1.5 2.0 3.0 4.0 0.25\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # atomic: no temporary left behind
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        write_prediction_file(path, NAME, np.zeros((3, 4)))


@pytest.mark.parametrize("text, expected", [
    ("garbage line one\n2\n1 2 3 4 0.5\n5 6 7 8 0.25\n", [[1, 2, 3, 4, 0.5], [5, 6, 7, 8, 0.25]]),  # line 1 ignored
    ("x\n1\n1 2 3 4 0.5\n5 6 7 8 0.25\n", [[1, 2, 3, 4, 0.5]]),  # exactly the stated count
    ("x\n1\n1 2 3 4\n", [[1, 2, 3, 4, 4]]),  # raw_info(end): with four numbers the score is h
    ("x\n1\n1 2 3 4 9 0.5\n", [[1, 2, 3, 4, 0.5]]),  # six numbers: the last is the score
    ("x\n1\n  1,2\t3 4 0.5  \n", [[1, 2, 3, 4, 0.5]]),  # str2num's separators
    ("x\r\n1\r\n1 2 3 4 0.5\r\n", [[1, 2, 3, 4, 0.5]]),
    ("x\n 2 \n1 2 3 4 nan\n1 2 3 4 Inf\n", [[1, 2, 3, 4, np.nan], [1, 2, 3, 4, np.inf]]),
    ("x\n0\n1 2 3 4 0.5\n", []),
    ("x\n-1\n", []),
])
def test_matlab_reader(text, expected):
    assert np.array_equal(parse_matlab(text), np.array(expected, dtype=np.float64).reshape(-1, 5), equal_nan=True)


@pytest.mark.parametrize("text", [
    "", "x\n", "x\nabc\n", "x\n2.5\n1 2 3 4 5\n", "x\n1 2\n1 2 3 4 5\n",
    "x\n2\n1 2 3 4 0.5\n",  # fewer lines than stated
    "x\n2\n1 2 3 4 0.5\n\n1 2 3 4 0.5\n",  # a blank line inside the count
    "x\n1\n1 2 3\n", "x\n1\n1 2 3 4 five\n", "x\n1\n1_0 2 3 4 5\n",
])
def test_matlab_reader_invalid_format(text):
    assert parse_matlab(text) is None


def test_matlab_invalid_file_is_logged_and_empty(tmp_path, caplog):
    write_raw(tmp_path, NAME, "x\n3\n1 2 3 4 0.5\n")
    with caplog.at_level(logging.WARNING):
        assert read_prediction_dir(tmp_path)[NAME].shape == (0, 5)
    assert "invalid format" in caplog.text


def test_port_reader(tmp_path):
    path = tmp_path / "0--Parade" / "whatever.txt"
    key, boxes = parse_port("0--Parade/0_Parade_x_1.jpg\n1\n1 2 3 4 0.5\n\n 9 9 9 9 9\n5 6 7 8 0.25 77\n", path)
    assert key == "0--Parade/0_Parade_x_1.jpg"  # the name on line 1, not the file's
    assert np.array_equal(boxes, [[1, 2, 3, 4, 0.5], [5, 6, 7, 8, 0.25]])  # count ignored, blank lines skipped
    assert parse_port("0_Parade_x_1\n", path)[0] == "0--Parade/0_Parade_x_1.jpg"
    for bad in ("", "n.jpg\n1\n1 2 3 4\n", "n.jpg\n1\n1  2 3 4 5\n", "n.jpg\n1\n1\t2\t3\t4\t5\n"):
        with pytest.raises(InputError):
            parse_port(bad, path)


def test_port_duplicate_names_and_missing_folder(tmp_path):
    write_raw(tmp_path, "0--Parade/a.jpg", "a.jpg\n0\n")
    write_raw(tmp_path, "0--Parade/b.jpg", "a.jpg\n0\n")
    with pytest.raises(InputError, match="second prediction file"):
        read_prediction_dir(tmp_path, "port")
    assert set(read_prediction_dir(tmp_path, "matlab")) == {"0--Parade/a.jpg", "0--Parade/b.jpg"}
    with pytest.raises(InputError, match="not found"):
        read_prediction_dir(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="compat"):
        read_prediction_dir(tmp_path, "octave")


ODD_FILES = {
    "plain": "p.jpg\n2\n1 2 3 4 0.5\n5 6 7 8 0.25\n",
    "extra_lines": "p.jpg\n1\n1 2 3 4 0.5\n5 6 7 8 0.25\n",
    "four_fields": "p.jpg\n2\n1 2 3 4 0.5\n5 6 7 8\n",
    "nan_score": "p.jpg\n1\n1 2 3 4 nan\n",
    "blank_inside": "p.jpg\n2\n1 2 3 4 0.5\n\n",
    "no_final_newline": "p.jpg\n1\n1 2 3 4 0.5",
    "empty": "",
}


@pytest.mark.parametrize("spoiler", [None, "p.jpg\n1\n1 2 3 4 5 6\n", "p.jpg\n1\n1  2 3 4 5\n"])
def test_bulk_path_reads_every_file_as_the_slow_path(tmp_path, spoiler):
    files = dict(ODD_FILES) | ({} if spoiler is None else {"spoiler": spoiler})
    for stem, text in files.items():
        write_raw(tmp_path, f"0--Ev/{stem}.jpg", text)
    read = read_prediction_dir(tmp_path)
    for stem, text in files.items():
        expected = parse_matlab(text)
        expected = np.zeros((0, 5)) if expected is None else expected
        assert np.array_equal(read[f"0--Ev/{stem}.jpg"], expected, equal_nan=True), stem


def test_bulk_path_in_port_mode(tmp_path):
    files = {"a": "a.jpg\n2\n1 2 3 4 0.5\n5 6 7 8 0.25\n", "b": "b.jpg\n9\n1 2 3 4 0.5\n", "c": "c.jpg\n0\n",
             "d": "d.jpg\n1\n1 2 3 4 nan\n"}
    for stem, text in files.items():
        write_raw(tmp_path, f"0--Ev/{stem}.jpg", text)
    read = read_prediction_dir(tmp_path, "port")
    for stem, text in files.items():
        assert np.array_equal(read[f"0--Ev/{stem}.jpg"], parse_port(text, tmp_path / "0--Ev" / "x.txt")[1],
                              equal_nan=True)

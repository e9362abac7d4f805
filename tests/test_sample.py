"""The embedded generated sample: deterministic, consistent with itself, official in structure, never over real data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecompress.data import sample
from facecompress.data.dataset import SAMPLE_MARKER, open_dataset
from facecompress.data.wider import BBX_FILE, MAT_FILE, SETTINGS, compare_txt_and_mat, read_bbx, read_mat_ground_truth


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path, sample_dataset):
    images, split = sample_dataset
    sample.generate(tmp_path / "a" / "images", tmp_path / "a" / "split", seed=0, per_event=2)
    assert _tree(tmp_path / "a" / "images") == _tree(images)
    assert _tree(tmp_path / "a" / "split") == _tree(split)
    sample.generate(tmp_path / "b" / "images", tmp_path / "b" / "split", seed=1, per_event=2)
    assert read_bbx(tmp_path / "b" / "split" / BBX_FILE)[0].boxes.tolist() != read_bbx(split / BBX_FILE)[0].boxes.tolist()


def test_text_and_mat_files_agree(sample_dataset):
    _, split = sample_dataset
    annotations, mat = read_bbx(split / BBX_FILE), read_mat_ground_truth(split)
    assert compare_txt_and_mat(annotations, mat) == []
    assert len(mat) == len(sample.EVENTS) * 2 and len({m.event for m in mat}) == len(sample.EVENTS)


def test_faces_span_wider_scales_and_settings_nest(sample_dataset):
    _, split = sample_dataset
    annotations, mat = read_bbx(split / BBX_FILE), read_mat_ground_truth(split)
    heights = np.concatenate([a.faces[:, 3] for a in annotations])
    assert (heights < 16).sum() >= 10 and heights.max() >= 80
    counts = [sum(len(m.keep[s]) for m in mat) for s in SETTINGS]
    assert 0 < counts[0] < counts[1] < counts[2] <= len(heights)
    for m in mat:
        assert set(m.keep["easy"]) <= set(m.keep["medium"]) <= set(m.keep["hard"])
        assert np.all(m.boxes[m.keep["easy"], 3] >= 32)


def test_boxes_inside_image_and_disjoint(sample_dataset):
    images, split = sample_dataset
    for annotation in read_bbx(split / BBX_FILE):
        width, height = Image.open(images / annotation.name).size
        x, y, w, h = annotation.faces.T
        assert np.all((x >= 0) & (y >= 0) & (x + w <= width) & (y + h <= height))
        for i in range(len(x)):
            for j in range(i + 1, len(x)):
                assert x[i] + w[i] <= x[j] or x[j] + w[j] <= x[i] or y[i] + h[i] <= y[j] or y[j] + h[j] <= y[i]


def test_faceless_image_uses_official_placeholder(sample_dataset):
    _, split = sample_dataset
    text = (split / BBX_FILE).read_text()
    faceless = [a for a in read_bbx(split / BBX_FILE) if len(a.faces) == 0]
    assert len(faceless) == 1
    assert f"{faceless[0].name}\n1\n0 0 0 0 0 0 0 0 0 0 \n" in text
    mat = {m.name: m for m in read_mat_ground_truth(split)}[faceless[0].name]
    assert mat.boxes.tolist() == [[0, 0, 0, 0]] and all(len(mat.keep[s]) == 0 for s in SETTINGS)


def test_marked_as_generated(sample_dataset):
    images, split = sample_dataset
    for folder in sample_dataset:
        info = json.loads((folder / SAMPLE_MARKER).read_text())
        assert info["complete"] and info["seed"] == 0 and "not WIDER FACE" in info["note"]
    assert open_dataset(images, split).describe().startswith("generated sample, not WIDER FACE")


def test_existing_identical_sample_is_reused(tmp_path):
    images, split = tmp_path / "images", tmp_path / "split"
    sample.generate(images, split, per_event=1)
    stamp = (split / BBX_FILE).stat().st_mtime_ns
    sample.generate(images, split, per_event=1)
    assert (split / BBX_FILE).stat().st_mtime_ns == stamp
    sample.generate(images, split, per_event=1, seed=3)
    assert (split / BBX_FILE).stat().st_mtime_ns != stamp
    assert sorted(p.name for p in images.rglob("*.jpg")) == sorted(a.name.split("/")[1] for a in read_bbx(split / BBX_FILE))


@pytest.mark.parametrize("occupied", ["split", "images"])
def test_refuses_to_overwrite_real_data(tmp_path, capsys, occupied):
    images, split = tmp_path / "images", tmp_path / "split"
    if occupied == "split":
        split.mkdir()
        (split / BBX_FILE).write_text("real annotations")
    else:
        (images / "0--Parade").mkdir(parents=True)
        (images / "0--Parade" / "real.jpg").write_bytes(b"real")
    with pytest.raises(SystemExit) as exit_info:
        sample.main(["--images", str(images), "--split", str(split)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a generated sample; not overwriting" in err
    assert not (split / BBX_FILE).exists() or (split / BBX_FILE).read_text() == "real annotations"
    assert not (images / "0--Parade" / "real.jpg").exists() or (images / "0--Parade" / "real.jpg").read_bytes() == b"real"


def test_keep_existing_leaves_real_data_and_succeeds(tmp_path, capsys):
    split = tmp_path / "split"
    split.mkdir()
    (split / BBX_FILE).write_text("real annotations")
    sample.main(["--images", str(tmp_path / "images"), "--split", str(split), "--keep-existing"])
    assert "using it, generating nothing" in capsys.readouterr().out
    assert (split / BBX_FILE).read_text() == "real annotations" and not (tmp_path / "images").exists()


def _state(root) -> dict[str, str]:
    """Every path under `root` with its file's sha256 ('' for a folder): any write or deletion changes it."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(root.rglob("*"))}


# each case: files a user put there (folder, path inside it); one WIDER file is enough to make a folder real
FOREIGN = {
    "official .mat files only": [("split", "wider_face_val.mat"), ("split", "wider_easy_val.mat"),
                                 ("split", "wider_medium_val.mat"), ("split", "wider_hard_val.mat")],
    "one setting .mat": [("split", "wider_hard_val.mat")],
    "bbx text only": [("split", BBX_FILE)],
    "images only": [("images", "0--Parade/0_Parade_marchingband_1_5.jpg")],
    "a png at the top": [("images", "face.PNG")],
    "an image in the split folder": [("split", "0--Parade/0_Parade_marchingband_1_5.jpg")],
    ".mat in the images folder": [("images", "wider_face_val.mat")],
}


def _foreign(tmp_path, files):
    images, split = tmp_path / "images", tmp_path / "split"
    for folder, name in files:
        path = tmp_path / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"user data " + name.encode())
    return images, split


@pytest.mark.parametrize("flags", [[], ["--force"]])
@pytest.mark.parametrize("case", FOREIGN)
def test_any_wider_file_without_marker_is_refused_and_untouched(tmp_path, capsys, case, flags):
    images, split = _foreign(tmp_path, FOREIGN[case])
    before = _state(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        sample.main(["--images", str(images), "--split", str(split), "--per-event", "1", *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    folder, name = FOREIGN[case][0]
    assert err.count("\n") == 1 and "not a generated sample; not overwriting" in err
    assert f"{tmp_path / folder}: holds " in err and Path(name).name in err
    assert _state(tmp_path) == before


@pytest.mark.parametrize("case", FOREIGN)
def test_keep_existing_writes_nothing_next_to_any_wider_file(tmp_path, capsys, case):
    images, split = _foreign(tmp_path, FOREIGN[case])
    before = _state(tmp_path)
    sample.main(["--images", str(images), "--split", str(split), "--per-event", "1", "--keep-existing"])
    out = capsys.readouterr().out
    assert "using it, generating nothing" in out and Path(FOREIGN[case][0][1]).name in out
    assert _state(tmp_path) == before


def test_real_mat_files_keep_their_bytes(tmp_path, wider_real, capsys):
    split = tmp_path / "split"
    split.mkdir()
    for path in (wider_real / "ground_truth").glob("*.mat"):
        (split / path.name).write_bytes(path.read_bytes())
    before = _state(tmp_path)
    sample.main(["--images", str(tmp_path / "images"), "--split", str(split), "--keep-existing"])
    with pytest.raises(SystemExit):
        sample.main(["--images", str(tmp_path / "images"), "--split", str(split), "--force"])
    assert _state(tmp_path) == before and sum(map(bool, before.values())) == 4


def test_other_files_do_not_make_a_folder_real(tmp_path):
    images, split = tmp_path / "images", tmp_path / "split"
    for path in (split / "README.md", images / "notes.txt"):
        path.parent.mkdir(parents=True)
        path.write_text("not WIDER")
    annotations = sample.generate(images, split, per_event=1)
    assert (split / BBX_FILE).is_file() and (images / annotations[0].name).is_file()
    assert (split / "README.md").read_text() == (images / "notes.txt").read_text() == "not WIDER"


def test_own_sample_is_kept_by_keep_existing_and_regenerated_by_force(tmp_path, capsys):
    images, split = tmp_path / "images", tmp_path / "split"
    args = ["--images", str(images), "--split", str(split), "--per-event", "1"]
    sample.main(args)
    stamp = (split / MAT_FILE).stat().st_mtime_ns
    sample.main(args + ["--keep-existing"])
    assert (split / MAT_FILE).stat().st_mtime_ns == stamp
    sample.main(args + ["--force"])
    assert (split / MAT_FILE).stat().st_mtime_ns != stamp
    assert "generated sample (not WIDER FACE)" in capsys.readouterr().out

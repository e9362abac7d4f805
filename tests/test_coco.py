"""WIDER FACE -> COCO for rfdetr's trainer: counts kept and dropped, clipping, and what rfdetr reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facecompress.train.coco import ANNOTATIONS, Filters, coco_dataset, face_verdicts, write_split
from facecompress.data.dataset import open_dataset
from facecompress.data.wider import ImageAnnotation, read_bbx

HUGE = (10**6, 10**6)  # an image size that clips nothing


def raw_face_rows(path) -> list[list[int]]:
    """Face rows of a bbx file read naively (name, count, rows; a count of 0 still has one row), for cross-checks."""
    lines, rows, index = path.read_text().splitlines(), [], 0
    while index < len(lines):
        count = int(lines[index + 1])
        block = [list(map(int, line.split()[:10])) for line in lines[index + 2:index + 2 + max(count, 1)]]
        rows += [r for r in block if any(r)]  # the all-zero row of a faceless image is no face
        index += 2 + max(count, 1)
    return rows


def test_counts_on_real_wider_val(wider_real):
    path = wider_real / "wider_face_split" / "wider_face_val_bbx_gt.txt"
    annotations = read_bbx(path)
    rows = np.array(raw_face_rows(path))
    empty = (rows[:, 2] <= 0) | (rows[:, 3] <= 0)
    invalid = (rows[:, 7] == 1) & ~empty
    _, counts = coco_dataset(annotations, lambda a: HUGE, Filters(drop_invalid=True))
    assert counts["images"] == len(annotations) == 3226
    assert counts["empty box"] == empty.sum() >= 1  # the official file holds a zero-width box
    assert counts["invalid"] == invalid.sum() > 500
    assert counts["kept"] == len(rows) - empty.sum() - invalid.sum()
    assert counts["kept"] + counts["invalid"] + counts["empty box"] == 39704  # every real face accounted for

    small = ~empty & ~invalid & (np.minimum(rows[:, 2], rows[:, 3]) < 10)
    _, sized = coco_dataset(annotations, lambda a: HUGE, Filters(drop_invalid=True, min_size=10))
    assert sized["smaller than 10 px"] == small.sum() > 10000  # WIDER is mostly tiny faces
    assert sized["kept"] == counts["kept"] - small.sum()

    _, everything = coco_dataset(annotations, lambda a: HUGE, Filters(drop_invalid=False))
    assert everything["kept"] == len(rows) - empty.sum() and "invalid" not in everything


def test_real_images_convert_to_a_coco_file_pycocotools_reads(wider_real, tmp_path):
    from pycocotools.coco import COCO

    annotations = read_bbx(wider_real / "wider_face_split" / "wider_face_val_bbx_gt.txt")
    images_dir = wider_real / "WIDER_val" / "images"
    present = [a for a in annotations if (images_dir / a.name).is_file()]
    counts = write_split(present, images_dir, tmp_path, "val", Filters())
    coco = COCO(str(tmp_path / "valid" / ANNOTATIONS))
    assert len(coco.getImgIds()) == len(present) == counts["images"] > 10
    assert len(coco.getAnnIds()) == counts["kept"]
    for image in coco.loadImgs(coco.getImgIds()):
        assert (tmp_path / "valid" / image["file_name"]).is_file()  # linked event folders resolve
        for face in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            x, y, w, h = face["bbox"]
            assert 0 <= x and 0 <= y and x + w <= image["width"] and y + h <= image["height"] and w > 0 and h > 0


def test_boxes_are_clipped_and_verdicts_given_in_order():
    annotation = ImageAnnotation("0--Parade/x.jpg", np.array([[90, 10, 20, 20], [5, 5, 0, 8], [1, 1, 4, 4],
                                                              [150, 0, 5, 5], [10, 10, 30, 30]]),
                                 np.array([[0, 0, 0, 0, 0, 0], [0] * 6, [0] * 6, [0] * 6, [0, 0, 0, 1, 0, 0]]))
    boxes, verdicts = face_verdicts(annotation, (100, 50), Filters(min_size=5))
    assert verdicts == ["kept", "empty box", "smaller than 5 px", "empty box", "invalid"]
    np.testing.assert_array_equal(boxes[0], [90, 10, 10, 20])  # cut at the right edge


def test_faceless_placeholder_is_no_face():
    annotation = ImageAnnotation("0--Parade/x.jpg", np.zeros((1, 4), np.int64), np.zeros((1, 6), np.int64))
    coco, counts = coco_dataset([annotation], lambda a: (64, 64), Filters())
    assert coco["annotations"] == [] and counts["images without faces"] == 1 and len(coco["images"]) == 1


@pytest.mark.parametrize("rewrite", [False, True])
def test_sample_becomes_rfdetr_dataset_with_face_as_label_zero(sample_dataset, tmp_path, rewrite):
    from rfdetr.datasets.coco import CocoDetection

    dataset = open_dataset(*sample_dataset)
    for _ in range(2 if rewrite else 1):  # a second run replaces links and file in place
        counts = write_split(list(dataset.present), dataset.images_dir, tmp_path, "train", Filters())
    faces = sum(len(a.faces) for a in dataset.present)
    assert counts["kept"] + counts.get("invalid", 0) + counts.get("empty box", 0) == faces
    coco = json.loads((tmp_path / "train" / ANNOTATIONS).read_text())
    assert coco["categories"] == [{"id": 1, "name": "face", "supercategory": "none"}]
    rf = CocoDetection(tmp_path / "train", tmp_path / "train" / ANNOTATIONS, transforms=None, remap_category_ids=True)
    labels = np.concatenate([rf[i][1]["labels"].numpy() for i in range(len(rf))])
    assert len(labels) == counts["kept"] and set(labels.tolist()) == {0}  # the slot the pipeline reads as "face"

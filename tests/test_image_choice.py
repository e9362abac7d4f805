"""Calibration, importance and parity images: spread over WIDER's events by a seed, disjoint when there are enough."""

from __future__ import annotations

import numpy as np
import pytest

from facecompress.compress.builder import load_inputs, split_inputs, spread_over_events
from facecompress.core.errors import InputError
from facecompress.data.dataset import open_dataset
from facecompress.data.wider import ImageAnnotation, read_bbx


@pytest.fixture(scope="module")
def val_annotations(wider_real) -> list[ImageAnnotation]:
    """All 3,226 WIDER val annotations, in the file's (event-by-event) order; no image is decoded."""
    return read_bbx(wider_real / "wider_face_split" / "wider_face_val_bbx_gt.txt")


def names(annotations: list[ImageAnnotation]) -> list[str]:
    return [a.name for a in annotations]


def events(annotations: list[ImageAnnotation]) -> set[str]:
    return {a.event for a in annotations}


def fake(event_sizes: dict[str, int]) -> list[ImageAnnotation]:
    """Annotations without faces, `n` per event, event by event as WIDER lists them."""
    empty = np.zeros((0, 4), np.int64), np.zeros((0, 6), np.int64)
    return [ImageAnnotation(f"{event}/{event}_{i}.jpg", *empty) for event, n in event_sizes.items() for i in range(n)]


def test_real_val_choice_spans_events_and_keeps_parity_apart(val_annotations):
    assert len(val_annotations) == 3226 and len(events(val_annotations[:16])) == 1  # annotation order: one event
    calibrating, checking = split_inputs(val_annotations, 16, 3)
    assert (len(calibrating), len(checking)) == (16, 3)
    assert len(events(calibrating)) >= 8 and len(events(calibrating + checking)) > 1
    assert not set(names(calibrating)) & set(names(checking))


def test_real_val_choice_is_fixed_by_the_seed(val_annotations):
    first = split_inputs(val_annotations, 16, 3, seed=0)
    assert [names(g) for g in split_inputs(val_annotations, 16, 3, seed=0)] == [names(g) for g in first]
    other = split_inputs(val_annotations, 16, 3, seed=1)
    assert names(other[0]) != names(first[0]) and names(other[1]) != names(first[1])


def test_spread_keeps_every_image_once_and_visits_each_event_before_repeating():
    annotations = fake({"a": 5, "b": 1, "c": 2})
    ordered = spread_over_events(annotations, seed=3)
    assert sorted(names(ordered)) == sorted(names(annotations))
    assert events(ordered[:3]) == {"a", "b", "c"} and events(ordered[3:5]) == {"a", "c"}


@pytest.mark.parametrize("count, calibration_size, overlap", [
    (10, 4, 0),  # enough: 4 calibrate, 3 others check parity
    (5, 2, 0),  # fewer than 4 + 3: parity keeps its 3, calibration takes the 2 left
    (3, 3, 3),  # none left: calibration uses all images, parity's included
    (2, 2, 2),
])
def test_small_sets_keep_parity_and_give_calibration_what_is_left(count, calibration_size, overlap):
    annotations = fake({"a": count})
    calibrating, checking = split_inputs(annotations, 4, 3)
    assert len(checking) == min(3, count) and len(calibrating) == calibration_size
    assert len(set(names(calibrating)) & set(names(checking))) == overlap


def test_no_image_is_an_input_error():
    with pytest.raises(InputError, match="no readable image"):
        split_inputs([], 4, 3)


class CountingFamily:
    """A family stub whose preprocessing records which images it was given."""

    def __init__(self):
        self.sizes: list[tuple[int, int]] = []

    def preprocess(self, image) -> np.ndarray:
        self.sizes.append(image.size)
        return np.zeros((1, 3, 4, 4), np.float32)


def test_load_inputs_decodes_only_the_chosen_images(sample_dataset):
    dataset = open_dataset(*sample_dataset)
    family = CountingFamily()
    calibration, parity = load_inputs(dataset, family, 2, 1, seed=5)
    assert len(calibration) == 2 and len(parity) == 1 and len(family.sizes) == 3
    chosen = split_inputs(dataset.present, 2, 1, seed=5)
    assert [[n for n, _, _ in group] for group in (calibration, parity)] == [names(g) for g in chosen]

"""The exact path benchmark.py runs (the project's export, the loop's preprocess, run and decode) must give the
detections rfdetr's own predict gives for the same model, on generated and real images."""

from __future__ import annotations

import numpy as np
import pytest

from facecompress.data.dataset import iter_images, open_dataset
from facecompress.detectors.rfdetr.decoding import decode
from facecompress.detectors.rfdetr.export import export_onnx
from facecompress.detectors.rfdetr.family import RFDETRFamily
from facecompress.detectors.rfdetr.loading import inference_module, load_detector
from facecompress.run.loop import detect, to_submission
from facecompress.run.sessions import OnnxRunner

RESOLUTION = 192  # smallest size that keeps the test quick; predict and ONNX see the same value


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """rfdetr's model object (for predict) and the project's own export of the same weights."""
    model, _, _ = load_detector(resolution=RESOLUTION, seed=0)
    path = tmp_path_factory.mktemp("onnx") / "original.onnx"
    export_onnx(inference_module(model.model.model), RESOLUTION, path)
    return model, OnnxRunner(path, threads=1)


def assert_same_as_predict(model, runner, images) -> None:
    family = RFDETRFamily(RESOLUTION)
    for image in images:
        expected = model.predict(image, threshold=0.0)
        expected = expected[expected.class_id == 0]
        got = detect(runner, family, image, floor=0.0)
        assert len(got) == len(expected) > 0
        np.testing.assert_allclose(got[:, :2] + got[:, 2:4], expected.xyxy[:, 2:], atol=1e-2)  # pixels
        np.testing.assert_allclose(got[:, :2], expected.xyxy[:, :2], atol=1e-2)
        np.testing.assert_allclose(got[:, 4], expected.confidence, atol=1e-5)


def test_benchmark_path_equals_predict_on_sample_images(exported, sample_dataset):
    model, runner = exported
    assert_same_as_predict(model, runner, [image for _, image in iter_images(open_dataset(*sample_dataset, limit=2))])


def test_benchmark_path_equals_predict_on_real_images(exported, wider_real):
    model, runner = exported
    dataset = open_dataset(wider_real / "WIDER_val" / "images", wider_real / "wider_face_split", limit=2)
    assert_same_as_predict(model, runner, [image for _, image in iter_images(dataset)])


def test_decode_by_hand():
    boxes = np.array([[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.4, 0.4], [0.9, 0.9, 0.1, 0.1]], np.float32)
    logits = np.array([[2.0, -5.0], [-5.0, 3.0], [0.0, -5.0]], np.float32)  # query 1 is "no object"
    detections = decode(boxes, logits, (200, 100))
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    np.testing.assert_allclose(detections.confidence, [sigmoid(2), 0.5, sigmoid(-5)], rtol=1e-6)
    # query 1's face slot comes last, its box clipped to the image
    np.testing.assert_allclose(detections.xyxy, [[80, 30, 120, 70], [170, 85, 190, 95], [0, 0, 60, 30]], atol=1e-4)
    assert len(decode(boxes, logits, (200, 100), threshold=0.5)) == 1  # strictly above the threshold
    assert len(decode(boxes, logits, (200, 100), num_select=2)) == 1  # the "no object" pair used a slot


def test_no_detections_and_submission_layout():
    empty = decode(np.zeros((2, 4), np.float32), np.full((2, 2), -20.0, np.float32), (10, 10), threshold=0.5)
    assert len(empty) == 0 and to_submission(empty).shape == (0, 5)
    detections = decode(np.array([[0.5, 0.5, 0.2, 0.4]], np.float32), np.array([[0.0, -9.0]], np.float32), (100, 100))
    np.testing.assert_allclose(to_submission(detections), [[40, 30, 20, 40, 0.5]], atol=1e-4)

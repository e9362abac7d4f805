"""ONNX Runtime inference must give the detections rfdetr's own predict gives for the same model."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from facecompress.dataset import iter_images, open_dataset
from facecompress.runtime import OnnxDetector, decode, to_xywh_score

RESOLUTION = 192  # smallest size that keeps the test quick; predict and ONNX see the same value


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from rfdetr import RFDETRNano

    torch.manual_seed(0)
    model = RFDETRNano(pretrain_weights=None, num_classes=1, resolution=RESOLUTION)
    folder = tmp_path_factory.mktemp("onnx")
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(output_dir=str(folder), opset_version=17)
    return model, next(folder.glob("*.onnx"))


def test_onnx_detections_equal_predict(exported, sample_dataset):
    model, path = exported
    detector = OnnxDetector(path, RESOLUTION, threads=1)
    for _, image in list(iter_images(open_dataset(*sample_dataset, limit=2))):
        expected = model.predict(image, threshold=0.0)
        expected = expected[expected.class_id == 0]
        got = detector.detect(image)
        assert len(got) == len(expected) > 0
        np.testing.assert_allclose(got.xyxy, expected.xyxy, atol=1e-2)  # pixels; float32 op-order noise only
        np.testing.assert_allclose(got.confidence, expected.confidence, atol=1e-5)


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
    assert len(empty) == 0 and to_xywh_score(empty).shape == (0, 5)
    detections = decode(np.array([[0.5, 0.5, 0.2, 0.4]], np.float32), np.array([[0.0, -9.0]], np.float32), (100, 100))
    np.testing.assert_allclose(to_xywh_score(detections), [[40, 30, 20, 40, 0.5]], atol=1e-4)

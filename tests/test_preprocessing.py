"""The cheap preprocessing must give the tensor torchvision gives `predict`, for every image shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as tvf
from PIL import Image

from facecompress.data.dataset import iter_images, open_dataset
from facecompress.data.images import load_rgb
from facecompress.detectors.rfdetr.preprocessing import IMAGENET_MEAN, IMAGENET_STD, bilinear_taps, preprocess


def torchvision_input(image: Image.Image, resolution: int) -> np.ndarray:
    """What rfdetr's predict computes: to_tensor, bilinear resize without antialias, normalize."""
    with torch.no_grad():
        tensor = tvf.resize(tvf.to_tensor(image), [resolution, resolution], antialias=False)
        return tvf.normalize(tensor, IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist()).unsqueeze(0).numpy()


def random_image(height: int, width: int, mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(height * 1000 + width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


@pytest.mark.parametrize("height, width", [(683, 1024), (1388, 1024), (808, 1024), (384, 384), (137, 200), (1, 1),
                                           (5, 3000)])
@pytest.mark.parametrize("resolution", [384, 560])
def test_matches_torchvision_down_and_up(height, width, resolution):
    image = random_image(height, width)
    got = preprocess(image, resolution)
    assert got.shape == (1, 3, resolution, resolution) and got.dtype == np.float32
    np.testing.assert_allclose(got, torchvision_input(image, resolution), rtol=0, atol=2e-6)


def test_matches_torchvision_on_sample_images(sample_dataset):
    for _, image in iter_images(open_dataset(*sample_dataset, limit=3)):
        np.testing.assert_allclose(preprocess(image, 384), torchvision_input(image, 384), rtol=0, atol=2e-6)


def test_matches_torchvision_on_real_wider_images(wider_real):
    for path in sorted(wider_real.glob("WIDER_val/images/*/*.jpg"))[:4]:
        image = load_rgb(path)
        np.testing.assert_allclose(preprocess(image, 384), torchvision_input(image, 384), rtol=0, atol=2e-6)


def test_non_rgb_images_are_converted():
    image = random_image(40, 60, "L")
    np.testing.assert_allclose(preprocess(image, 32), torchvision_input(image.convert("RGB"), 32), atol=2e-6)


def test_taps_follow_half_pixel_centres():
    i0, i1, w0, w1 = bilinear_taps(4, 2)  # output pixel centres fall at source 0.5 and 2.5
    assert i0.tolist() == [0, 2] and i1.tolist() == [1, 3]
    np.testing.assert_allclose([w0, w1], 0.5)
    i0, i1, w0, w1 = bilinear_taps(2, 4)  # upsampling clamps at the borders: the last pixel reads row 1 twice
    assert i0.tolist() == [0, 0, 0, 1] and i1.tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(w1, [0, 0.25, 0.75, 0.25])

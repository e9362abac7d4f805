"""Image decoding and dataset discovery: unusual but valid images convert, broken ones fail in one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from facecompress.data.dataset import iter_images, open_dataset
from facecompress.core.errors import InputError
from facecompress.data.images import load_rgb
from facecompress.data.wider import BBX_FILE


def _save(path, image, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("mode, fmt", [("L", "JPEG"), ("CMYK", "JPEG"), ("RGBA", "PNG"), ("P", "PNG"), ("RGB", "PNG")])
def test_unusual_modes_become_rgb(tmp_path, mode, fmt):
    path = _save(tmp_path / f"x.{fmt.lower()}", Image.new(mode, (40, 30)), format=fmt)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (40, 30)


def test_exif_rotation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = _save(tmp_path / "r.jpg", Image.new("RGB", (40, 30)), format="JPEG", exif=exif)
    assert load_rgb(path).size == (30, 40)


def test_truncated_jpeg_fails_with_path(tmp_path):
    path = _save(tmp_path / "t.jpg", Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)),
                 format="JPEG")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InputError, match="t.jpg: unreadable image"):
        load_rgb(path)


def test_not_an_image_and_missing(tmp_path):
    (tmp_path / "n.jpg").write_text("hello")
    with pytest.raises(InputError, match="n.jpg: unreadable image"):
        load_rgb(tmp_path / "n.jpg")
    with pytest.raises(InputError, match="m.jpg: image not found"):
        load_rgb(tmp_path / "m.jpg")


def test_real_images_partial_dataset(wider_real):
    dataset = open_dataset(wider_real / "WIDER_val" / "images", wider_real / "wider_face_split")
    assert len(dataset.annotations) == 3226 and len(dataset.present) == 19 and not dataset.complete
    assert dataset.describe() == "WIDER FACE val, partial (19 of 3226 images, 470 faces)"
    assert not dataset.generated
    sizes = [image.size for _, image in iter_images(open_dataset(dataset.images_dir, dataset.split_dir, limit=3))]
    assert len(sizes) == 3 and all(w == 1024 for w, _ in sizes)


def test_missing_images_folder(tmp_path, sample_dataset):
    with pytest.raises(InputError, match="images folder not found"):
        open_dataset(tmp_path / "nowhere", sample_dataset[1])


def test_no_listed_image_present(tmp_path, sample_dataset):
    (tmp_path / "images").mkdir()
    with pytest.raises(InputError, match="none of the 8 images listed"):
        open_dataset(tmp_path / "images", sample_dataset[1])


def test_unreadable_image_stops_unless_skipped(tmp_path, sample_dataset):
    images = tmp_path / "images"
    shutil.copytree(sample_dataset[0], images)
    dataset = open_dataset(images, sample_dataset[1])
    broken = dataset.image_path(dataset.present[1])
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(InputError, match=str(broken.name)):
        list(iter_images(dataset))
    kept = [a.name for a, _ in iter_images(dataset, skip_unreadable=True)]
    assert kept == [a.name for a in dataset.present if a != dataset.present[1]]


def test_limit_keeps_annotation_order(sample_dataset):
    full = open_dataset(*sample_dataset)
    assert [a.name for a in open_dataset(*sample_dataset, limit=3).present] == [a.name for a in full.present[:3]]
    assert (sample_dataset[1] / BBX_FILE).is_file() and full.generated

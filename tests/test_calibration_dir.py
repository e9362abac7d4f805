"""--calibration-dir: calibration reads only that folder, and a run without it says calibration overlaps evaluation."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import inference
from facecompress.compress.inputs import from_folder
from facecompress.core.checksums import sha256_file
from facecompress.core.errors import InputError
from facecompress.data.calibration import choose, find_images
from facecompress.data.dataset import open_dataset
from facecompress.detectors.rfdetr.family import RFDETRFamily


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory):
    """A folder of images none of which is an evaluated one: another seed's generated scenes, one event linked in."""
    from facecompress.data.sample import generate

    root = tmp_path_factory.mktemp("other")
    generate(root / "images", root / "split", seed=1, per_event=2)
    folder = root / "calibration"
    folder.mkdir()
    events = sorted(p for p in (root / "images").iterdir() if p.is_dir())
    shutil.copytree(events[0], folder / events[0].name)
    for event in events[1:]:
        os.symlink(event, folder / event.name)  # a linked event folder is searched too
    return folder


def test_find_images_walks_linked_folders_and_refuses_empty_ones(calibration_dir, tmp_path):
    found = find_images(calibration_dir)
    assert len({p.parent for p in found}) > 1 and found == sorted(found)
    assert choose(calibration_dir, 4, seed=0) == choose(calibration_dir, 4, seed=0)
    assert len({p.parent for p in choose(calibration_dir, 4, seed=0)}) == 4  # spread over the event folders
    with pytest.raises(InputError, match="not a folder"):
        find_images(tmp_path / "absent")
    with pytest.raises(InputError, match="no image files"):
        find_images(tmp_path)


def test_an_evaluated_image_in_the_folder_is_named_as_an_overlap(calibration_dir, sample_dataset, tmp_path):
    dataset = open_dataset(*sample_dataset)
    folder = tmp_path / "mixed"
    shutil.copytree(calibration_dir, folder, symlinks=False)
    shutil.copyfile(dataset.image_path(dataset.present[0]), folder / "copied.jpg")
    family = RFDETRFamily(64)
    clean = from_folder(calibration_dir, dataset, family, 2, 2, 1)
    assert clean.record["overlaps_evaluation"] is False and len(clean.record["images"]) == 2  # calibration only
    assert all(len(r["sha256"]) == 64 for r in clean.record["images"])
    mixed = from_folder(folder, dataset, family, 200, 0, 1)
    assert mixed.record["overlaps_evaluation"] is True and mixed.record["overlapping"] == ["copied.jpg"]


def build(images, split, out, *extra: str) -> dict:
    inference.main(["--detector", "rfdetr", "--images", str(images), "--split", str(split), "--out", str(out),
                    "--resolution", "64", "--only", "static_int8", "--calibration-images", "2",
                    "--parity-images", "1", "--limit", "4", *extra])
    return json.loads((out / "manifest.json").read_text())


def test_static_int8_does_not_depend_on_the_evaluated_images(calibration_dir, sample_dataset, tmp_path):
    images, split = sample_dataset
    inverted = tmp_path / "inverted"
    shutil.copytree(images, inverted)
    for path in inverted.rglob("*.jpg"):
        Image.fromarray(255 - np.asarray(Image.open(path).convert("RGB"))).save(path, quality=95)

    def static_file(evaluated, name: str, *extra: str) -> str:
        manifest = build(evaluated, split, tmp_path / name, *extra)
        return sha256_file(tmp_path / name / manifest["variants"]["static_int8"]["file"]), manifest

    folder = ["--calibration-dir", str(calibration_dir)]
    (plain, plain_manifest), (flipped, _) = static_file(images, "a", *folder), static_file(inverted, "b", *folder)
    assert plain == flipped  # other evaluated pixels, the same calibration folder: the same INT8 file
    record = plain_manifest["families"]["rfdetr"]["calibration"]
    assert record["source"] == "folder" and record["overlaps_evaluation"] is False
    (own, own_manifest), (own_flipped, _) = static_file(images, "c"), static_file(inverted, "d")
    assert own != own_flipped  # the fallback calibrates on the evaluated images, and says so
    assert own_manifest["families"]["rfdetr"]["calibration"]["overlaps_evaluation"] is True

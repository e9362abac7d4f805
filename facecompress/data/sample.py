"""Generate the embedded sample: WIDER-format scenes built from face photographs that ship in scikit-image.

The pipeline must run with no internet and no dataset, so `make data` writes a small, deterministic
set of scenes into the dataset folders: LFW face crops and the astronaut's face pasted at scales from
under 10 px to a few hundred onto scikit-image's photographs, with exact boxes, attributes that
describe what was done to each face (blur, darkening, occlusion), a bbx text file and the four
evaluation `.mat` files in the official structure. It is not WIDER FACE, and every report says so.

Usage: python -m facecompress.data.sample [--images DIR] [--split DIR] [--seed N] [--per-event N] [--force]
                                         [--keep-existing]

It never writes into a folder that holds a WIDER file (the bbx text, an evaluation .mat, an image) but
not its marker: it refuses, or with --keep-existing leaves both folders alone and exits 0.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import skimage.data
from PIL import Image, ImageDraw, ImageFilter

from ..core import atomic
from ..data.dataset import DEFAULT_IMAGES, DEFAULT_SPLIT, SAMPLE_MARKER, sample_info
from ..core.errors import InputError, exit_on_input_error
from ..data.wider import (ATTRIBUTES, BBX_FILE, IMAGE_SUFFIXES, MAT_FILE, SETTING_MAT_FILES, SETTINGS, ImageAnnotation,
                          read_bbx)

GENERATOR_VERSION = 1  # bump when the scenes change, so an old sample is not mistaken for the new one
WIDTH = 1024  # every WIDER val image is 1024 px wide
HEIGHTS = (683, 768, 1024, 1365)
ASTRONAUT_FACE = (170, 55, 265, 160)  # left, top, right, bottom of the face in skimage.data.astronaut()
# event name -> range of face heights in pixels and of faces per image; the crowd reaches WIDER-hard sizes
EVENTS = {
    "0--Sample_Portrait": ((80, 320), (1, 3)),
    "1--Sample_Group": ((24, 110), (5, 14)),
    "2--Sample_Crowd": ((6, 40), (25, 60)),
    "3--Sample_Street": ((8, 200), (4, 20)),
}


@dataclass(frozen=True)
class Sources:
    """Face crops, non-face crops and backgrounds, all RGB uint8, loaded once per run."""

    faces: list[np.ndarray]
    distractors: list[np.ndarray]
    backgrounds: list[np.ndarray]


def _rgb(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] or uint8, gray or RGB(A), to RGB uint8."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3]


def load_sources() -> Sources:
    """The pictures scikit-image installs with itself (no download): LFW faces and non-faces, photographs."""
    lfw = skimage.data.lfw_subset()  # 200 crops of 25x25: the first 100 are faces, the rest are not
    left, top, right, bottom = ASTRONAUT_FACE
    faces = [_rgb(f) for f in lfw[:100]] + [skimage.data.astronaut()[top:bottom, left:right]]
    backgrounds = [skimage.data.coffee(), skimage.data.rocket(), skimage.data.hubble_deep_field(),
                   skimage.data.chelsea(), skimage.data.brick(), skimage.data.grass(), skimage.data.gravel()]
    return Sources(faces, [_rgb(f) for f in lfw[100:]], [_rgb(b) for b in backgrounds])


def _tint(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give a gray LFW crop a skin tone so faces are not the only gray things in a colour scene."""
    if not np.all(face[..., 0] == face[..., 1]):
        return face
    tone = rng.uniform([0.75, 0.55, 0.4], [1.0, 0.85, 0.75])
    return (face.astype(np.float32) * tone).clip(0, 255).astype(np.uint8)


def _background(sources: Sources, height: int, rng: np.random.Generator) -> Image.Image:
    """A random crop of a random photograph, stretched to the scene size, with a colour cast."""
    photo = sources.backgrounds[rng.integers(len(sources.backgrounds))]
    h, w = photo.shape[:2]
    ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
    y, x = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
    crop = photo[y:y + ch, x:x + cw].astype(np.float32) * rng.uniform(0.7, 1.15, size=3)
    return Image.fromarray(crop.clip(0, 255).astype(np.uint8)).resize((WIDTH, height), Image.BILINEAR)


def _place(size: tuple[int, int], taken: list[tuple[int, int, int, int]], height: int,
           rng: np.random.Generator) -> tuple[int, int] | None:
    """A top-left corner where a w x h box overlaps no earlier box, or None after 50 tries."""
    w, h = size
    for _ in range(50):
        x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, height - h))
        if all(x + w <= a or a + c <= x or y + h <= b or b + d <= y for a, b, c, d in taken):
            return x, y
    return None


def _degrade(face: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, list[int]]:
    """Blur, darken or occlude a face at random; return it with its WIDER attribute labels."""
    blur = int(rng.choice(3, p=[0.6, 0.25, 0.15]))
    if blur:
        face = face.filter(ImageFilter.GaussianBlur(face.height * (0.03 if blur == 1 else 0.08)))
    illumination = int(rng.random() < 0.15)
    if illumination:
        face = Image.fromarray((np.asarray(face, np.float32) * 0.35).astype(np.uint8))
    occlusion = int(rng.choice(3, p=[0.75, 0.15, 0.10]))
    if occlusion:
        cover = rng.uniform(0.15, 0.35) if occlusion == 1 else rng.uniform(0.45, 0.65)
        face = face.copy()
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        ImageDraw.Draw(face).rectangle([0, int(face.height * (1 - cover)), face.width, face.height], fill=colour)
    invalid = int(face.height < 8)  # WIDER marks faces too small to recognise as invalid
    return face, [blur, 0, illumination, invalid, occlusion, 0]


def _oval_mask(size: tuple[int, int]) -> Image.Image:
    """A feathered ellipse, so a pasted face has no hard square edge for a detector to key on."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse([0, 0, size[0] - 1, size[1] - 1], fill=255)
    return mask.filter(ImageFilter.GaussianBlur(max(size) * 0.04))


def _paste(scene: Image.Image, crop: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Paste a crop resized to the box through an oval mask."""
    x, y, w, h = box
    scene.paste(Image.fromarray(crop).resize((w, h), Image.BILINEAR), (x, y), _oval_mask((w, h)))


def render_scene(event: str, sources: Sources, rng: np.random.Generator, faceless: bool = False
                 ) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """One scene with its (N, 4) x, y, w, h boxes and (N, 6) attributes; faceless scenes get distractors only."""
    (low, high), (fewest, most) = EVENTS[event]
    height = int(rng.choice(HEIGHTS))
    scene = _background(sources, height, rng)
    taken, attributes = [], []
    for _ in range(0 if faceless else int(rng.integers(fewest, most + 1))):
        h = int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))
        w = max(4, int(round(h * rng.uniform(0.75, 0.95))))
        corner = _place((w, h), taken, height, rng)
        if corner is None:
            continue
        face = Image.fromarray(_tint(sources.faces[rng.integers(len(sources.faces))], rng)).resize((w, h))
        face, labels = _degrade(face, rng)
        _paste(scene, np.asarray(face), (*corner, w, h))
        taken.append((*corner, w, h))
        attributes.append(labels)
    for _ in range(int(rng.integers(1, 4))):
        side = int(rng.integers(20, 120))
        corner = _place((side, side), taken, height, rng)
        if corner is not None:
            _paste(scene, sources.distractors[rng.integers(len(sources.distractors))], (*corner, side, side))
    return scene, np.asarray(taken, np.int64).reshape(-1, 4), np.asarray(attributes, np.int64).reshape(-1, 6)


def setting_members(boxes: np.ndarray, attributes: np.ndarray) -> dict[str, np.ndarray]:
    """0-based indices of the faces each setting scores, nested easy within medium within hard.

    WIDER chose its settings by EdgeBox detection rate; the sample approximates that with size,
    blur and occlusion, which is what makes a face hard for a detector too.
    """
    height, blur, invalid, occlusion = boxes[:, 3], attributes[:, 0], attributes[:, 3], attributes[:, 4]
    hard = (invalid == 0) & (height > 0)
    medium = hard & (height >= 16) & (occlusion < 2)
    easy = medium & (height >= 32) & (occlusion == 0) & (blur < 2)
    return {"easy": np.flatnonzero(easy), "medium": np.flatnonzero(medium), "hard": np.flatnonzero(hard)}


def format_bbx(annotations: list[ImageAnnotation]) -> str:
    """The official text layout, trailing space on face rows included."""
    lines = []
    for annotation in annotations:
        lines += [annotation.name, str(len(annotation.boxes))]
        for row in np.concatenate([annotation.boxes, annotation.attributes], axis=1):
            lines.append(" ".join(str(int(v)) for v in row) + " ")
    return "\n".join(lines) + "\n"


def _cell(items: list) -> np.ndarray:
    """A MATLAB cell column, the container every list in the official files uses."""
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def _per_event(annotations: list[ImageAnnotation], value) -> np.ndarray:
    events = list(dict.fromkeys(a.event for a in annotations))
    return _cell([_cell([value(a) for a in annotations if a.event == e]) for e in events])


def _write_mat(path: Path, contents: dict) -> None:
    """Save a MAT 5 file whose 116-byte text header carries no creation time, so reruns give equal bytes."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, contents, do_compression=True)
    header = b"MATLAB 5.0 MAT-file, written by facecompress.sample".ljust(116)
    atomic.write_bytes(path, header + buffer.getvalue()[116:])


def write_mats(annotations: list[ImageAnnotation], split_dir: Path) -> None:
    """The four evaluation files with the official keys, cell nesting and integer types."""
    contents = {
        "event_list": _cell([np.array([e]) for e in dict.fromkeys(a.event for a in annotations)]),
        "file_list": _per_event(annotations, lambda a: np.array([a.stem])),
        "face_bbx_list": _per_event(annotations, lambda a: a.boxes.astype(np.int32)),
    }
    for k, attribute in enumerate(ATTRIBUTES):
        contents[f"{attribute}_label_list"] = _per_event(annotations, lambda a, k=k: a.attributes[:, k:k + 1].astype(np.uint8))
    _write_mat(split_dir / MAT_FILE, contents)
    for setting in SETTINGS:
        def keep(a: ImageAnnotation, setting: str = setting) -> np.ndarray:
            members = setting_members(a.boxes, a.attributes)[setting]
            return (members + 1).reshape(-1, 1).astype(np.uint16) if len(members) else np.zeros((0, 0), np.uint8)
        _write_mat(split_dir / SETTING_MAT_FILES[setting], {**contents, "gt_list": _per_event(annotations, keep)})


def _stem(event: str, index: int) -> str:
    number, name = event.split("--", 1)
    return f"{number}_{name}_sample_{number}_{index}"


def _wider_file(folder: Path) -> Path | None:
    """The first WIDER file in `folder` (an annotation file the generator writes, or an image at any depth), or None.

    Any of them may be a user's real data, so a folder holding one without our marker is never written to.
    """
    if not folder.is_dir():
        return None
    for name in (BBX_FILE, MAT_FILE, *SETTING_MAT_FILES.values()):
        if (folder / name).exists():
            return folder / name
    return next((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES), None)


def foreign_folder(images_dir: Path, split_dir: Path) -> tuple[Path, Path] | None:
    """(folder, WIDER file found) for the first folder holding data that is not a generated sample, or None."""
    for folder in (split_dir, images_dir):
        found = None if sample_info(folder) is not None else _wider_file(folder)
        if found is not None:
            return folder, found
    return None


def remove_sample(images_dir: Path, split_dir: Path) -> None:
    """Delete a generated sample's files and markers (no-op for folders without a marker), before new data goes in."""
    for name in (sample_info(images_dir) or {}).get("images", []):
        (images_dir / name).unlink(missing_ok=True)
    if sample_info(split_dir) is not None:
        for name in (BBX_FILE, MAT_FILE, *SETTING_MAT_FILES.values()):
            (split_dir / name).unlink(missing_ok=True)
    for folder in (images_dir, split_dir):
        (folder / SAMPLE_MARKER).unlink(missing_ok=True)


def _write_marker(folders: tuple[Path, ...], info: dict) -> None:
    for folder in folders:
        atomic.write_text(folder / SAMPLE_MARKER, json.dumps(info, indent=1) + "\n")


def _encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def generate(images_dir: str | os.PathLike = DEFAULT_IMAGES, split_dir: str | os.PathLike = DEFAULT_SPLIT,
             seed: int = 0, per_event: int = 3, force: bool = False) -> list[ImageAnnotation]:
    """Write the sample (or keep the one already there, if made with the same settings) and return its annotations.

    The marker goes down first, marked incomplete, so an interrupted run is recognised as ours and redone.
    """
    images_dir, split_dir = Path(images_dir), Path(split_dir)
    foreign = foreign_folder(images_dir, split_dir)
    if foreign is not None:
        folder, found = foreign
        raise InputError(f"{folder}: holds {found.relative_to(folder)}, a WIDER file that is not a generated sample; "
                         "not overwriting it (point --images/--split elsewhere)")
    settings = {"generator": "facecompress.sample", "version": GENERATOR_VERSION, "seed": seed, "per_event": per_event}
    previous = sample_info(split_dir) or {}
    if not force and previous.get("complete") and {k: previous.get(k) for k in settings} == settings:
        return read_bbx(split_dir / BBX_FILE)
    images_dir.mkdir(parents=True, exist_ok=True)
    split_dir.mkdir(parents=True, exist_ok=True)
    remove_sample(images_dir, split_dir)
    _write_marker((images_dir, split_dir), {**settings, "complete": False})
    sources, annotations = load_sources(), []
    for e, event in enumerate(EVENTS):
        for i in range(per_event):
            faceless = e == len(EVENTS) - 1 and i == per_event - 1  # WIDER val has faceless images too
            scene, boxes, attributes = render_scene(event, sources, np.random.default_rng([seed, e, i]), faceless)
            if faceless:
                boxes, attributes = np.zeros((1, 4), np.int64), np.zeros((1, 6), np.int64)
            annotation = ImageAnnotation(f"{event}/{_stem(event, i)}.jpg", boxes, attributes)
            atomic.write_bytes(images_dir / annotation.name, _encode_jpeg(scene))
            annotations.append(annotation)
    atomic.write_text(split_dir / BBX_FILE, format_bbx(annotations))
    write_mats(annotations, split_dir)
    faces = sum(len(a.faces) for a in annotations)
    _write_marker((images_dir, split_dir), {**settings, "complete": True, "faces": faces,
                                            "images": [a.name for a in annotations],
                                            "note": "generated scenes from scikit-image pictures; not WIDER FACE"})
    return annotations


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="images folder to write (default: %(default)s)")
    parser.add_argument("--split", default=str(DEFAULT_SPLIT), help="annotation folder to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed; same seed, same files (default: %(default)s)")
    parser.add_argument("--per-event", type=int, default=3,
                        help=f"images per event, {len(EVENTS)} events (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="regenerate even if an identical sample is there")
    parser.add_argument("--keep-existing", action="store_true",
                        help="if the folders hold a real dataset, use it and exit 0 instead of failing (make all)")
    return parser.parse_args(argv)


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    foreign = foreign_folder(Path(args.images), Path(args.split))
    if args.keep_existing and foreign is not None:
        folder, found = foreign
        print(f"{folder} holds {found.relative_to(folder)}, a dataset that is not the generated sample: "
              "using it, generating nothing")
        return
    annotations = generate(args.images, args.split, args.seed, args.per_event, args.force)
    faces = sum(len(a.faces) for a in annotations)
    print(f"generated sample (not WIDER FACE): {len(annotations)} images, {faces} faces in {args.images}, "
          f"annotations in {args.split}")


if __name__ == "__main__":
    main()

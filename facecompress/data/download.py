"""Fetch WIDER FACE val (images, bbx annotations, official evaluation files), and train with --train.

Written on the standard library rather than torchvision's WIDERFace helper: that one needs gdown for
Google Drive, cannot resume, and does not fetch the evaluation `.mat` files. Here each archive is
fetched from the first mirror that answers, resumed from its `.part` file with an HTTP Range request,
checked against its published MD5, and only then renamed; extracted files are written atomically and
the key ones checked against known SHA-256 sums.

Usage: python -m facecompress.data.download [--images DIR] [--split DIR] [--archives DIR] [--train [--train-images DIR]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..core import atomic
from ..core.checksums import CHUNK, file_digest
from ..data.dataset import DEFAULT_IMAGES, DEFAULT_SPLIT
from ..core.errors import InputError, exit_on_input_error
from ..data.sample import remove_sample

HF_MIRROR = "https://huggingface.co/datasets/CUHK-CSE/wider_face/resolve/main/data/"
OFFICIAL = "http://shuoyang1213.me/WIDERFACE/support/"


@dataclass(frozen=True)
class Archive:
    """One archive: mirrors tried in order, its MD5 where one is published, and what to unpack where.

    `members` maps a folder inside the archive to "images" or "split" (the destination folder).
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None
    members: dict[str, str]


ARCHIVES = (
    Archive("WIDER_val.zip", (HF_MIRROR + "WIDER_val.zip",),
            "dfa7d7e790efa35df3788964cf0bbaea", {"WIDER_val/images/": "images"}),
    Archive("wider_face_split.zip", (OFFICIAL + "bbx_annotation/wider_face_split.zip", HF_MIRROR + "wider_face_split.zip"),
            "0e3767bcf0e326556d407bf5bff5d27c", {"wider_face_split/": "split"}),
    Archive("eval_tools.zip", (OFFICIAL + "eval_script/eval_tools.zip",), None, {"eval_tools/ground_truth/": "split"}),
)
# The 12,880 training images (1.4 GB), for train.py; their annotations come with wider_face_split.zip.
TRAIN_ARCHIVE = Archive("WIDER_train.zip", (HF_MIRROR + "WIDER_train.zip",), "3fedf70df600953d25982bcd13d91ba2",
                        {"WIDER_train/images/": "images"})
DEFAULT_TRAIN_IMAGES = Path("WIDER_train/images")
# SHA-256 of the official files; eval_tools.zip has no published checksum, so its contents are checked instead.
EXPECTED_SHA256 = {
    "wider_face_val.mat": "1dfe6a9853950f9dde256b5e8bb75d8f272e6bc02a15ae1968f5a9b883f458cb",
    "wider_easy_val.mat": "c2fb672d16f75653eb89fb8bc437a7d060896a71cd7a65c1a5a3e4479024099c",
    "wider_medium_val.mat": "4a031970bc132cef5cfacd05068aabcf4fe15d4a31a1e9f4f00eb134fdf449c1",
    "wider_hard_val.mat": "bb1af19dc5bc4dd9517dd8ae8096326c68175f2c3411763bdd4f23fa98638b78",
    "wider_face_val_bbx_gt.txt": "5ca83488f72758ca4826c35212610a8abf04a7af7b17eb407d6284007baba3b6",
}



def _stream(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part`; start over when the server ignores the Range request."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # nothing left to send: the part file is already whole
            return
        raise
    with response:
        if response.status != 206:
            start = 0
        total = int(response.headers.get("Content-Length", 0)) + start
        with open(part, "ab" if start else "wb") as out, \
                tqdm(total=total or None, initial=start, unit="B", unit_scale=True, desc=part.stem) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))


def fetch(archive: Archive, folder: Path, timeout: float = 60.0) -> Path:
    """Download an archive into `folder` (resuming, verifying); return its path. A verified file is kept."""
    target = folder / archive.filename
    if target.exists() and (archive.md5 is None or file_digest(target, "md5") == archive.md5):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (archive.filename + ".part")
    failures = []
    for url in archive.urls:
        try:
            _stream(url, part, timeout)
        except (urllib.error.URLError, OSError) as err:
            failures.append(f"{url}: {err}")
            continue
        if archive.md5 is not None and file_digest(part, "md5") != archive.md5:
            part.unlink()
            failures.append(f"{url}: MD5 mismatch (corrupt or changed file; removed)")
            continue
        os.replace(part, target)
        return target
    raise InputError(f"{archive.filename}: could not download ({'; '.join(failures)})")


def _member_target(name: str, prefix: str, destination: Path) -> Path | None:
    """Where an archive member lands, or None if it is outside `prefix`, a folder, or unsafe."""
    if not name.startswith(prefix) or name.endswith("/"):
        return None
    relative = PurePosixPath(name[len(prefix):])
    if relative.is_absolute() or ".." in relative.parts:
        raise InputError(f"archive member {name!r} points outside its folder; refusing to extract")
    return destination.joinpath(*relative.parts)


def extract(archive_path: Path, members: dict[str, str], folders: dict[str, Path]) -> list[Path]:
    """Unpack the wanted members atomically; a file already there with the right size is kept (resumable)."""
    written = []
    try:
        with zipfile.ZipFile(archive_path) as archive:
            for info in archive.infolist():
                for prefix, key in members.items():
                    target = _member_target(info.filename, prefix, folders[key])
                    if target is None:
                        continue
                    if not (target.exists() and target.stat().st_size == info.file_size):
                        with archive.open(info) as source, atomic.atomic_path(target) as tmp, open(tmp, "wb") as out:
                            shutil.copyfileobj(source, out, CHUNK)
                    written.append(target)
    except zipfile.BadZipFile as err:
        raise InputError(f"{archive_path}: not a valid zip archive ({err}); delete it and run again") from None
    return written


def verify(folder: Path, expected: dict[str, str]) -> None:
    """Check the extracted key files against their known SHA-256 sums."""
    for name, sha256 in expected.items():
        path = folder / name
        if not path.is_file():
            raise InputError(f"{path}: expected after download but missing")
        if file_digest(path, "sha256") != sha256:
            raise InputError(f"{path}: SHA-256 differs from the official file")


def download_dataset(images_dir: Path, split_dir: Path, archives_dir: Path,
                     archives: tuple[Archive, ...] = ARCHIVES, expected: dict[str, str] = EXPECTED_SHA256) -> int:
    """Fetch, unpack and verify every archive; replace a generated sample; return the number of images."""
    paths = [fetch(archive, archives_dir) for archive in archives]
    remove_sample(images_dir, split_dir)
    folders = {"images": images_dir, "split": split_dir}
    written = [f for archive, path in zip(archives, paths) for f in extract(path, archive.members, folders)]
    verify(split_dir, expected)
    return sum(1 for f in written if f.is_relative_to(images_dir))


def download_train_images(images_dir: Path, archives_dir: Path, archive: Archive = TRAIN_ARCHIVE) -> int:
    """Fetch and unpack the training images; return their number."""
    return len(extract(fetch(archive, archives_dir), archive.members, {"images": images_dir}))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="where the images go (default: %(default)s)")
    parser.add_argument("--split", default=str(DEFAULT_SPLIT),
                        help="where the bbx text and .mat files go (default: %(default)s)")
    parser.add_argument("--archives", default="downloads",
                        help="where archives are kept; partial downloads resume from here (default: %(default)s)")
    parser.add_argument("--train", action="store_true", help="also fetch the training images (1.4 GB) for train.py")
    parser.add_argument("--train-images", default=str(DEFAULT_TRAIN_IMAGES),
                        help="where the training images go (default: %(default)s)")
    return parser.parse_args(argv)


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    count = download_dataset(Path(args.images), Path(args.split), Path(args.archives))
    print(f"WIDER FACE val: {count} images in {args.images}, annotations and evaluation files in {args.split}")
    if args.train:
        count = download_train_images(Path(args.train_images), Path(args.archives))
        print(f"WIDER FACE train: {count} images in {args.train_images}")


if __name__ == "__main__":
    main()

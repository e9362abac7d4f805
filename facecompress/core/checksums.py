"""File digests, read in chunks so that a multi-GB archive or model never sits in memory."""

from __future__ import annotations

import hashlib
import os

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file with any hashlib algorithm (the dataset mirrors publish MD5, we record SHA-256)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file: what the manifest, the checkpoint record and the weight fetcher check."""
    return file_digest(path, "sha256")

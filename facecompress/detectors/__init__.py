"""Detector families by name: each lives in its own module, imported only when a manifest asks for it."""

from __future__ import annotations

import importlib

from ..core.errors import InputError
from .family import Family

FAMILIES = {"rfdetr": "rfdetr.family", "scrfd": "scrfd", "centerface": "centerface"}  # name -> module with from_header


def family_for(header: dict) -> Family:
    """The family a manifest header was made with, configured as it was (a header without one is RF-DETR's)."""
    name = header.get("family", "rfdetr")
    if name not in FAMILIES:
        raise InputError(f"detector family {name!r} is not known (known: {', '.join(FAMILIES)})")
    return importlib.import_module(f"{__name__}.{FAMILIES[name]}").from_header(header)


def methods_of(name: str) -> tuple[str, ...]:
    """The compression methods family `name` supports, read from its module: nothing is configured or loaded."""
    return importlib.import_module(f"{__name__}.{FAMILIES[name]}").METHODS

"""One exception type for bad user input, and the wrapper that turns it into a one-line exit."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class InputError(Exception):
    """Bad input a user can fix (missing dataset, malformed file, wrong checkpoint).

    The message must name the file (and line, for text) so that a one-line report is enough.
    """


def exit_on_input_error(main: F) -> F:
    """Run a script's main so that an InputError prints one line and exits 2, never a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]


def check_known(flag: str, wanted: list[str] | None, known: list[str], where: str) -> None:
    """Refuse names a flag gave that are not in `known`, listing every valid one so one line is enough to fix it."""
    unknown = [name for name in dict.fromkeys(wanted or []) if name not in known]
    if unknown:
        raise InputError(f"{flag} {', '.join(unknown)}: not {where} (known: {', '.join(known)})")

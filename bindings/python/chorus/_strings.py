"""Python strings and paths as C string arguments: what C cannot carry is refused here."""

from __future__ import annotations

import os
from typing import Union

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _text(value, name: str) -> bytes:
    """A str as UTF-8 bytes for a C string argument. A NUL is refused here (C would cut the string
    there); lone surrogates pass through as the invalid UTF-8 they are, for the library to refuse."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{name} contains a NUL character")
    return value.encode("utf-8", "surrogatepass")


def _path(path: PathLike) -> bytes:
    try:
        raw = os.fsencode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be str, bytes or os.PathLike, got {type(path).__name__}") from None
    if b"\0" in raw:  # a C string would end there: another file than the caller named
        raise ValueError("path contains a NUL character")
    return raw

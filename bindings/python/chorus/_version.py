"""The version of chorus.h this binding mirrors, as written in ``chorus/VERSION``.

In the source tree ``chorus/VERSION`` is a link to the top-level ``VERSION`` file, the project's
one version source: pyproject.toml takes the package version from the same file, and
tests/test_version.py fails when chorus.h's macros, this binding or the library differ from it. A
built package carries a copy of the file.
"""

from __future__ import annotations

import os
from typing import Tuple

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")


def read(path: str = PATH) -> Tuple[str, Tuple[int, int, int]]:
    """``("MAJOR.MINOR.PATCH", (major, minor, patch))`` from a VERSION file.

    Raises:
        ImportError: the file is missing or does not hold three dot-separated numbers.
    """
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ImportError(f"chorus: cannot read the binding's version file {path}: {e}") from e
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ImportError(f"chorus: {path} holds {text!r}, not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(p) for p in parts)
    return text, (major, minor, patch)


#: "MAJOR.MINOR.PATCH" and its three numbers.
VERSION, (MAJOR, MINOR, PATCH) = read()

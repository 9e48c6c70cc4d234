"""Layer 1: find and load libchorus.so, and refuse a library of another major version.

Search order (the first that exists wins):

1. ``$CHORUS_LIBRARY`` -- a path to the library; if set, it must exist (no silent fallback).
2. ``chorus/libchorus.so`` -- the copy packaged inside this package by ``pip install``.
3. ``../../.build/release/libchorus.so`` relative to ``bindings/python`` (the directory that
   holds this package), i.e. the library ``make lib`` builds, when the binding is used straight
   from the source tree.

The check mirrors sqlite's header-versus-library check: the binding was written against
``include/chorus.h`` of major version :data:`EXPECTED_MAJOR`; a library whose
``chorus_version_number() // 10000`` differs may have another ABI and is refused with an
:class:`ImportError` rather than risking memory corruption.
"""

from __future__ import annotations

import ctypes
import os
from typing import List, Optional, Tuple

from . import _version

#: The major version of chorus.h this binding mirrors (CHORUS_VERSION_MAJOR; chorus/VERSION).
EXPECTED_MAJOR = _version.MAJOR

#: Name of the environment variable that points at the library to load.
ENV_VAR = "CHORUS_LIBRARY"

_LIB_NAME = "libchorus.so"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def candidate_paths() -> List[Tuple[str, str]]:
    """The places searched for the library, in order, as ``(origin, path)`` pairs."""
    out = []
    env = os.environ.get(ENV_VAR)
    if env:
        out.append((ENV_VAR, env))
    out.append(("package", os.path.join(_PACKAGE_DIR, _LIB_NAME)))
    out.append((
        "source tree",
        os.path.normpath(os.path.join(_PACKAGE_DIR, "..", "..", "..", ".build", "release", _LIB_NAME)),
    ))
    return out


def find_library() -> str:
    """The path of the library that :func:`load_library` would load.

    Raises:
        ImportError: ``$CHORUS_LIBRARY`` names a missing file, or no candidate exists.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        if not os.path.isfile(env):
            raise ImportError(
                f"chorus: ${ENV_VAR} is set to {env!r}, which is not a file; "
                f"point it at libchorus.so (built by `make lib` into .build/release/) or unset it"
            )
        return os.path.abspath(env)
    searched = []
    for _origin, path in candidate_paths():
        searched.append(path)
        if os.path.isfile(path):
            return path
    raise ImportError(
        "chorus: cannot find libchorus.so; looked in: " + ", ".join(searched)
        + f". Build it with `make lib` (in the Chorus source tree), set ${ENV_VAR} to its path, "
        "or install the binding with `pip install ./bindings/python` after building."
    )


def check_version(lib: ctypes.CDLL, expected_major: int = EXPECTED_MAJOR, path: str = "") -> int:
    """Returns the library's version number, or raises ImportError on a major mismatch."""
    try:
        fn = lib.chorus_version_number
    except AttributeError as e:
        raise ImportError(
            f"chorus: {path or 'the library'} does not export chorus_version_number(); "
            "it is not libchorus.so, or is too old"
        ) from e
    fn.argtypes = []
    fn.restype = ctypes.c_uint32
    number = int(fn())
    major = number // 10000
    if major != expected_major:
        version = f"{major}.{number // 100 % 100}.{number % 100}"
        raise ImportError(
            f"chorus: library {path or ''} is version {version} (major {major}), but this Python "
            f"binding was written for major version {expected_major} of chorus.h; install the "
            "binding that matches the library (or rebuild the library from the same source tree)"
        )
    return number


def load_library(path: Optional[str] = None, expected_major: int = EXPECTED_MAJOR) -> ctypes.CDLL:
    """Loads the library (found by :func:`find_library` unless `path` is given) and checks its
    major version.

    Raises:
        ImportError: not found, not loadable, or of another major version.
    """
    if path is None:
        path = find_library()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"chorus: cannot load {path}: {e}") from e
    check_version(lib, expected_major, path)
    return lib


#: The path of the loaded library.
LIBRARY_PATH: str = find_library()
#: The loaded library (declarations are added by chorus._capi).
lib: ctypes.CDLL = load_library(LIBRARY_PATH)

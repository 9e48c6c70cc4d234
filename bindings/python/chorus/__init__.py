"""Chorus: an embeddable recommendation engine (Python binding over libchorus.so).

    import chorus
    with chorus.Engine() as engine:
        engine.add_interactions(users, items, weights)
        engine.fit()
        ids, scores = engine.recommend([1, 2, 3], k=10)

Layers: chorus._lib loads the library, chorus._capi mirrors chorus.h 1:1 in ctypes, and
chorus.engine is the Pythonic layer exported here.
"""

from ._lib import LIBRARY_PATH as _LIBRARY_PATH
from . import _capi, _progress
from ._logging import forward_logs
from .encoder import Encoder
from .engine import Engine, Event, Explanation, PrivacySpent, Recommendations
from .knowledge import KnowledgeGraph
from .errors import (
    BufferTooSmall,
    Cancelled,
    ChorusError,
    ChorusIOError,
    FormatError,
    InternalError,
    InvalidArgument,
    NotFitted,
    NotFound,
    OutOfMemory,
    UnsupportedVersion,
)

#: The empty-slot marker in item id outputs (CHORUS_NO_ITEM).
NO_ITEM = _capi.CHORUS_NO_ITEM


def library_version() -> str:
    """The loaded libchorus.so's version, "MAJOR.MINOR.PATCH"."""
    return _capi.chorus_version().decode("ascii")


def set_progress(enabled: bool) -> None:
    """Turns the automatic progress bars (tqdm, in a terminal or notebook) on or off for every
    call that is not given ``progress=`` explicitly."""
    _progress.ENABLED = bool(enabled)


def library_path() -> str:
    """The path of the loaded libchorus.so."""
    return _LIBRARY_PATH


__version__ = library_version()

__all__ = [
    "Encoder",
    "Engine",
    "Event",
    "Recommendations",
    "PrivacySpent",
    "Explanation",
    "KnowledgeGraph",
    "ChorusError",
    "InvalidArgument",
    "NotFound",
    "BufferTooSmall",
    "NotFitted",
    "ChorusIOError",
    "FormatError",
    "UnsupportedVersion",
    "Cancelled",
    "OutOfMemory",
    "InternalError",
    "NO_ITEM",
    "library_version",
    "library_path",
    "set_progress",
    "forward_logs",
    "__version__",
]

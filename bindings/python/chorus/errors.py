"""Chorus statuses as exceptions.

Each class also subclasses the builtin a Python caller would expect, so ``except ValueError``
catches a bad argument and ``except OSError`` a refused file, whether or not the caller knows
Chorus' own classes.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

from . import _capi


class ChorusError(Exception):
    """A failed Chorus call. ``status`` is the C status (a negative int), ``status_name`` its
    stable name (``"CHORUS_ERR_NOT_FOUND"``)."""

    status: int = _capi.CHORUS_ERR_INTERNAL
    status_name: str = "CHORUS_UNKNOWN_STATUS"

    def __init__(self, message: str = "", status: Optional[int] = None,
                 status_name: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = int(status)
        if status_name is None:
            status_name = _status_name(self.status)
        self.status_name = status_name

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.message, self.status, self.status_name))


class InvalidArgument(ChorusError, ValueError):
    """CHORUS_ERR_INVALID_ARGUMENT: a bad count, id, weight, parameter..."""

    status = _capi.CHORUS_ERR_INVALID_ARGUMENT


class NotFound(ChorusError, LookupError):
    """CHORUS_ERR_NOT_FOUND: an unknown id, agent name or file."""

    status = _capi.CHORUS_ERR_NOT_FOUND


class BufferTooSmall(ChorusError, ValueError):
    """CHORUS_ERR_BUFFER_TOO_SMALL: an output capacity below what the call needs."""

    status = _capi.CHORUS_ERR_BUFFER_TOO_SMALL


class NotFitted(ChorusError, RuntimeError):
    """CHORUS_ERR_NOT_FITTED: the engine has no trained model yet."""

    status = _capi.CHORUS_ERR_NOT_FITTED


class ChorusIOError(ChorusError, OSError):
    """CHORUS_ERR_IO: the file system refused (permissions, a directory, a full disk)."""

    status = _capi.CHORUS_ERR_IO


class FormatError(ChorusError, ValueError):
    """CHORUS_ERR_FORMAT: not a snapshot, truncated, or corrupted."""

    status = _capi.CHORUS_ERR_FORMAT


class UnsupportedVersion(FormatError):
    """CHORUS_ERR_UNSUPPORTED_VERSION: a snapshot written by a newer format version."""

    status = _capi.CHORUS_ERR_UNSUPPORTED_VERSION


class Cancelled(ChorusError, RuntimeError):
    """CHORUS_ERR_CANCELLED: a progress callback asked to stop."""

    status = _capi.CHORUS_ERR_CANCELLED


class OutOfMemory(ChorusError, MemoryError):
    """CHORUS_ERR_OUT_OF_MEMORY."""

    status = _capi.CHORUS_ERR_OUT_OF_MEMORY


class InternalError(ChorusError, RuntimeError):
    """CHORUS_ERR_INTERNAL: a bug in Chorus; please report it."""

    status = _capi.CHORUS_ERR_INTERNAL


#: The exception class of each status.
STATUS_CLASSES: Dict[int, Type[ChorusError]] = {
    cls.status: cls
    for cls in (InvalidArgument, NotFound, BufferTooSmall, NotFitted, ChorusIOError, FormatError,
                UnsupportedVersion, Cancelled, OutOfMemory, InternalError)
}


def _status_name(status: int) -> str:
    name = _capi.chorus_status_name(int(status))
    return name.decode("utf-8", "replace") if name else "CHORUS_UNKNOWN_STATUS"


def error_for(status: int, message: Optional[str] = None) -> ChorusError:
    """The exception for a failed `status`; `message` defaults to chorus_last_error()."""
    if message is None:
        raw = _capi.chorus_last_error()
        message = raw.decode("utf-8", "replace") if raw else ""
    cls = STATUS_CLASSES.get(int(status), ChorusError)
    name = _status_name(status)
    if not message:
        message = name
    return cls(message, status=int(status), status_name=name)


def check(status: int) -> None:
    """Returns if `status` is CHORUS_OK, else raises the matching ChorusError subclass with the
    text of chorus_last_error(). Call it right after the C call, on the same thread."""
    if status != _capi.CHORUS_OK:
        raise error_for(status)

"""Statuses map to exception classes that also subclass the matching builtin."""

import pickle

import pytest

import chorus
from chorus import _capi
from chorus.errors import STATUS_CLASSES, ChorusError, check, error_for

EXPECTED = [
    (_capi.CHORUS_ERR_INVALID_ARGUMENT, chorus.InvalidArgument, ValueError, "CHORUS_ERR_INVALID_ARGUMENT"),
    (_capi.CHORUS_ERR_NOT_FOUND, chorus.NotFound, LookupError, "CHORUS_ERR_NOT_FOUND"),
    (_capi.CHORUS_ERR_BUFFER_TOO_SMALL, chorus.BufferTooSmall, ValueError, "CHORUS_ERR_BUFFER_TOO_SMALL"),
    (_capi.CHORUS_ERR_NOT_FITTED, chorus.NotFitted, RuntimeError, "CHORUS_ERR_NOT_FITTED"),
    (_capi.CHORUS_ERR_IO, chorus.ChorusIOError, OSError, "CHORUS_ERR_IO"),
    (_capi.CHORUS_ERR_FORMAT, chorus.FormatError, ValueError, "CHORUS_ERR_FORMAT"),
    (_capi.CHORUS_ERR_UNSUPPORTED_VERSION, chorus.UnsupportedVersion, ValueError, "CHORUS_ERR_UNSUPPORTED_VERSION"),
    (_capi.CHORUS_ERR_CANCELLED, chorus.Cancelled, RuntimeError, "CHORUS_ERR_CANCELLED"),
    (_capi.CHORUS_ERR_OUT_OF_MEMORY, chorus.OutOfMemory, MemoryError, "CHORUS_ERR_OUT_OF_MEMORY"),
    (_capi.CHORUS_ERR_INTERNAL, chorus.InternalError, RuntimeError, "CHORUS_ERR_INTERNAL"),
]


def test_check_ok_returns_none():
    assert check(_capi.CHORUS_OK) is None


@pytest.mark.parametrize("status, cls, builtin, name", EXPECTED)
def test_check_raises_the_matching_class(status, cls, builtin, name):
    with pytest.raises(cls) as info:
        check(status)
    e = info.value
    assert isinstance(e, ChorusError) and isinstance(e, builtin) and isinstance(e, Exception)
    assert e.status == status
    assert e.status_name == name
    assert STATUS_CLASSES[status] is cls
    assert type(pickle.loads(pickle.dumps(e))) is cls


def test_unsupported_version_is_a_format_error():
    assert issubclass(chorus.UnsupportedVersion, chorus.FormatError)


def test_unknown_status_is_a_plain_chorus_error():
    e = error_for(-99, "boom")
    assert type(e) is ChorusError
    assert e.status == -99
    assert e.status_name == "CHORUS_UNKNOWN_STATUS"
    assert str(e) == "boom"


def test_message_is_chorus_last_error():
    with pytest.raises(chorus.NotFound) as info:
        chorus.Engine.load("/definitely/not/here.chorus")
    assert str(info.value) not in ("", "CHORUS_ERR_NOT_FOUND")  # the library's own words


def test_io_error_is_catchable_as_oserror(tmp_path):
    with chorus.Engine() as engine:
        with pytest.raises(OSError):
            engine.save(tmp_path)  # a directory

"""The caller's own ids (integers or strings) and the int64 ids the library takes.

Each id space of an engine (users, items) is an :class:`IdMap` that settles on one kind the first
time ids come in: integers pass through unchanged; strings are given int64 codes 0, 1, 2... in the
order they are first added, and every result is mapped back to them. The maps travel in the engine
snapshot as host metadata (``chorus_engine_set_metadata``), in the compact versioned encoding of
:func:`IdMap.to_bytes` (never pickle: a snapshot must not run code when loaded).
"""

from __future__ import annotations

import ctypes
import struct
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import _capi
from ._strings import _text
from .errors import FormatError, InvalidArgument, NotFound, check

_INT64_MAX = int(np.iinfo(np.int64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)

#: The metadata keys of the two maps in an engine snapshot.
METADATA_KEYS = {"user": "chorus-python/user-ids", "item": "chorus-python/item-ids"}

# Encoding: magic, version, kind, reserved, count; then (strings only) count u32 UTF-8 lengths and
# the strings' bytes one after another.
_MAGIC = b"CHID"
_VERSION = 1
_HEADER = struct.Struct("<4sBBHQ")
_KINDS = {None: 0, "int": 1, "str": 2}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}

#: What a classified batch of ids is: ("int", int64 array) or ("str", object array of str).
Classified = Tuple[str, np.ndarray]


def _factorize(arr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(distinct strings, index of each element's string among them): pandas' hash-based
    factorize when pandas is there (20-50x faster than sorting strings), else numpy's unique."""
    try:
        import pandas as pd
    except ImportError:
        uniq, inverse = np.unique(arr, return_inverse=True)
        return uniq, inverse.reshape(-1)
    codes, uniq = pd.factorize(arr)
    return np.asarray(uniq, dtype=object), np.asarray(codes)


def _position(values: Any, i: int) -> str:
    """Where element i is, in the caller's terms: a pandas row label, else the position."""
    index = getattr(values, "index", None)
    if index is not None and not isinstance(values, np.ndarray):
        try:
            return f"row {index[i]!r}"
        except Exception:  # noqa: BLE001 -- an exotic index: fall back to the position
            pass
    return f"position {i}"


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and v != v:
        return True
    return type(v).__name__ in ("NAType", "NaTType")


def classify(values: Any, name: str) -> Classified:
    """The ids of a batch as ("int", int64 array) or ("str", object array of str).

    Raises:
        InvalidArgument: a missing id (NaN, None, pandas NA), a value beyond int64, more than one
            dimension.
        TypeError: ids that are neither integers nor strings (floats, bytes, bools), or integers
            and strings mixed in one batch.
    """
    if np.ndim(values) == 0 and not isinstance(values, np.ndarray):
        values = [values]
    raw = values
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim > 1:
        raise InvalidArgument(f"{name} must be one-dimensional, got shape {arr.shape}")
    arr = arr.reshape(-1)
    kind = arr.dtype.kind
    if kind in "iu" and isinstance(values, (list, tuple)) and any(issubclass(t, (bool, np.bool_)) for t in set(map(type, values))):
        kind = "O"  # np.asarray([1, True]) is [1, 1]: a bool is no id, name it below
    if kind in "iu":
        if kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
            raise InvalidArgument(f"{name} holds a value above the int64 range")
        return "int", np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size == 0:
        return "int", np.zeros(0, dtype=np.int64)
    if kind == "f":
        nan = np.flatnonzero(np.isnan(arr))
        if nan.size:
            raise InvalidArgument(f"{name} has a missing id (NaN) at {_position(raw, int(nan[0]))}; "
                                  "drop or fill those rows first")
        raise TypeError(f"{name} must be integers or strings, got dtype {arr.dtype}; "
                        "convert integral floats with .astype('int64')")
    if kind == "U" and not isinstance(values, (list, tuple)):
        return "str", arr.astype(object)
    if kind == "O" or isinstance(values, (list, tuple)):
        # A list mixing ints and strs becomes a str array in np.asarray: look at the elements.
        obj = np.empty(len(arr), dtype=object)
        obj[:] = list(values) if isinstance(values, (list, tuple)) else arr
        types = set(map(type, obj))
        if types <= {str}:
            return "str", obj
        if all(issubclass(t, str) for t in types):  # numpy's str_ and other str subclasses: as str
            return "str", np.array([str(v) for v in obj], dtype=object)
        ints = {t for t in types if issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_))}
        if types == ints:
            try:
                return "int", np.array([int(v) for v in obj], dtype=np.int64)
            except OverflowError:
                raise InvalidArgument(f"{name} holds a value outside the int64 range") from None
        for i, v in enumerate(obj):
            if _is_missing(v):
                shown = "NaN" if isinstance(v, float) else repr(v)
                raise InvalidArgument(f"{name} has a missing id ({shown}) at {_position(raw, i)}; "
                                      "drop or fill those rows first")
        first_str = next((i for i, v in enumerate(obj) if isinstance(v, str)), None)
        first_int = next((i for i, v in enumerate(obj) if type(v) in ints), None)
        if first_str is not None and first_int is not None:
            raise TypeError(f"{name} mixes id types: a str at {_position(raw, first_str)} and an int at "
                            f"{_position(raw, first_int)}; use one type for all ids")
        bad = next(i for i, v in enumerate(obj) if not isinstance(v, str) and type(v) not in ints)
        raise TypeError(f"{name} must be integers or strings, got {type(obj[bad]).__name__} at {_position(raw, bad)}")
    raise TypeError(f"{name} must be integers or strings, got dtype {arr.dtype}")


class IdMap:
    """One id space (``what`` = "user" or "item") of an engine. Thread-safe: additions are
    serialised by a lock and published whole by the commit function :meth:`encode_new` returns."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.kind: Optional[str] = None
        self._codes: Dict[str, int] = {}
        self._names: List[str] = []
        # The names as an object array for vectorised decoding, with room to grow (doubling, so
        # many small batches cost amortised O(1) per new name), and how many of its slots are
        # names: replaced together, as one tuple, so a reader never sees one without the other.
        self._decoder: Tuple[np.ndarray, int] = (np.empty(0, dtype=object), 0)
        self.lock = threading.Lock()
        #: Bumped by every change, so a save writes the map only when it changed.
        self.version = 0
        #: The version last written to the engine's metadata (-1: never).
        self.stored_version = -1

    def __len__(self) -> int:
        return len(self._names)

    def _check_kind(self, kind: str, name: str, space_in_use: Callable[[], bool]) -> None:
        if self.kind is None:
            if kind == "str" and space_in_use():
                raise TypeError(f"{name} are strings, but this engine already holds integer {self.what} ids "
                                "(added before any string id, or loaded from a snapshot without an id map); "
                                f"use integer {self.what} ids with it")
            return
        if kind != self.kind:
            theirs = "strings" if self.kind == "str" else "integers"
            ours = "strings" if kind == "str" else "integers"
            raise TypeError(f"{name} are {ours}, but this engine's {self.what} ids are {theirs}")

    def encode_new(self, values: Any, name: str,
                   space_in_use: Callable[[], bool] = lambda: False) -> Tuple[np.ndarray, Callable[[], None]]:
        """int64 ids for a batch being added, and the function that records the new strings once
        the library has accepted the batch (nothing is recorded if the call fails).

        Call it, and the commit, with :attr:`lock` held."""
        kind, arr = classify(values, name)
        self._check_kind(kind, name, space_in_use)
        if kind == "int":
            def commit_int() -> None:
                if self.kind is None and arr.size:
                    self.kind = "int"
                    self.version += 1
            return arr, commit_int
        uniq, inverse = _factorize(arr)
        codes = np.empty(len(uniq), dtype=np.int64)
        new: List[str] = []
        base = len(self._names)
        for j, s in enumerate(uniq):
            code = self._codes.get(s)
            if code is None:
                code = base + len(new)
                new.append(s)
            codes[j] = code

        def commit_str() -> None:
            self.kind = "str"
            for s in new:
                self._codes[s] = len(self._names)
                self._names.append(s)
            if new:
                array, count = self._decoder
                total = count + len(new)
                if total > array.size:
                    grown = np.empty(max(total, 2 * array.size, 64), dtype=object)
                    grown[:count] = array[:count]
                    array = grown
                array[count:total] = new
                self._decoder = (array, total)
            self.version += 1
        return codes[inverse], commit_str

    def encode_known(self, values: Any, name: str, *, skip_unknown: bool = False) -> np.ndarray:
        """int64 ids of ids that must have been added before (recommend, similar items, filters).

        Raises:
            NotFound: a string id never added (unless `skip_unknown`: then it is left out).
            TypeError: strings given to an engine of integer ids, or the other way round.
        """
        kind, arr = classify(values, name)
        if kind == "int":
            if self.kind == "str" and arr.size:
                raise TypeError(f"{name} are integers, but this engine's {self.what} ids are strings")
            return arr
        if self.kind == "int":
            raise TypeError(f"{name} are strings, but this engine's {self.what} ids are integers")
        codes = self._codes
        out = np.empty(arr.size, dtype=np.int64)
        keep = np.ones(arr.size, dtype=bool)
        for i, s in enumerate(arr):
            code = codes.get(s)
            if code is None:
                if not skip_unknown:
                    raise NotFound(f"{name}: {self.what} id {s!r} was never added to this engine")
                keep[i] = False
                code = -1
            out[i] = code
        return out if not skip_unknown else out[keep]

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """The caller's ids for library ids: unchanged for integers; for strings an object array,
        None where the library wrote CHORUS_NO_ITEM (-1, an empty slot)."""
        if self.kind != "str":
            return ids
        names, count = self._decoder
        flat = ids.reshape(-1)
        out = np.full(flat.size, None, dtype=object)
        valid = (flat >= 0) & (flat < count)
        out[valid] = names[flat[valid]]
        return out.reshape(ids.shape)

    def decode_one(self, value: int) -> Any:
        if self.kind != "str":
            return value
        return self._names[value] if 0 <= value < len(self._names) else None

    # -- snapshot encoding -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Magic "CHID", version 1, the kind (0 undecided, 1 int, 2 str), a count; for strings the
        count u32 UTF-8 lengths, then the strings in code order."""
        header = _HEADER.pack(_MAGIC, _VERSION, _KINDS[self.kind], 0, len(self._names))
        if self.kind != "str":
            return header
        encoded = [s.encode("utf-8", "surrogatepass") for s in self._names]
        lengths = np.fromiter((len(b) for b in encoded), dtype="<u4", count=len(encoded))
        return header + lengths.tobytes() + b"".join(encoded)

    @classmethod
    def from_bytes(cls, what: str, data: bytes, key: str) -> "IdMap":
        """Reads :meth:`to_bytes`, checking every count against the bytes left.

        Raises:
            FormatError: not such a map, truncated, trailing bytes, a repeated or invalid string.
        """
        def bad(why: str) -> FormatError:
            return FormatError(f"the snapshot's id map '{key}' is malformed: {why}")
        if len(data) < _HEADER.size:
            raise bad(f"{len(data)} bytes, shorter than its header")
        magic, version, kind_code, _reserved, count = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise bad("bad magic")
        if version != _VERSION:
            raise bad(f"version {version}; this binding reads version {_VERSION}")
        if kind_code not in _KIND_NAMES:
            raise bad(f"unknown kind {kind_code}")
        m = cls(what)
        m.kind = _KIND_NAMES[kind_code]
        rest = len(data) - _HEADER.size
        if m.kind != "str":
            if count or rest:
                raise bad("an integer map holds entries")
            return m
        if count > rest // 4:
            raise bad(f"{count} strings claimed in {rest} bytes")
        lengths = np.frombuffer(data, dtype="<u4", count=count, offset=_HEADER.size).astype(np.int64)
        start = _HEADER.size + 4 * count
        if int(lengths.sum()) != len(data) - start:
            raise bad(f"string lengths add up to {int(lengths.sum())} bytes, {len(data) - start} are left")
        ends = start + np.cumsum(lengths)
        names: List[str] = []
        offset = start
        try:
            for end in ends.tolist():
                names.append(data[offset:end].decode("utf-8", "surrogatepass"))
                offset = end
        except UnicodeDecodeError as e:
            raise bad(f"a string is not UTF-8 ({e.reason})") from None
        m._names = names
        m._codes = {s: i for i, s in enumerate(names)}
        if len(m._codes) != len(names):
            raise bad("a string appears twice")
        m._decoder = (np.array(names, dtype=object), len(names))
        return m


class HostIds:
    """Mixin of :class:`chorus.Engine`: its two id maps, the host metadata API, and the maps'
    trip through snapshots (written by ``save``, read by ``load``)."""

    def _ids(self, what: str) -> IdMap:
        maps = self.__dict__.get("_id_maps")
        if maps is None:
            maps = self.__dict__.setdefault("_id_maps", {"user": IdMap("user"), "item": IdMap("item")})
        return maps[what]

    def _space_in_use(self, what: str) -> Callable[[], bool]:
        """Whether the engine already holds ids of this space (asked before strings are first used)."""
        def in_use() -> bool:
            stats = self.stats()
            return bool(stats["n_users" if what == "user" else "n_items"])
        return in_use

    def set_metadata(self, key: str, value: bytes) -> None:
        """Stores `value` under `key` in the engine and its snapshots (``b""`` removes it); the
        engine never interprets it. Keys ``chorus-python/...`` are the binding's own.

        Raises:
            InvalidArgument: an empty key, a key over CHORUS_MAX_NAME_BYTES, too many keys
                (CHORUS_MAX_METADATA_KEYS) or bytes (CHORUS_MAX_METADATA_BYTES).
        """
        handle = self._live()
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"value must be bytes, got {type(value).__name__}")
        data = bytes(value)
        check(_capi.chorus_engine_set_metadata(handle, _text(key, "key"), data, len(data)))

    def metadata(self, key: str) -> Optional[bytes]:
        """The bytes stored under `key` by :meth:`set_metadata`, or None."""
        capi = _capi
        handle = self._live()
        raw = _text(key, "key")
        length = ctypes.c_size_t()
        for _attempt in range(4):  # a concurrent set may grow the value between the two calls
            status = capi.chorus_engine_metadata(handle, raw, None, 0, ctypes.byref(length))
            if status == capi.CHORUS_ERR_NOT_FOUND:
                return None
            if status != capi.CHORUS_ERR_BUFFER_TOO_SMALL:
                check(status)
                return b""
            buffer = ctypes.create_string_buffer(length.value)
            status = capi.chorus_engine_metadata(handle, raw, buffer, len(buffer), ctypes.byref(length))
            if status == capi.CHORUS_ERR_NOT_FOUND:
                return None
            if status == capi.CHORUS_OK:
                return buffer.raw[: length.value]
            if status != capi.CHORUS_ERR_BUFFER_TOO_SMALL:
                check(status)
        check(status)
        return None

    def _store_id_maps(self) -> None:
        """Writes the maps that changed since they were last stored (before a save)."""
        for what in ("user", "item"):
            m = self._ids(what)
            with m.lock:
                if m.kind is None or getattr(m, "stored_version", -1) == m.version:
                    continue
                self.set_metadata(METADATA_KEYS[what], m.to_bytes())
                m.stored_version = m.version

    def _restore_id_maps(self) -> None:
        """Reads the maps of a loaded snapshot (none: the engine's ids are whatever was added)."""
        maps = {}
        for what in ("user", "item"):
            data = self.metadata(METADATA_KEYS[what])
            m = IdMap(what) if data is None else IdMap.from_bytes(what, data, METADATA_KEYS[what])
            m.stored_version = m.version
            maps[what] = m
        self.__dict__["_id_maps"] = maps

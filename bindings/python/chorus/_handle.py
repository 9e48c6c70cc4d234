"""The lifetime every libchorus object shares in Python: one handle, freed once."""

from __future__ import annotations

from typing import Any, Callable, Optional, Type, TypeVar

T = TypeVar("T", bound="NativeObject")


class NativeObject:
    """Owns one handle from libchorus. :meth:`close` frees it (idempotent); a with-block closes it;
    ``__del__`` frees it only as a fallback. Methods reach the handle through :meth:`_live`, which
    raises ValueError once the object is closed. Handles cannot be pickled: a subclass that can be
    saved says how in ``_pickle_hint``.

    A subclass sets ``_free`` (its ``chorus_*_free``, kept on the class so that ``__del__`` still
    finds it while the interpreter shuts down) and creates its handle before storing it in
    ``self._handle``, so that a failed create leaves nothing to free.
    """

    _handle: Any = None
    _free: Optional[Callable[[Any], None]] = None
    _pickle_hint = ""

    @classmethod
    def _adopt(cls: Type[T], handle: Any) -> T:
        """Wraps a handle the library gave out; it is freed when the new object closes."""
        self = cls.__new__(cls)
        self._handle = handle
        return self

    def _live(self) -> Any:
        handle = self._handle
        if not handle:
            raise ValueError(f"operation on a closed chorus.{type(self).__name__}")
        return handle

    def close(self) -> None:
        """Releases the object. Idempotent; every other method raises ValueError afterwards."""
        handle, self._handle = self._handle, None
        if handle:
            free = type(self)._free
            if free is not None:
                free(handle)

    @property
    def closed(self) -> bool:
        return not self._handle

    def __enter__(self: T) -> T:
        self._live()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self) -> Any:
        raise TypeError(f"a chorus.{type(self).__name__} cannot be pickled{self._pickle_hint}")

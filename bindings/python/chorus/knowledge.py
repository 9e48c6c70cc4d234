"""The Pythonic knowledge graph over chorus_kg_*: triples by name, embeddings trained by libchorus."""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_char_p, c_float, c_size_t
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np

from . import _capi, _progress
from ._strings import PathLike, _path, _text
from ._handle import NativeObject
from .errors import InvalidArgument, check


class KnowledgeGraph(NativeObject):
    """``kg = chorus.KnowledgeGraph()``; ``kg.add_triples(heads, relations, tails)`` or
    ``kg.load_tsv(path)``; ``kg.train(model="rotate", dim=100, epochs=10)``;
    ``kg.evaluate(test_path)``; ``kg.entity_vector(name)``; ``kg.save(path)`` /
    ``KnowledgeGraph.load(path)``. Use it as a context manager or call :meth:`close`.
    """

    _free = staticmethod(_capi.chorus_kg_free)
    _pickle_hint = "; use kg.save(path) and KnowledgeGraph.load(path)"

    def __init__(self) -> None:
        handle = _capi.chorus_kg_p()
        check(_capi.chorus_kg_create(byref(handle)))
        self._handle = handle

    @classmethod
    def load(cls, path: PathLike) -> "KnowledgeGraph":
        handle = _capi.chorus_kg_p()
        check(_capi.chorus_kg_load(_path(path), byref(handle)))
        return cls._adopt(handle)

    def add_triples(self, heads: Sequence[str], relations: Sequence[str], tails: Sequence[str]) -> int:
        """Adds (head, relation, tail) triples by name; returns how many were new."""
        handle = self._live()
        cols = [[_text(x, name) for x in seq] for seq, name in ((heads, "heads"), (relations, "relations"), (tails, "tails"))]
        n = len(cols[0])
        if not (n == len(cols[1]) == len(cols[2])):
            raise InvalidArgument(f"{len(cols[0])} heads, {len(cols[1])} relations and {len(cols[2])} tails differ in length")
        if n == 0:
            return 0
        added = c_size_t()
        arrays = [(c_char_p * n)(*c) for c in cols]
        check(_capi.chorus_kg_add_triples(handle, arrays[0], arrays[1], arrays[2], n, byref(added)))
        return int(added.value)

    def load_tsv(self, path: PathLike) -> int:
        """Adds the triples of a head<TAB>relation<TAB>tail file; returns how many were new."""
        added = c_size_t()
        check(_capi.chorus_kg_load_tsv(self._live(), _path(path), byref(added)))
        return int(added.value)

    @property
    def counts(self) -> Dict[str, int]:
        e, r, t = c_size_t(), c_size_t(), c_size_t()
        check(_capi.chorus_kg_counts(self._live(), byref(e), byref(r), byref(t)))
        return {"entities": int(e.value), "relations": int(r.value), "triples": int(t.value)}

    def train(self, model: str = "rotate", dim: int = 100, epochs: int = 10, batch_size: int = 512,
              negatives: int = 64, threads: int = 0, learning_rate: float = 0.0, gamma: float = 0.0,
              seed: int = 42, progress: Union[None, bool, Callable[[str, float], Optional[bool]]] = None,
              share_negatives: int = 1, lr_decay_epoch: int = 0, lr_decay_factor: float = 0.1,
              filter_negatives: bool = False) -> None:
        """Trains embeddings (TransE, DistMult, ComplEx or RotatE). 0 means the model's default for
        learning_rate and gamma. A progress callback returning True cancels (chorus.Cancelled).
        ``share_negatives=n``: runs of n positives share one draw of negatives (faster; 1 = each
        its own). ``lr_decay_epoch=e``: after e epochs the learning rate is multiplied by
        ``lr_decay_factor`` (0 = no decay). ``filter_negatives=True`` leaves out drawn negatives
        that are training triples (known facts), as the RotatE code's sampler. `progress`: None
        shows a tqdm bar in a terminal or notebook (when tqdm is installed), False never, True
        always, or a callable ``progress(stage, fraction)``."""
        params = _capi.chorus_kg_train_params()
        check(_capi.chorus_kg_train_params_init(byref(params)))
        name = _text(model, "model")
        params.model = name
        for field, value in (("dim", dim), ("epochs", epochs), ("batch_size", batch_size),
                             ("negatives", negatives), ("threads", threads), ("share_negatives", share_negatives),
                             ("lr_decay_epoch", lr_decay_epoch)):
            if not isinstance(value, int) or value < 0 or value > 2**31:
                raise InvalidArgument(f"{field} must be a non-negative int, got {value!r}")
            setattr(params, field, value)
        params.learning_rate = float(learning_rate)
        params.gamma = float(gamma)
        if not 0 < float(lr_decay_factor) <= 1:
            raise InvalidArgument(f"lr_decay_factor must be in (0, 1], got {lr_decay_factor!r}")
        params.lr_decay_factor = float(lr_decay_factor)
        params.seed = int(seed)
        if not isinstance(filter_negatives, bool):
            raise InvalidArgument(f"filter_negatives must be a bool, got {filter_negatives!r}")
        params.filter_negatives = int(filter_negatives)
        raised = []
        progress, bar = _progress.callback(progress, "chorus knowledge graph")
        if progress is not None:
            def trampoline(stage, fraction, _user):
                try:
                    return 1 if progress(stage.decode("utf-8", "replace"), fraction) else 0
                except BaseException as exc:  # cancel, re-raise below
                    raised.append(exc)
                    return 1
            params.progress = _capi.chorus_progress_fn(trampoline)
        try:
            status = _capi.chorus_kg_train(self._live(), byref(params))
        finally:
            if bar is not None:
                bar.__exit__()
        if raised:
            raise raised[0]
        check(status)

    def evaluate(self, path: PathLike) -> Dict[str, float]:
        """Filtered link prediction on a triples file: mrr, hits_at_1/3/10, queries, skipped."""
        m = _capi.chorus_kg_metrics()
        check(_capi.chorus_kg_metrics_init(byref(m)))
        check(_capi.chorus_kg_evaluate_tsv(self._live(), _path(path), byref(m)))
        return {"mrr": m.mrr, "hits_at_1": m.hits_at_1, "hits_at_3": m.hits_at_3, "hits_at_10": m.hits_at_10,
                "queries": int(m.queries), "skipped": int(m.skipped)}

    def _vector(self, fn, name: str) -> np.ndarray:
        handle = self._live()
        dim = c_size_t()
        probe = np.zeros(1, dtype=np.float32)
        status = fn(handle, _text(name, "name"), probe.ctypes.data_as(POINTER(c_float)), 0, byref(dim))
        if status != _capi.CHORUS_ERR_BUFFER_TOO_SMALL:
            check(status)
        out = np.zeros(dim.value, dtype=np.float32)
        check(fn(handle, _text(name, "name"), out.ctypes.data_as(POINTER(c_float)), out.size, byref(dim)))
        return out

    def entity_vector(self, name: str) -> np.ndarray:
        """An entity's trained vector (float32).

        Raises:
            NotFound: an entity the graph does not know.  NotFitted: before training.
        """
        return self._vector(_capi.chorus_kg_entity_vector, name)

    def relation_vector(self, name: str) -> np.ndarray:
        """A relation's trained vector (float32). Raises as :meth:`entity_vector`."""
        return self._vector(_capi.chorus_kg_relation_vector, name)

    def save(self, path: PathLike) -> None:
        """Writes the graph (triples, names, model) to `path` as one snapshot file, atomically.

        Raises:
            ChorusIOError: the file system refused.
        """
        check(_capi.chorus_kg_save(self._live(), _path(path)))

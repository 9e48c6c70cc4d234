"""Chorus with the call shapes of implicit's models, so code written for implicit switches with
one import::

    from chorus.compat.implicit import AlternatingLeastSquares   # was: from implicit.als import ...

    model = AlternatingLeastSquares(factors=64, iterations=15)
    model.fit(user_items)                                   # CSR users x items, values = confidences
    ids, scores = model.recommend(userid, user_items[userid], N=10)
    ids, scores = model.recommend(np.arange(100), user_items[:100], N=10)   # (100, 10)
    ranking_metrics_at_k(model, train, test, K=10)          # implicit.evaluation, unchanged

What differs from implicit, and why:

- The model is a whole Chorus engine (the coordinator's blend of ALS, BPR, item-kNN, session and
  popularity agents, or those ``agents=`` names), not ALS alone; scores are the blend's.
- ``similar_items`` ranks by the cosine of Chorus' item vectors; as in implicit the item itself
  comes first (score 1.0), which Chorus itself leaves out.
- ``similar_users`` ranks by the cosine of Chorus' user factors (ALS's, else BPR's; a model fitted
  with ``agents`` naming neither refuses); as in implicit the user itself comes first (score 1.0).
- ``partial_fit_users``: rows that only add (new users, new items, larger values) go in as live
  feedback, folded in at each user's next request (no refit, as implicit's per-user solve); a row
  that drops or lowers an item replaces those users' rows and refits the engine.
- ``recalculate_user=True`` recommends from the given rows as the user's history (Chorus'
  ``history=``), one call per user; ``recalculate_item`` is not supported.
- ``user_factors`` / ``item_factors`` are not exposed.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _frames
from ..engine import Engine
from ..errors import InvalidArgument

_META_KEY = "chorus-python/compat-implicit"
_META_VERSION = 1

IdsAndScores = Tuple[np.ndarray, np.ndarray]


def _csr(matrix: Any, name: str) -> Any:
    if not _frames.is_sparse(matrix):
        raise TypeError(f"{name} must be a SciPy sparse users x items matrix (CSR), got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise InvalidArgument(f"{name} must be 2-D, got {matrix.ndim} dimensions")
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (confidences), got dtype {matrix.dtype}")
    return matrix.tocsr()


def _ids(values: Any, name: str) -> Tuple[np.ndarray, bool]:
    """A user or item id argument as a 1-D int64 array, and whether it was a scalar."""
    scalar = np.isscalar(values) or (isinstance(values, np.ndarray) and values.ndim == 0)
    arr = np.asarray(values).reshape(-1)
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer row/column indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise InvalidArgument(f"{name} holds a negative index ({int(arr.min())})")
    return arr, bool(scalar)


class AlternatingLeastSquares:
    """A Chorus engine behind implicit's ``AlternatingLeastSquares`` interface.

    Args:
        factors, regularization, alpha, iterations: the ALS agent's settings (``alpha`` scales
            confidences as ``1 + alpha * value``).
        num_threads: training threads; 0 = every CPU.
        random_state: an int seed (None = Chorus' default seed).
        agents: the Chorus agents to train (``["als"]`` for ALS alone, with popularity for unknown
            users); None = every agent the data allows.
        Other keyword arguments of implicit's constructor (``use_gpu``, ``use_cg``,
        ``calculate_training_loss``, ...) are accepted and ignored.
    """

    def __init__(self, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, num_threads: int = 0, random_state: Optional[int] = None, *,
                 agents: Optional[Sequence[str]] = None, **ignored: Any) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.num_threads = num_threads
        if random_state is not None and not isinstance(random_state, (int, np.integer)):
            raise TypeError("random_state must be an int seed or None")
        self.random_state = random_state
        self.agents = list(agents) if agents is not None else None
        self.engine: Optional[Engine] = None
        self._user_items: Optional[Any] = None

    # -- training ----------------------------------------------------------------------------------

    def fit(self, user_items: Any, show_progress: bool = True, callback: Any = None) -> None:
        """Trains on a users x items sparse matrix (rows = user ids, columns = item ids, values =
        confidences > 0), replacing any previous model.

        Raises:
            TypeError: not a SciPy sparse matrix, or not numbers.
            InvalidArgument: a stored zero, negative or non-finite value; too little data.
            NotImplementedError: a `callback` (Chorus reports progress by stage, not per iteration).
        """
        if callback is not None:
            raise NotImplementedError("fit(callback=...) is not supported by chorus.compat.implicit: Chorus reports "
                                      "progress by stage, not per ALS iteration (see chorus.Engine.fit(progress=...))")
        matrix = _csr(user_items, "user_items")
        engine = Engine()
        try:
            engine.add_interactions(matrix)
            engine.fit(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                       iterations=self.iterations, threads=self.num_threads,
                       seed=0 if self.random_state is None else int(self.random_state),
                       agents=self.agents)
        except BaseException:
            engine.close()
            raise
        if self.engine is not None:
            self.engine.close()
        self.engine, self._user_items = engine, matrix

    def partial_fit_users(self, userids: Any, user_items: Any) -> None:
        """Replaces (or adds) the rows of `userids` with those of `user_items`.

        When every row only adds to what its user had (a new user, new items, larger values: the
        usual case of fresh interactions), the additions go in as live feedback (a click of value =
        the added confidence): no refit, and each user's vectors are solved against the fitted item
        factors at their next request, as implicit's per-user solve (`chorus.Engine.feedback`). A row
        that drops or lowers one of its user's items needs a full refit on the updated matrix, which
        this then runs.
        """
        base = self._fitted_matrix()
        users, _ = _ids(userids, "userids")
        rows = _csr(user_items, "user_items")
        if rows.shape[0] != users.size:
            raise InvalidArgument(f"user_items has {rows.shape[0]} rows for {users.size} userids")
        import scipy.sparse as sp
        n_users = max(base.shape[0], int(users.max()) + 1 if users.size else 0)
        n_items = max(base.shape[1], rows.shape[1])
        lil = sp.lil_matrix((n_users, n_items), dtype=np.float32)
        lil[: base.shape[0], : base.shape[1]] = base
        add_users: list = []
        add_items: list = []
        add_values: list = []
        grows = True
        for r, u in enumerate(users):
            row = rows.getrow(r)
            old = base.getrow(int(u)) if int(u) < base.shape[0] else sp.csr_matrix((1, base.shape[1]), dtype=np.float32)
            had = dict(zip(old.indices.tolist(), old.data.tolist()))
            now = dict(zip(row.indices.tolist(), row.data.tolist()))
            if any(now.get(i, 0.0) < w for i, w in had.items()):
                grows = False
            for i, w in now.items():
                if w > had.get(i, 0.0):
                    add_users.append(int(u)); add_items.append(int(i)); add_values.append(w - had.get(i, 0.0))
            lil[int(u), :] = 0
            lil[int(u), row.indices] = row.data
        merged = lil.tocsr()
        merged.eliminate_zeros()
        if not grows:
            self.fit(merged)
            return
        if add_users:
            self._engine().feedback(np.asarray(add_users, dtype=np.int64), np.asarray(add_items, dtype=np.int64), "click",
                                    values=np.asarray(add_values, dtype=np.float32))
        self._user_items = merged

    def partial_fit_items(self, itemids: Any, item_users: Any) -> None:
        """Not available: Chorus' items come from interactions; add them with partial_fit_users."""
        raise NotImplementedError("partial_fit_items is not supported by chorus.compat.implicit; "
                                  "add the interactions through partial_fit_users")

    def _fitted_matrix(self) -> Any:
        if self.engine is None or self._user_items is None:
            raise RuntimeError("the model is not fitted: call fit(user_items) first")
        return self._user_items

    def _engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("the model is not fitted: call fit(user_items) first")
        return self.engine

    # -- queries -----------------------------------------------------------------------------------

    def recommend(self, userid: Any, user_items: Any, N: int = 10, filter_already_liked_items: bool = True,
                  filter_items: Any = None, recalculate_user: bool = False, items: Any = None) -> IdsAndScores:
        """The top `N` items for a user id, or for each of an array of user ids.

        Args:
            userid: a row index of the training matrix, or an array of them.
            user_items: the users' rows (one row per user id, as implicit asks); their items are
                left out when `filter_already_liked_items`, and are the history used when
                `recalculate_user`.
            N: items per user.
            filter_items: item ids never to recommend.  items: recommend only among these.

        Returns:
            ``(ids, scores)``: int32 and float32 arrays of shape (N,) for a scalar user id, else
            (len(userid), N). Slots that cannot be filled hold -1 and -inf.

        Raises:
            ValueError: `user_items` of the wrong shape, or both `items` and `filter_items`.
            TypeError: `user_items` not a sparse matrix of numbers.
        """
        engine = self._engine()
        users, scalar = _ids(userid, "userid")
        if filter_already_liked_items or recalculate_user:
            rows = _csr(user_items, "user_items")
            if rows.shape[0] != users.size:
                raise InvalidArgument(f"user_items must have one row per user id: {rows.shape[0]} rows for "
                                      f"{users.size} user ids")
            n_items = self._fitted_matrix().shape[1]
            if rows.shape[1] > n_items:
                raise InvalidArgument(f"user_items has {rows.shape[1]} columns; the model was fitted on {n_items} items")
        else:
            rows = None
        if items is not None and filter_items is not None and len(filter_items):
            raise InvalidArgument("Can't set both items and filter_items in recommend call")
        allow = None if items is None else _ids(items, "items")[0]
        deny = None if filter_items is None else _ids(filter_items, "filter_items")[0]
        if allow is not None:
            N = min(N, allow.size)
        if N < 1:
            empty = np.zeros((0,) if scalar else (users.size, 0))
            return empty.astype(np.int32), empty.astype(np.float32)
        n_model = int(engine.stats()["n_model_items"])
        liked = [] if rows is None or not filter_already_liked_items else \
            [rows.indices[rows.indptr[r]:rows.indptr[r + 1]] for r in range(users.size)]
        widest = max((len(x) for x in liked), default=0)
        k = max(1, min(n_model, N + widest))
        out_ids = np.full((users.size, N), -1, dtype=np.int32)
        out_scores = np.full((users.size, N), -np.inf, dtype=np.float32)
        if recalculate_user:
            assert rows is not None
            for r in range(users.size):
                history = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
                got_ids, got_scores = engine.recommend(int(users[r]), k=k, include_seen=True, items=allow,
                                                       deny_items=deny, history=history)
                self._fill(out_ids, out_scores, r, got_ids, got_scores, liked[r] if liked else None, N)
        elif users.size:
            got_ids, got_scores = engine.recommend(users, k=k, include_seen=True, items=allow, deny_items=deny)
            for r in range(users.size):
                self._fill(out_ids, out_scores, r, got_ids[r], got_scores[r], liked[r] if liked else None, N)
        if scalar:
            return out_ids[0], out_scores[0]
        return out_ids, out_scores

    @staticmethod
    def _fill(out_ids: np.ndarray, out_scores: np.ndarray, r: int, ids: np.ndarray, scores: np.ndarray,
              liked: Optional[np.ndarray], n: int) -> None:
        keep = ids >= 0
        if liked is not None and len(liked):
            keep &= ~np.isin(ids, liked)
        ids, scores = ids[keep][:n], scores[keep][:n]
        out_ids[r, : ids.size] = ids
        out_scores[r, : ids.size] = scores

    def similar_items(self, itemid: Any, N: int = 10, recalculate_item: bool = False, item_users: Any = None,
                      filter_items: Any = None, items: Any = None) -> IdsAndScores:
        """The `N` items most similar to an item id (or each of an array of them), the item
        itself first as in implicit. Shapes as :meth:`recommend`.

        Raises:
            NotImplementedError: `recalculate_item` (Chorus cannot recompute one item's vector).
            chorus.NotFound: an item the model does not know.
        """
        if recalculate_item:
            raise NotImplementedError("recalculate_item is not supported by chorus.compat.implicit: refit instead")
        engine = self._engine()
        query, scalar = _ids(itemid, "itemid")
        if items is not None and filter_items is not None and len(filter_items):
            raise InvalidArgument("Can't set both items and filter_items in similar_items call")
        allow = None if items is None else _ids(items, "items")[0]
        deny = None if filter_items is None else _ids(filter_items, "filter_items")[0]
        out_ids = np.full((query.size, N), -1, dtype=np.int32)
        out_scores = np.full((query.size, N), -np.inf, dtype=np.float32)
        if N >= 1 and query.size:
            # N, not N - 1: the item itself takes no slot when `items` leaves it out (the row is cut to N).
            k = max(1, min(N, int(engine.stats()["n_model_items"])))
            got_ids, got_scores = engine.similar_items(query, k=k, items=allow, deny_items=deny)
            for r in range(query.size):
                itself = (allow is None or query[r] in allow) and (deny is None or query[r] not in deny)
                ids = [int(query[r])] if itself else []
                scores = [1.0] if itself else []
                for i, s in zip(got_ids[r], got_scores[r]):
                    if i >= 0 and len(ids) < N:
                        ids.append(int(i))
                        scores.append(float(s))
                out_ids[r, : len(ids)] = ids
                out_scores[r, : len(scores)] = scores
        if scalar:
            return out_ids[0], out_scores[0]
        return out_ids, out_scores

    def similar_users(self, userid: Any, N: int = 10, filter_users: Any = None, users: Any = None) -> IdsAndScores:
        """The `N` users most similar to a user id (or each of an array of them), by the cosine of
        Chorus' user factors (ALS's, else BPR's), the user itself first as in implicit. Shapes as
        :meth:`recommend`.

        Raises:
            ValueError: both `users` and `filter_users` given (as implicit).
            chorus.NotFound: a user the model does not know (a row without interactions).
            chorus.InvalidArgument: a model fitted with ``agents`` naming neither als nor bpr.
        """
        engine = self._engine()
        query, scalar = _ids(userid, "userid")
        if users is not None and filter_users is not None and len(filter_users):
            raise InvalidArgument("Can't set both users and filter_users in similar_users call")
        allow = None if users is None else _ids(users, "users")[0]
        deny = None if filter_users is None else _ids(filter_users, "filter_users")[0]
        out_ids = np.full((query.size, N), -1, dtype=np.int32)
        out_scores = np.full((query.size, N), -np.inf, dtype=np.float32)
        if N >= 1 and query.size:
            # N, not N - 1: the user itself takes no slot when `users` leaves it out (the row is cut to N).
            k = max(1, min(N, int(engine.stats()["n_model_users"])))
            got_ids, got_scores = engine.similar_users(query, k=k, users=allow, deny_users=deny)
            for r in range(query.size):
                itself = (allow is None or query[r] in allow) and (deny is None or query[r] not in deny)
                ids = [int(query[r])] if itself else []
                scores = [1.0] if itself else []
                for u, s in zip(got_ids[r], got_scores[r]):
                    if np.isfinite(s) and len(ids) < N:
                        ids.append(int(u))
                        scores.append(float(s))
                out_ids[r, : len(ids)] = ids
                out_scores[r, : len(scores)] = scores
        if scalar:
            return out_ids[0], out_scores[0]
        return out_ids, out_scores

    # -- persistence -------------------------------------------------------------------------------

    def save(self, fileobj_or_path: Union[str, "os.PathLike[str]", Any]) -> None:
        """Writes the model (the engine snapshot, with the training matrix and these settings in
        its host metadata) to a path or a binary file object."""
        engine = self._engine()
        matrix = self._fitted_matrix()
        buf = io.BytesIO()
        np.savez(buf, data=matrix.data.astype(np.float32), indices=matrix.indices, indptr=matrix.indptr,
                 shape=np.array(matrix.shape, dtype=np.int64))
        engine.set_metadata(_META_KEY + "/matrix", buf.getvalue())
        settings: Dict[str, Any] = dict(version=_META_VERSION, factors=self.factors, regularization=self.regularization,
                                        alpha=self.alpha, iterations=self.iterations, num_threads=self.num_threads,
                                        random_state=None if self.random_state is None else int(self.random_state),
                                        agents=self.agents)
        engine.set_metadata(_META_KEY, json.dumps(settings).encode("utf-8"))
        if hasattr(fileobj_or_path, "write"):
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "model.chorus")
                engine.save(path)
                with open(path, "rb") as f:
                    fileobj_or_path.write(f.read())
        else:
            engine.save(fileobj_or_path)

    @classmethod
    def load(cls, fileobj_or_path: Union[str, "os.PathLike[str]", Any]) -> "AlternatingLeastSquares":
        """Reads a model written by :meth:`save`.

        Raises:
            chorus.FormatError: not such a model (an engine snapshot saved without this class).
        """
        from ..errors import FormatError
        if hasattr(fileobj_or_path, "read"):
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "model.chorus")
                with open(path, "wb") as f:
                    f.write(fileobj_or_path.read())
                engine = Engine.load(path)
        else:
            engine = Engine.load(fileobj_or_path)
        try:
            raw, packed = engine.metadata(_META_KEY), engine.metadata(_META_KEY + "/matrix")
            if raw is None or packed is None:
                raise FormatError("not a chorus.compat.implicit model: the snapshot has no compat settings")
            settings = json.loads(raw.decode("utf-8"))
            if settings.get("version") != _META_VERSION:
                raise FormatError(f"chorus.compat.implicit settings version {settings.get('version')!r} is not supported")
            import scipy.sparse as sp
            with np.load(io.BytesIO(packed), allow_pickle=False) as z:
                matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(x) for x in z["shape"]))
        except BaseException:
            engine.close()
            raise
        settings.pop("version")
        model = cls(**settings)
        model.engine, model._user_items = engine, matrix
        return model

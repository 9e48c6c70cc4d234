"""chorus.compat.implicit: implicit's call shapes, checked against implicit itself (its own
train_test_split and ranking_metrics_at_k run on the compat model unchanged)."""

import io

import numpy as np
import pytest
import scipy.sparse as sp

implicit = pytest.importorskip("implicit")
from implicit.evaluation import ranking_metrics_at_k, train_test_split  # noqa: E402

import chorus  # noqa: E402
from chorus.compat.implicit import AlternatingLeastSquares  # noqa: E402

SETTINGS = dict(factors=4, iterations=10, regularization=0.1, num_threads=1, random_state=7)


def clustered_matrix(n_users=120, n_items=60, clusters=3, per_user=12, seed=0):
    """Users of cluster c interact only with the items of cluster c: a known answer."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    size = n_items // clusters
    for u in range(n_users):
        c = u % clusters
        chosen = rng.choice(np.arange(c * size, (c + 1) * size), size=per_user, replace=False)
        rows += [u] * per_user
        cols += list(chosen)
    data = rng.integers(1, 5, size=len(rows)).astype(np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(n_users, n_items)), size


@pytest.fixture(scope="module")
def split():
    matrix, size = clustered_matrix()
    train, test = train_test_split(matrix, train_percentage=0.75, random_state=3)
    model = AlternatingLeastSquares(**SETTINGS)
    model.fit(train, show_progress=False)
    yield model, train, test, size
    model.engine.close()


def test_implicits_own_evaluation_runs_unchanged(split):
    model, train, test, size = split
    metrics = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)
    assert set(metrics) >= {"precision", "map", "ndcg", "auc"}
    # Random ranking among the 60 items would give precision@10 about 0.07; the clusters make the
    # right answer easy. implicit's own ALS on the same split, with the same settings, is the yardstick.
    from implicit.als import AlternatingLeastSquares as ImplicitALS
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, "blas"):  # implicit warns about (and is slowed by) a threaded OpenBLAS
        reference = ImplicitALS(factors=4, iterations=10, regularization=0.1, random_state=7)
        reference.fit(train, show_progress=False)
    theirs = ranking_metrics_at_k(reference, train, test, K=10, show_progress=False)
    assert metrics["precision"] > 0.5 and metrics["precision"] >= 0.85 * theirs["precision"], (metrics, theirs)
    assert metrics["ndcg"] >= 0.85 * theirs["ndcg"], (metrics, theirs)


def test_recommend_shapes_and_filtering_as_implicit(split):
    model, train, _test, size = split
    ids, scores = model.recommend(0, train[0], N=5)
    assert ids.shape == (5,) and scores.shape == (5,) and ids.dtype == np.int32 and scores.dtype == np.float32
    liked = set(train[0].indices)
    assert not liked & set(ids)
    assert all(0 <= i < size for i in ids)  # user 0 is in cluster 0
    assert np.all(np.diff(scores) <= 1e-6)
    users = np.array([0, 1, 2, 5])
    batch, batch_scores = model.recommend(users, train[users], N=5)
    assert batch.shape == (4, 5) and batch_scores.shape == (4, 5)
    np.testing.assert_array_equal(batch[0], ids)
    # Without filtering, liked items may come back.
    unfiltered, _ = model.recommend(0, None, N=20, filter_already_liked_items=False)
    assert liked & set(unfiltered)
    # items / filter_items
    only, _ = model.recommend(0, train[0], N=10, items=[1, 2, 3, 50])
    assert only.shape == (4,) and set(only[only >= 0]) <= {1, 2, 3, 50} - liked
    denied, _ = model.recommend(0, train[0], N=5, filter_items=ids[:2])
    assert not set(ids[:2]) & set(denied)
    with pytest.raises(ValueError, match="items and filter_items"):
        model.recommend(0, train[0], items=[1], filter_items=[2])


def test_recalculate_user_uses_the_rows_as_history(split):
    model, train, _test, size = split
    # A user the model never saw, who liked items of cluster 1.
    row = sp.csr_matrix((np.ones(4, dtype=np.float32), ([0, 0, 0, 0], [size, size + 1, size + 2, size + 3])),
                        shape=(1, train.shape[1]))
    ids, _ = model.recommend(10_000, row, N=5, recalculate_user=True)
    assert all(size <= i < 2 * size for i in ids), ids


def test_bad_user_items_are_named(split):
    model, train, _test, _size = split
    with pytest.raises(ValueError, match="one row per user id"):
        model.recommend([0, 1], train[0], N=5)
    with pytest.raises(TypeError, match="user_items must be a SciPy sparse"):
        model.recommend(0, train[0].toarray(), N=5)
    with pytest.raises(ValueError, match="columns"):
        model.recommend(0, sp.csr_matrix((1, train.shape[1] + 5), dtype=np.float32), N=5)
    with pytest.raises(TypeError, match="dtype complex"):
        model.fit(sp.csr_matrix(np.array([[1j, 0], [0, 1j]])))
    with pytest.raises(TypeError, match="integer"):
        model.recommend(0.5, train[0])


def test_similar_items_puts_the_item_first(split):
    model, _train, _test, size = split
    ids, scores = model.similar_items(3, N=5)
    assert ids.shape == (5,) and ids[0] == 3 and scores[0] == pytest.approx(1.0)
    assert all(0 <= i < size for i in ids)
    batch, _ = model.similar_items(np.array([3, size + 1]), N=4)
    assert batch.shape == (2, 4) and batch[1, 0] == size + 1 and all(size <= i < 2 * size for i in batch[1])
    # items= without the item itself: N others, as implicit (the item takes no slot).
    only, only_scores = model.similar_items(3, N=3, items=[1, 2, size + 4])
    assert set(only) == {1, 2, size + 4} and np.all(np.isfinite(only_scores))
    with pytest.raises(NotImplementedError):
        model.similar_items(3, recalculate_item=True)


def test_similar_users_has_implicits_call_shapes(split):
    model, train, _test, _size = split
    import inspect
    from implicit.als import AlternatingLeastSquares as ImplicitALS
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, "blas"):
        reference = ImplicitALS(factors=4, iterations=10, regularization=0.1, random_state=7)
        reference.fit(train, show_progress=False)
    assert list(inspect.signature(model.similar_users).parameters) == \
        list(inspect.signature(reference.similar_users).parameters)
    # Single: 1-D, the user itself first at cosine 1, then users of its cluster (u % 3), as implicit's.
    ids, scores = model.similar_users(4, N=6)
    theirs, their_scores = reference.similar_users(4, N=6)
    assert ids.shape == theirs.shape == (6,) and scores.shape == their_scores.shape
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    # (implicit sorts the user itself among its ties at cosine 1; Chorus puts it first, as in similar_items)
    assert ids[0] == 4 and 4 in theirs[:2] and scores[0] == pytest.approx(1.0) and their_scores[0] == pytest.approx(1.0, abs=1e-4)
    assert all(u % 3 == 1 for u in ids) and all(u % 3 == 1 for u in theirs)
    assert np.all(np.diff(scores) <= 1e-6) and np.all(scores <= 1.0 + 1e-5)
    # Batch: (n, N), row r as the single call.
    batch, batch_scores = model.similar_users(np.array([4, 5]), N=6)
    their_batch, _ = reference.similar_users(np.array([4, 5]), N=6)
    assert batch.shape == their_batch.shape == (2, 6) and batch_scores.shape == (2, 6)
    np.testing.assert_array_equal(batch[0], ids)
    assert batch[1, 0] == 5 and all(u % 3 == 2 for u in batch[1])
    # users= restricts (the user itself only when listed), filter_users= excludes.
    only, _ = model.similar_users(4, N=3, users=[7, 10, 2])
    their_only, _ = reference.similar_users(4, N=3, users=[7, 10, 2])
    assert only.shape == their_only.shape == (3,) and set(only) == set(their_only) == {7, 10, 2}
    assert list(only[:2]) == list(their_only[:2]) == [7, 10]  # 7 and 10 share user 4's cluster, 2 does not
    denied, _ = model.similar_users(4, N=5, filter_users=ids[1:3])
    assert denied[0] == 4 and not set(ids[1:3]) & set(denied)
    with pytest.raises(ValueError, match="users and filter_users"):
        model.similar_users(4, users=[1], filter_users=[2])
    # N past the user count: the rest of the row is empty (-1, -inf).
    n_users = train.shape[0]
    full, full_scores = model.similar_users(4, N=n_users + 5)
    assert full.shape == (n_users + 5,) and np.all(full[-5:] == -1) and np.all(np.isneginf(full_scores[-5:]))
    assert sorted(full[full >= 0]) == list(range(n_users))


def test_partial_fit_users_that_drops_items_refits_with_the_new_rows(split):
    _model, train, _test, size = split
    model = AlternatingLeastSquares(**SETTINGS)
    model.fit(train)
    # User 0 (cluster 0) now likes items of cluster 2 only, and a new user 500 too.
    cols = np.arange(2 * size, 2 * size + 8)
    rows = sp.csr_matrix((np.ones(16, dtype=np.float32), (np.repeat([0, 1], 8), np.tile(cols, 2))),
                         shape=(2, train.shape[1]))
    model.partial_fit_users([0, 500], rows)
    assert model.engine.stats()["n_users"] == train.shape[0] + 1
    for user in (0, 500):
        ids, _ = model.recommend(user, rows[[0 if user == 0 else 1]], N=5)
        assert all(2 * size <= i < 3 * size for i in ids), (user, ids)
    model.engine.close()


def test_partial_fit_users_that_only_add_is_live_feedback_not_a_refit(split):
    _model, train, _test, size = split
    model = AlternatingLeastSquares(**SETTINGS)
    model.fit(train)
    engine = model.engine
    fitted_interactions = engine.stats()["n_interactions"]
    # User 0 (cluster 0) keeps its row and adds cluster-2 items; a new user 501 likes cluster 2.
    cols = np.arange(2 * size, 2 * size + 8)
    old = train.getrow(0)
    grown = sp.csr_matrix((np.concatenate([old.data, np.ones(8, dtype=np.float32)]), np.concatenate([old.indices, cols]),
                           [0, old.nnz + 8]), shape=(1, train.shape[1]))
    rows = sp.vstack([grown, sp.csr_matrix((np.ones(8, dtype=np.float32), (np.zeros(8, dtype=int), cols)), shape=(1, train.shape[1]))])
    model.partial_fit_users([0, 501], rows.tocsr())
    assert model.engine is engine, "no refit: the same engine"
    assert engine.stats()["n_interactions"] == fitted_interactions + 16  # the additions, as feedback
    ids, _ = model.recommend(501, rows.tocsr()[[1]], N=5)
    assert all(2 * size <= i < 3 * size for i in ids), ids  # served personally at once (fold-in)
    assert model._user_items.shape[0] == 502 and model._user_items[0].nnz == old.nnz + 8
    model.engine.close()


def test_save_and_load_by_path_and_file_object(split, tmp_path):
    model, train, _test, _size = split
    want = model.recommend(np.arange(6), train[:6], N=5)
    path = tmp_path / "model.chorus"
    model.save(path)
    loaded = AlternatingLeastSquares.load(path)
    got = loaded.recommend(np.arange(6), train[:6], N=5)
    np.testing.assert_array_equal(got[0], want[0])
    assert loaded.factors == SETTINGS["factors"] and loaded.random_state == SETTINGS["random_state"]
    buf = io.BytesIO()
    loaded.save(buf)
    buf.seek(0)
    again = AlternatingLeastSquares.load(buf)
    np.testing.assert_array_equal(again.recommend(0, train[0], N=5)[0], want[0][0])
    loaded.engine.close()
    again.engine.close()
    # A plain engine snapshot is not a compat model.
    with chorus.Engine() as e:
        e.add_interactions([1, 2], [3, 4])
        e.save(tmp_path / "plain.chorus")
    with pytest.raises(chorus.FormatError, match="not a chorus.compat.implicit model"):
        AlternatingLeastSquares.load(tmp_path / "plain.chorus")


def test_unfitted_model():
    with pytest.raises(RuntimeError, match="not fitted"):
        AlternatingLeastSquares().recommend(0, None, filter_already_liked_items=False)

"""The Pythonic Engine: every method, known answers on synthetic clusters, every error path."""

import datetime
import gc
import math
import pickle
import threading

import numpy as np
import pytest

import chorus
from chorus import NO_ITEM

from conftest import FIT, ITEMS_A, ITEMS_B, USERS_A, USERS_B, build_engine

N_ITEMS = len(ITEMS_A) + len(ITEMS_B)
ALL_USERS = np.concatenate([USERS_A, USERS_B])
UNKNOWN_USER = 123_456_789


def ids_of(row):
    return [int(i) for i in row if i != NO_ITEM]


# ---- lifetime -----------------------------------------------------------------------------------


def test_context_manager_closes():
    with chorus.Engine() as engine:
        assert not engine.closed
        assert engine.stats()["n_interactions"] == 0
    assert engine.closed
    with pytest.raises(ValueError):
        engine.stats()


def test_close_is_idempotent_and_every_method_refuses_afterwards():
    engine = chorus.Engine()
    engine.close()
    engine.close()
    calls = [
        lambda: engine.add_interactions([1], [2]),
        lambda: engine.fit(),
        lambda: engine.recommend(1),
        lambda: engine.similar_items(1),
        lambda: engine.similar_users(1),
        lambda: engine.agents,
        lambda: engine.stats(),
        lambda: engine.save("/tmp/never-written.chorus"),
        lambda: engine.__enter__(),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="closed"):
            call()
    assert "closed" in repr(engine)


def test_del_is_a_fallback():
    engine = chorus.Engine()
    engine.add_interactions([1, 2], [3, 4])
    del engine
    gc.collect()


def test_repr_and_pickle():
    with chorus.Engine() as engine:
        assert "fitted=False" in repr(engine)
        with pytest.raises(TypeError, match="save"):
            pickle.dumps(engine)


@pytest.mark.parametrize("half_life", [None, 0, 3600, 86400.0, -1, math.inf, datetime.timedelta(days=7)])
def test_engine_params(half_life):
    with chorus.Engine(popularity_half_life_seconds=half_life) as engine:
        assert engine.stats()["fitted"] is False


def test_engine_params_nan_is_invalid():
    with pytest.raises(chorus.InvalidArgument):
        chorus.Engine(popularity_half_life_seconds=float("nan"))


# ---- add_interactions -----------------------------------------------------------------------------


def test_add_interactions_counts(engine, data):
    engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
    s = engine.stats()
    assert s["n_interactions"] == len(data.users)
    assert s["n_users"] == len(ALL_USERS)
    assert s["n_items"] == N_ITEMS
    assert s["fitted"] is False


def test_add_interactions_accepts_lists_scalars_and_other_dtypes(engine):
    engine.add_interactions([1, 2], (3, 4))
    engine.add_interactions(np.array([5], dtype=np.int32), np.array([6], dtype=np.uint16), [2.5], [10])
    engine.add_interactions(7, 8, 1.0, 20)
    engine.add_interactions([9], [10], timestamps=np.array(["2024-01-01T00:00:00"], dtype="datetime64[s]"))
    assert engine.stats()["n_interactions"] == 5


def test_add_interactions_rejects_non_integer_ids(engine):
    with pytest.raises(TypeError):
        engine.add_interactions([1.5], [2])
    with pytest.raises(TypeError):  # bytes are not ids (strings are: tests/test_dataframes.py)
        engine.add_interactions([1], [b"a"])
    with pytest.raises(ValueError):
        engine.add_interactions([[1, 2]], [[3, 4]])
    with pytest.raises(ValueError):
        engine.add_interactions(np.array([2**63], dtype=np.uint64), [1])


@pytest.mark.parametrize("kwargs", [
    dict(user_ids=[1, 2, 3], item_ids=[1, 2]),
    dict(user_ids=[1, 2], item_ids=[1, 2], weights=[1.0]),
    dict(user_ids=[1, 2], item_ids=[1, 2], timestamps=[1, 2, 3]),
])
def test_add_interactions_length_mismatch(engine, kwargs):
    with pytest.raises(chorus.InvalidArgument):
        engine.add_interactions(**kwargs)
    with pytest.raises(ValueError):
        engine.add_interactions(**kwargs)
    assert engine.stats()["n_interactions"] == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e39])
def test_add_interactions_bad_weight_adds_nothing(engine, bad):
    with pytest.raises(chorus.InvalidArgument):
        engine.add_interactions([1, 2, 3], [4, 5, 6], [1.0, bad, 2.0])
    assert engine.stats()["n_interactions"] == 0
    engine.add_interactions([1, 2, 3], [4, 5, 6], [1.0, 3.0, 2.0])
    assert engine.stats()["n_interactions"] == 3


def test_add_interactions_empty_is_invalid(engine):
    with pytest.raises(chorus.InvalidArgument):  # n = 0 is a bad count
        engine.add_interactions([], [])
    with pytest.raises(chorus.InvalidArgument):
        engine.add_interactions(np.array([], dtype=np.int64), np.array([], dtype=np.int64), [], [])
    assert engine.stats()["n_interactions"] == 0


# ---- fit ------------------------------------------------------------------------------------------


def test_fit_needs_data(engine):
    with pytest.raises(chorus.InvalidArgument):
        engine.fit(**FIT)
    engine.add_interactions([1, 1], [2, 3])  # one user only
    with pytest.raises(chorus.InvalidArgument):
        engine.fit(**FIT)
    assert engine.stats()["fitted"] is False


@pytest.mark.parametrize("kwargs, exc", [
    (dict(factors=-1), chorus.InvalidArgument),
    (dict(iterations=-3), chorus.InvalidArgument),
    (dict(threads=2**32), chorus.InvalidArgument),
    (dict(seed=-1), chorus.InvalidArgument),
    (dict(factors=2.5), TypeError),
    (dict(regularization="x"), TypeError),
    (dict(progress="not callable"), TypeError),
    (dict(validation_fraction=0.5), chorus.InvalidArgument),
    (dict(validation_fraction=float("nan")), chorus.InvalidArgument),
    (dict(regularization=-1.0), chorus.InvalidArgument),
    (dict(alpha=float("inf")), chorus.InvalidArgument),
    (dict(agents=["nope"]), chorus.InvalidArgument),
    (dict(agents=["query"]), chorus.InvalidArgument),
    (dict(agents=["als", "als"]), chorus.InvalidArgument),
    (dict(agents=["als,bpr"]), chorus.InvalidArgument),
    (dict(agents=["content"]), chorus.InvalidArgument),   # no item texts
    (dict(agents=[]), chorus.InvalidArgument),
    (dict(agents="als"), TypeError),
    (dict(bpr_epochs=-1), chorus.InvalidArgument),
    (dict(bpr_epochs=100_001), chorus.InvalidArgument),
])
def test_fit_bad_params(data, kwargs, exc):
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        with pytest.raises(exc):
            engine.fit(**{**FIT, **kwargs})
        assert engine.stats()["fitted"] is False


def test_fit_trains_the_agents_asked_for(data):
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        engine.fit(**FIT, agents=["session", "als"], bpr_epochs=3)
        assert [name for name, _ in engine.agents] == ["popularity", "als", "session"]
        engine.fit(**FIT, agents=["bpr"], bpr_epochs=3)
        assert [name for name, _ in engine.agents] == ["popularity", "bpr"]
        ids, scores = engine.recommend(int(data.users[0]), k=3)
        assert len(ids) == 3 and np.isfinite(scores).all()


def test_fit_defaults(data):
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        engine.fit(iterations=2)
        assert engine.stats()["fitted"] is True


def test_fit_progress_reports(data):
    calls = []
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        engine.fit(**FIT, progress=lambda stage, fraction: calls.append((stage, fraction)))
        assert engine.stats()["fitted"] is True
    assert calls
    for stage, fraction in calls:
        assert isinstance(stage, str) and stage
        assert 0.0 <= fraction <= 1.0


def test_fit_cancelled_by_progress(data):
    seen = []

    def progress(stage, fraction):
        seen.append(stage)
        return True

    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        with pytest.raises(chorus.Cancelled):
            engine.fit(**FIT, progress=progress)
        assert len(seen) == 1  # the library stops at the first "cancel"
        assert engine.stats()["fitted"] is False
        with pytest.raises(chorus.NotFitted):
            engine.recommend(int(USERS_A[0]))
        engine.fit(**FIT)  # the engine is still usable
        assert engine.stats()["fitted"] is True


def test_cancelled_refit_keeps_the_previous_model(data):
    with build_engine(data) as engine:
        before = engine.recommend(ALL_USERS, k=5)
        engine.add_interactions([USERS_A[0]], [ITEMS_B[0]])
        with pytest.raises(chorus.Cancelled):
            engine.fit(**FIT, progress=lambda stage, fraction: True)
        after = engine.recommend(ALL_USERS, k=5)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])


class Boom(Exception):
    pass


@pytest.mark.parametrize("exc_type", [Boom, KeyboardInterrupt])
def test_exception_in_progress_is_reraised_after_the_c_call(data, exc_type):
    calls = []

    def progress(stage, fraction):
        calls.append(stage)
        raise exc_type("from the callback")

    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        with pytest.raises(exc_type, match="from the callback"):
            engine.fit(**FIT, progress=progress)
        assert len(calls) == 1
        assert engine.stats()["fitted"] is False
        engine.fit(**FIT)
        assert engine.stats()["fitted"] is True


def test_fit_is_deterministic_for_a_seed(data, fitted):
    with build_engine(data) as again:
        a = fitted.recommend(ALL_USERS, k=5)
        b = again.recommend(ALL_USERS, k=5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-6)


# ---- recommend ------------------------------------------------------------------------------------


def test_recommend_before_fit_is_not_fitted(engine, data):
    with pytest.raises(chorus.NotFitted):
        engine.recommend(1)
    engine.add_interactions(data.users, data.items)
    with pytest.raises(chorus.NotFitted):
        engine.recommend(data.users[:3], k=2)
    with pytest.raises(chorus.NotFitted):
        engine.similar_items(int(ITEMS_A[0]))


def test_recommend_shapes(fitted):
    ids, scores = fitted.recommend(ALL_USERS, k=3)
    assert ids.shape == (len(ALL_USERS), 3) and ids.dtype == np.int64
    assert scores.shape == (len(ALL_USERS), 3) and scores.dtype == np.float32
    ids1, scores1 = fitted.recommend(int(USERS_A[0]), k=3)
    assert ids1.shape == (3,) and scores1.shape == (3,)
    ids2, _ = fitted.recommend(np.int64(USERS_A[0]), k=3)
    assert ids2.shape == (3,)
    ids3, _ = fitted.recommend([int(USERS_A[0])], k=3)
    assert ids3.shape == (1, 3)


def test_known_answer_als(fitted, data):
    """ALS alone must recommend exactly each user's 4 unseen in-group items."""
    ids, scores = fitted.recommend(ALL_USERS, k=4, agent="als")
    for u, row in zip(ALL_USERS, ids):
        u = int(u)
        assert set(ids_of(row)) == data.group[u] - data.seen[u], u


def test_known_answer_blend(fitted, data):
    """The blend keeps to the user's own group (popularity cannot tell the groups apart)."""
    ids, _ = fitted.recommend(ALL_USERS, k=4)
    hits = total = 0
    for u, row in zip(ALL_USERS, ids):
        u = int(u)
        got = ids_of(row)
        assert len(got) == 4
        hits += sum(i in data.group[u] for i in got)
        total += len(got)
    assert hits / total >= 0.9


def test_scores_are_sorted(fitted):
    for agent in (None, "als", "popularity"):
        _, scores = fitted.recommend(ALL_USERS, k=8, agent=agent)
        assert np.all(np.isfinite(scores))
        assert np.all(np.diff(scores, axis=1) <= 0)


def test_exclude_seen(fitted, data):
    for agent in (None, "als", "popularity"):
        ids, _ = fitted.recommend(ALL_USERS, k=10, agent=agent)
        for u, row in zip(ALL_USERS, ids):
            assert not set(ids_of(row)) & data.seen[int(u)]


def test_include_seen(fitted, data):
    ids, _ = fitted.recommend(ALL_USERS, k=10, agent="als", include_seen=True)
    for u, row in zip(ALL_USERS, ids):
        assert set(ids_of(row)) == data.group[int(u)]
    ids, _ = fitted.recommend(ALL_USERS, k=N_ITEMS, include_seen=True)
    for row in ids:
        assert sorted(ids_of(row)) == sorted(int(i) for i in np.concatenate([ITEMS_A, ITEMS_B]))


def test_k_equal_to_catalog_pads_with_empty_slots(fitted, data):
    u = int(USERS_A[0])
    ids, scores = fitted.recommend(u, k=N_ITEMS)
    n_real = N_ITEMS - len(data.seen[u])
    assert len(ids_of(ids)) == n_real
    assert np.all(ids[n_real:] == NO_ITEM)
    assert np.all(np.isneginf(scores[n_real:]))
    assert np.all(np.isfinite(scores[:n_real]))


def test_allow_list(fitted, data):
    u = int(USERS_A[0])
    unseen = sorted(data.group[u] - data.seen[u])
    allow = unseen[:2] + [int(ITEMS_B[0]), int(ITEMS_B[1])] + sorted(data.seen[u])[:1]
    ids, scores = fitted.recommend(u, k=6, items=allow)
    got = ids_of(ids)
    assert set(got) <= set(allow)
    assert set(got) == set(allow) - data.seen[u]  # the seen one stays excluded
    als_ids, _ = fitted.recommend(u, k=6, items=allow, agent="als")
    assert ids_of(als_ids)[:2] == [i for i in ids_of(als_ids) if i in unseen]  # in-group first
    assert np.all(ids[len(got):] == NO_ITEM) and np.all(np.isneginf(scores[len(got):]))
    # With include_seen the allowed seen item comes back.
    ids, _ = fitted.recommend(u, k=6, items=allow, include_seen=True)
    assert set(ids_of(ids)) == set(allow)


def test_allow_list_unknown_items_are_ignored(fitted):
    ids, _ = fitted.recommend(int(USERS_A[0]), k=3, items=[int(ITEMS_B[2]), 77_777_777])
    assert ids_of(ids) == [int(ITEMS_B[2])]


def test_deny_list(fitted, data):
    ids, _ = fitted.recommend(ALL_USERS, k=4, agent="als")
    deny = [int(ids[0, 0]), int(ids[len(USERS_A), 0])]
    denied, _ = fitted.recommend(ALL_USERS, k=4, agent="als", deny_items=deny)
    for row in denied:
        assert not set(ids_of(row)) & set(deny)
    for agent in (None, "popularity"):
        denied, _ = fitted.recommend(ALL_USERS, k=10, agent=agent, deny_items=ITEMS_A)
        for row in denied:
            assert not set(ids_of(row)) & set(int(i) for i in ITEMS_A)


def test_allow_and_deny_together(fitted):
    allow = [int(i) for i in ITEMS_B[:5]]
    ids, _ = fitted.recommend(USERS_A[:3], k=5, items=allow, deny_items=allow[:2], include_seen=True)
    for row in ids:
        assert set(ids_of(row)) == set(allow[2:])


def test_agents_by_name(fitted):
    names = [name for name, _ in fitted.agents]
    for name in names:
        ids, scores = fitted.recommend(ALL_USERS, k=3, agent=name)
        assert ids.shape == (len(ALL_USERS), 3)
    with pytest.raises(chorus.NotFound):
        fitted.recommend(ALL_USERS, k=3, agent="no-such-agent")
    with pytest.raises(LookupError):
        fitted.recommend(int(USERS_A[0]), k=3, agent="")
    with pytest.raises(TypeError):
        fitted.recommend(int(USERS_A[0]), k=3, agent=1)


@pytest.mark.parametrize("k", [0, N_ITEMS + 1, 10**6, -1])
def test_bad_k(fitted, k):
    with pytest.raises(chorus.InvalidArgument):
        fitted.recommend(ALL_USERS, k=k)
    with pytest.raises(chorus.InvalidArgument):
        fitted.similar_items(ITEMS_A, k=k)


def test_k_must_be_an_int(fitted):
    with pytest.raises(TypeError):
        fitted.recommend(1, k=2.0)


def test_empty_query_lists_are_invalid(fitted):
    with pytest.raises(chorus.InvalidArgument):
        fitted.recommend([], k=3)
    with pytest.raises(chorus.InvalidArgument):
        fitted.recommend(np.array([], dtype=np.int64), k=3, return_details=True)
    with pytest.raises(chorus.InvalidArgument):
        fitted.similar_items([], k=3)


def test_empty_allow_list_allows_nothing(fitted):
    ids, scores = fitted.recommend(ALL_USERS[:3], k=3, items=[])
    assert np.all(ids == NO_ITEM) and np.all(np.isneginf(scores))
    ids, scores = fitted.similar_items(ITEMS_A[:2], k=3, items=[])
    assert np.all(ids == NO_ITEM) and np.all(np.isneginf(scores))


def test_empty_deny_list_denies_nothing(fitted):
    np.testing.assert_array_equal(fitted.recommend(ALL_USERS, k=4, deny_items=[])[0],
                                  fitted.recommend(ALL_USERS, k=4)[0])


def test_batch_equals_single(fitted):
    batch_ids, batch_scores = fitted.recommend(ALL_USERS, k=5)
    for row, u in enumerate(ALL_USERS):
        ids, scores = fitted.recommend(int(u), k=5)
        np.testing.assert_array_equal(ids, batch_ids[row])
        np.testing.assert_array_equal(scores, batch_scores[row])
    # order and duplicates in the batch do not matter
    users = np.array([USERS_B[3], USERS_A[0], USERS_B[3]])
    ids, _ = fitted.recommend(users, k=5)
    np.testing.assert_array_equal(ids[0], ids[2])
    np.testing.assert_array_equal(ids[1], batch_ids[0])


def test_unknown_users_are_flagged_cold(fitted):
    users = [int(USERS_A[0]), UNKNOWN_USER, int(USERS_B[0])]
    rec = fitted.recommend(users, k=5, return_details=True)
    assert isinstance(rec, chorus.Recommendations)
    assert rec.cold.dtype == bool
    assert rec.cold.tolist() == [False, True, False]
    # A cold user gets the popularity agent's items, not an error.
    pop_ids, pop_scores = fitted.recommend(UNKNOWN_USER, k=5, agent="popularity")
    np.testing.assert_array_equal(rec.ids[1], pop_ids)
    assert len(ids_of(rec.ids[1])) == 5
    single = fitted.recommend(UNKNOWN_USER, k=5, return_details=True)
    assert single.cold is True
    assert single.ids.shape == (5,)
    # Without details the cold user is served all the same.
    ids, _ = fitted.recommend(UNKNOWN_USER, k=5)
    np.testing.assert_array_equal(ids, pop_ids)


def test_cold_user_respects_allow_and_deny(fitted):
    allow = [int(i) for i in ITEMS_A[:4]]
    ids, _ = fitted.recommend(UNKNOWN_USER, k=4, items=allow, deny_items=allow[:1])
    assert set(ids_of(ids)) == set(allow[1:])


def test_details_shares(fitted):
    agents = fitted.agents
    users = np.concatenate([ALL_USERS, [UNKNOWN_USER]])
    rec = fitted.recommend(users, k=N_ITEMS, return_details=True)
    assert rec.shares.shape == (len(users), N_ITEMS, len(agents))
    assert rec.shares.dtype == np.float32
    plain_ids, plain_scores = fitted.recommend(users, k=N_ITEMS)
    np.testing.assert_array_equal(rec.ids, plain_ids)
    np.testing.assert_array_equal(rec.scores, plain_scores)
    filled = rec.ids != NO_ITEM
    np.testing.assert_allclose(rec.shares.sum(axis=2)[filled], 1.0, atol=1e-4)
    assert np.all(rec.shares[~filled] == 0)
    # the cold user's items come from the popularity agent (index 0) alone
    cold_row = rec.shares[-1][filled[-1]]
    np.testing.assert_allclose(cold_row[:, 0], 1.0, atol=1e-5)


def test_concurrent_recommend(fitted):
    expected = fitted.recommend(ALL_USERS, k=5)
    failures = []

    def work():
        try:
            for _ in range(20):
                got = fitted.recommend(ALL_USERS, k=5)
                if not (np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])):
                    failures.append("mismatch")
        except Exception as e:  # pragma: no cover
            failures.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# ---- popularity: known answers --------------------------------------------------------------------


def test_popularity_known_answer():
    # item 50 has 5 users, 40 has 4, 30 has 3, 20 has 2, 10 has 1.
    users, items = [], []
    for item, count in ((50, 5), (40, 4), (30, 3), (20, 2), (10, 1)):
        for u in range(count):
            users.append(u + 1)
            items.append(item)
    with chorus.Engine(popularity_half_life_seconds=-1) as engine:
        engine.add_interactions(users, items, timestamps=[T for T in range(len(users))])
        engine.fit(**FIT)
        ids, _ = engine.recommend(UNKNOWN_USER, k=3, agent="popularity")
        assert ids.tolist() == [50, 40, 30]
        ids, _ = engine.recommend(UNKNOWN_USER, k=3)  # cold: popularity alone
        assert ids.tolist() == [50, 40, 30]


def test_popularity_time_decay():
    # item 1: 10 interactions a year ago; item 2: 3 interactions yesterday.
    now = 1_750_000_000
    day = 86_400
    users = list(range(10)) + [20, 21, 22]
    items = [1] * 10 + [2] * 3
    ts = [now - 365 * day] * 10 + [now - day] * 3
    # more users and items so ALS has something to fit
    users += [30, 31, 30, 31]
    items += [3, 4, 4, 3]
    ts += [now - 400 * day] * 4
    with chorus.Engine(popularity_half_life_seconds=30 * day) as decayed, \
            chorus.Engine(popularity_half_life_seconds=-1) as plain:
        for engine in (decayed, plain):
            engine.add_interactions(users, items, timestamps=ts)
            engine.fit(**FIT)
        assert decayed.recommend(UNKNOWN_USER, k=1, agent="popularity")[0].tolist() == [2]
        assert plain.recommend(UNKNOWN_USER, k=1, agent="popularity")[0].tolist() == [1]


# ---- similar_items --------------------------------------------------------------------------------


def test_similar_items_known_answer(fitted):
    ids, scores = fitted.similar_items(ITEMS_A, k=5)
    assert ids.shape == (len(ITEMS_A), 5) and ids.dtype == np.int64 and scores.dtype == np.float32
    for item, row, srow in zip(ITEMS_A, ids, scores):
        assert int(item) not in ids_of(row)
        assert set(ids_of(row)) <= set(int(i) for i in ITEMS_A)
        assert np.all(np.diff(srow) <= 0)
        assert np.all(srow <= 1.0 + 1e-5) and np.all(srow >= -1.0 - 1e-5)  # cosines
    ids, _ = fitted.similar_items(ITEMS_B, k=5)
    for row in ids:
        assert set(ids_of(row)) <= set(int(i) for i in ITEMS_B)


def test_similar_items_scalar_and_batch_equals_single(fitted):
    batch_ids, batch_scores = fitted.similar_items(ITEMS_B, k=4)
    for row, item in enumerate(ITEMS_B):
        ids, scores = fitted.similar_items(int(item), k=4)
        assert ids.shape == (4,)
        np.testing.assert_array_equal(ids, batch_ids[row])
        np.testing.assert_array_equal(scores, batch_scores[row])


def test_similar_items_all_others(fitted):
    ids, scores = fitted.similar_items(int(ITEMS_A[0]), k=N_ITEMS)
    assert len(ids_of(ids)) == N_ITEMS - 1
    assert ids[-1] == NO_ITEM and np.isneginf(scores[-1])


def test_similar_items_allow_deny(fitted):
    allow = [int(i) for i in ITEMS_B[:3]] + [int(ITEMS_A[1])]
    ids, _ = fitted.similar_items(int(ITEMS_A[0]), k=5, items=allow, deny_items=[int(ITEMS_B[0])])
    got = ids_of(ids)
    assert set(got) == set(allow) - {int(ITEMS_B[0])}
    assert got[0] == int(ITEMS_A[1])  # the in-group item ranks first


# ---- similar_users --------------------------------------------------------------------------------


def test_similar_users_known_answer(fitted):
    ids, scores = fitted.similar_users(USERS_A, k=5)
    assert ids.shape == (len(USERS_A), 5) and ids.dtype == np.int64 and scores.dtype == np.float32
    cluster_a = set(int(u) for u in USERS_A)
    for user, row, srow in zip(USERS_A, ids, scores):
        assert int(user) not in row and set(int(u) for u in row) <= cluster_a
        assert np.all(np.diff(srow) <= 0) and np.all(srow <= 1.0 + 1e-5) and np.all(srow >= -1.0 - 1e-5)
    ids, _ = fitted.similar_users(USERS_B, k=5)
    assert set(ids.ravel().tolist()) <= set(int(u) for u in USERS_B)


def test_similar_users_scalar_batch_all_others_and_lists(fitted):
    batch_ids, batch_scores = fitted.similar_users(USERS_B[:3], k=4)
    ids, scores = fitted.similar_users(int(USERS_B[1]), k=4)
    assert ids.shape == (4,)
    np.testing.assert_array_equal(ids, batch_ids[1])
    np.testing.assert_array_equal(scores, batch_scores[1])
    n_users = len(ALL_USERS)
    ids, scores = fitted.similar_users(int(USERS_A[0]), k=n_users)
    assert np.isneginf(scores[-1]) and np.all(np.isfinite(scores[:-1]))
    assert sorted(ids[:-1].tolist()) == sorted(int(u) for u in ALL_USERS if u != USERS_A[0])
    assert set(ids[:len(USERS_A) - 1].tolist()) == set(int(u) for u in USERS_A[1:])  # own cluster first
    allow = [int(USERS_B[0]), int(USERS_A[3]), int(USERS_A[4])]
    ids, _ = fitted.similar_users(int(USERS_A[0]), k=3, users=allow, deny_users=[int(USERS_A[4]), 424242])
    assert ids[0] == USERS_A[3] and ids[1] == USERS_B[0] and ids[2] == NO_ITEM
    ids, scores = fitted.similar_users(int(USERS_A[0]), k=2, users=[])
    assert np.all(np.isneginf(scores))


@pytest.mark.parametrize("k", [0, 10**6, -1])
def test_similar_users_errors(fitted, k):
    with pytest.raises(chorus.InvalidArgument):
        fitted.similar_users(USERS_A, k=k)
    with pytest.raises(chorus.NotFound):
        fitted.similar_users(424242, k=3)
    with pytest.raises(chorus.InvalidArgument):
        fitted.similar_users([], k=3)


def test_similar_users_needs_a_factor_agent(data):
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        with pytest.raises(chorus.NotFitted):
            engine.similar_users(int(USERS_A[0]), k=3)
        engine.fit(agents=["itemknn"], **FIT)
        with pytest.raises(chorus.InvalidArgument, match="als or bpr"):
            engine.similar_users(int(USERS_A[0]), k=3)


def test_similar_items_unknown_item(fitted):
    with pytest.raises(chorus.NotFound):
        fitted.similar_items(424242, k=3)
    with pytest.raises(LookupError):
        fitted.similar_items([int(ITEMS_A[0]), 424242], k=3)


# ---- agents and stats -----------------------------------------------------------------------------


def test_agents(engine, fitted):
    before = engine.agents
    assert before and before[0][0] == "popularity"
    assert all(isinstance(n, str) and isinstance(w, float) for n, w in before)
    assert all(w == 0.0 for _, w in before)
    after = fitted.agents
    names = [n for n, _ in after]
    assert names == [n for n, _ in before]
    assert "als" in names
    assert len(set(names)) == len(names)
    weights = np.array([w for _, w in after])
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0


def test_stats(engine, fitted, data):
    keys = {"fitted", "n_users", "n_items", "n_interactions", "n_model_users", "n_model_items",
            "model_bytes", "popularity_half_life_seconds", "n_item_texts", "n_user_texts", "n_item_facts",
            "allocator_allocated_bytes", "allocator_resident_bytes"}
    empty = engine.stats()
    assert set(empty) == keys
    assert empty["fitted"] is False
    assert empty["n_model_users"] == empty["n_model_items"] == empty["model_bytes"] == 0
    s = fitted.stats()
    assert s["fitted"] is True
    assert s["n_users"] == s["n_model_users"] == len(ALL_USERS)
    assert s["n_items"] == s["n_model_items"] == N_ITEMS
    assert s["n_interactions"] == len(data.users)
    assert s["model_bytes"] > 0
    # The default engine lets the fit choose the half-life among its candidates.
    assert s["popularity_half_life_seconds"] in (-1, 7 * 86400, 30 * 86400, 91 * 86400, 365 * 86400)
    assert empty["popularity_half_life_seconds"] == 0
    assert s["allocator_allocated_bytes"] > 0 and s["allocator_resident_bytes"] > 0
    assert all(type(v) is int for k, v in s.items() if k != "fitted")
    assert fitted.fitted is True


def test_data_added_after_fit_waits_for_the_next_fit(data):
    with build_engine(data) as engine:
        engine.add_interactions([UNKNOWN_USER] * 3, ITEMS_B[:3])
        s = engine.stats()
        assert s["n_users"] == len(ALL_USERS) + 1
        assert s["n_model_users"] == len(ALL_USERS)
        assert engine.recommend(UNKNOWN_USER, k=3, return_details=True).cold is True
        engine.fit(**FIT)
        rec = engine.recommend(UNKNOWN_USER, k=3, return_details=True, agent="als")
        assert rec.cold is False
        assert set(ids_of(rec.ids)) <= set(int(i) for i in ITEMS_B)

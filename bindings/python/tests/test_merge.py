"""Sharded training through the binding: Engine.merge (federated averaging of engines fitted on
disjoint users), fit(start_from=) for the next round, the privacy options and privacy_spent, and
every bad input a merge must refuse naming the cause (C level included)."""

import ctypes
import math

import numpy as np
import pytest

import chorus
from chorus import _capi

from conftest import FIT

AGENTS = ["als", "bpr", "itemknn", "session"]
PARAMS = dict(FIT, agents=AGENTS, bpr_epochs=20)


def _engine(data, mask, fit=True, **fit_params):
    e = chorus.Engine()
    e.add_interactions(data.users[mask], data.items[mask], data.weights[mask], data.timestamps[mask])
    if fit:
        e.fit(**{**PARAMS, **fit_params})
    return e


@pytest.fixture(scope="module")
def shards(data):
    """Two user-disjoint shards: users with an even id, users with an odd one (both clusters each)."""
    even = data.users % 2 == 0
    a, b = _engine(data, even), _engine(data, ~even)
    yield a, b
    a.close()
    b.close()


def test_merge_holds_the_union_and_serves_saves_loads(shards, data, tmp_path):
    a, b = shards
    with chorus.Engine.merge([a, b]) as merged:
        s = merged.stats()
        assert s["fitted"] and s["n_users"] == len(np.unique(data.users)) and s["n_items"] == len(np.unique(data.items))
        assert s["n_interactions"] == a.stats()["n_interactions"] + b.stats()["n_interactions"]
        assert [n for n, _ in merged.agents] == [n for n, _ in a.agents]
        assert math.isclose(sum(w for _, w in merged.agents), 1.0, rel_tol=1e-5)
        users = np.unique(data.users)
        recs, _ = merged.recommend(users[:10], k=3)
        for u, items in zip(users[:10], recs):
            assert sum(int(i) in data.group[int(u)] for i in items) >= 2
        assert merged.privacy_spent is None
        merged.save(tmp_path / "m.chorus")
        with chorus.Engine.load(tmp_path / "m.chorus") as again:
            np.testing.assert_array_equal(again.recommend(users[:10], k=3)[0], recs)


def test_one_shard_is_a_copy(shards, data):
    a, _ = shards
    users = np.unique(data.users[data.users % 2 == 0])
    with chorus.Engine.merge([a]) as copy:
        np.testing.assert_array_equal(copy.recommend(users, k=3)[0], a.recommend(users, k=3)[0])


def test_a_round_fits_each_shard_from_the_merged_engine(data):
    even = data.users % 2 == 0
    a, b = _engine(data, even), _engine(data, ~even)
    with a, b, chorus.Engine.merge([a, b]) as merged:
        for e in (a, b):
            e.fit(**PARAMS, start_from=merged)
        with chorus.Engine.merge([a, b]) as second:
            assert second.stats()["n_model_users"] == merged.stats()["n_model_users"]
        with pytest.raises(chorus.InvalidArgument, match="factors"):
            a.fit(**{**PARAMS, "factors": 3}, start_from=merged)
        with chorus.Engine() as empty, pytest.raises(chorus.NotFitted):
            a.fit(**PARAMS, start_from=empty)
        with pytest.raises(TypeError):
            a.fit(**PARAMS, start_from="merged.chorus")


def test_private_merge_reports_epsilon_and_composes(data):
    even = data.users % 2 == 0
    a, b = _engine(data, even), _engine(data, ~even)
    with a, b:
        with chorus.Engine.merge([a, b], noise_multiplier=1.0, clip_norm=1.0) as m1:
            spent = m1.privacy_spent
            assert spent is not None and spent.rounds == 1 and spent.delta == 1e-5
            # σ = 1, δ = 1e-5: ε = min over orders α of α/2 + ln(1e5)/(α - 1) = 5.2986 (α = 5.8).
            assert abs(spent.epsilon - 5.2986) < 1e-3
            for e in (a, b):
                e.fit(**PARAMS, start_from=m1)
            with chorus.Engine.merge([a, b], noise_multiplier=1.0, clip_norm=1.0, delta=1e-6) as m2:
                two = m2.privacy_spent
                assert two.rounds == 2 and two.delta == 1e-6 and two.epsilon > spent.epsilon
            with chorus.Engine.merge([a, b]) as m3:  # a round without noise voids the guarantee
                assert m3.privacy_spent.epsilon == math.inf
    with chorus.Engine() as e, pytest.raises(chorus.NotFitted):
        e.privacy_spent


def test_bad_merges_name_the_cause(shards, data):
    a, b = shards
    with pytest.raises(chorus.InvalidArgument, match="at least one shard"):
        chorus.Engine.merge([])
    with pytest.raises(chorus.InvalidArgument, match="same engine"):
        chorus.Engine.merge([a, a])
    with pytest.raises(TypeError):
        chorus.Engine.merge([a, None])
    with chorus.Engine() as empty, pytest.raises(chorus.NotFitted, match=r"shards\[1\] is not fitted"):
        chorus.Engine.merge([a, empty])
    with _engine(data, data.users % 2 == 0, fit=False) as unfitted, pytest.raises(chorus.NotFitted):
        chorus.Engine.merge([unfitted, b])
    with _engine(data, np.ones(len(data.users), bool)) as whole:
        with pytest.raises(chorus.InvalidArgument, match="share user id"):
            chorus.Engine.merge([a, whole])
    with _engine(data, data.users % 2 == 1, factors=3) as wider, pytest.raises(chorus.InvalidArgument, match="factors"):
        chorus.Engine.merge([a, wider])
    with _engine(data, data.users % 2 == 1, agents=["als"]) as fewer, pytest.raises(chorus.InvalidArgument, match="same agents"):
        chorus.Engine.merge([a, fewer])
    with pytest.raises(chorus.InvalidArgument, match="clip_norm"):
        chorus.Engine.merge([a, b], noise_multiplier=1.0)
    with pytest.raises(chorus.InvalidArgument, match="clip_norm"):
        chorus.Engine.merge([a, b], clip_norm=float("nan"))
    with pytest.raises(chorus.InvalidArgument, match="delta"):
        chorus.Engine.merge([a, b], noise_multiplier=1.0, clip_norm=1.0, delta=2.0)
    closed = _engine(data, data.users % 2 == 1, fit=False)
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        chorus.Engine.merge([a, closed])
    # String ids: codes differ between engines, so a merge by id would be silently wrong.
    with chorus.Engine() as s1:
        s1.add_interactions(["u1", "u2", "u3"], ["i1", "i2", "i1"])
        s1.fit(**PARAMS)
        with pytest.raises(chorus.InvalidArgument, match="string user ids"):
            chorus.Engine.merge([s1, b])
        with pytest.raises(chorus.InvalidArgument, match="string"):
            b.fit(**PARAMS, start_from=s1)


def test_capi_merge_errors(shards):
    a, b = shards
    out = _capi.chorus_engine_p()
    pair = (_capi.chorus_engine_p * 2)(a._handle, b._handle)
    with_null = (_capi.chorus_engine_p * 2)(a._handle, None)
    assert _capi.chorus_engine_merge(pair, 2, None, None) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_merge(None, 2, None, ctypes.byref(out)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_merge(pair, 0, None, ctypes.byref(out)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_merge(with_null, 2, None, ctypes.byref(out)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert b"shards[1] is NULL" in _capi.chorus_last_error()
    assert not out
    params = _capi.chorus_merge_params()
    assert _capi.chorus_merge_params_init(ctypes.byref(params)) == _capi.CHORUS_OK
    assert params.struct_size == ctypes.sizeof(params) and params.delta == 1e-5 and params.seed == 42
    assert _capi.chorus_merge_params_init_sized(ctypes.byref(params), 4) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_merge_params_init_sized(ctypes.byref(params), ctypes.sizeof(params)) == _capi.CHORUS_OK
    params.clip_norm = float("inf")
    assert _capi.chorus_engine_merge(pair, 2, ctypes.byref(params), ctypes.byref(out)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    # A caller whose struct ends before clip_norm: the bad value past its size is never read.
    params.struct_size = _capi.chorus_merge_params.clip_norm.offset
    assert _capi.chorus_engine_merge(pair, 2, ctypes.byref(params), ctypes.byref(out)) == _capi.CHORUS_OK
    _capi.chorus_engine_free(out)
    eps, delta, rounds = ctypes.c_double(), ctypes.c_double(), ctypes.c_uint32()
    assert _capi.chorus_engine_privacy_spent(a._handle, None, ctypes.byref(delta), ctypes.byref(rounds)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_privacy_spent(a._handle, ctypes.byref(eps), ctypes.byref(delta), ctypes.byref(rounds)) == _capi.CHORUS_OK
    assert rounds.value == 0 and math.isinf(eps.value) and delta.value == 0
    assert _capi.chorus_engine_fit_from(a._handle, None, None) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_fit_from(None, None, b._handle) == _capi.CHORUS_ERR_INVALID_ARGUMENT


def test_save_without_interactions_serves_but_refuses_to_fit(shards, data, tmp_path):
    a, b = shards
    path = tmp_path / "withheld.chorus"
    a.save(path, interactions=False)
    users = np.unique(data.users[data.users % 2 == 0])
    with chorus.Engine.load(path) as loaded:
        assert loaded.stats()["n_interactions"] == 0 and loaded.fitted
        np.testing.assert_array_equal(loaded.recommend(users, k=3)[0], a.recommend(users, k=3)[0])
        with pytest.raises(chorus.InvalidArgument, match="without its interactions"):
            loaded.fit(**PARAMS)
        with pytest.raises(chorus.InvalidArgument, match="without its interactions"):
            chorus.Engine.merge([loaded, b])
        with _engine(data, data.users % 2 == 1, fit=False) as shard:
            shard.fit(**PARAMS, start_from=loaded)  # a start needs no interactions
        loaded.save(tmp_path / "again.chorus")
        with chorus.Engine.load(tmp_path / "again.chorus") as again:
            assert again.stats()["n_interactions"] == 0
    with chorus.Engine() as empty, pytest.raises(chorus.InvalidArgument, match="fit it first"):
        empty.save(tmp_path / "x.chorus", interactions=False)
    assert _capi.chorus_engine_save_ex(a._handle, str(path).encode(), 2) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_save_ex(a._handle, None, 0) == _capi.CHORUS_ERR_INVALID_ARGUMENT

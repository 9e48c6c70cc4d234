"""ABI hygiene seen from ctypes: struct sizes of older headers, counted handles (tokens never
reissued, frees that check the kind), explain in one call, recommend with the agents' names from
the model that served, and the strings rule (limits at their edges, invalid UTF-8 and NUL refused)."""

import ctypes

import numpy as np

import pytest

import chorus
from chorus import _capi

from conftest import FIT, USERS_A, make_clusters


@pytest.fixture
def loaded_engine():
    data = make_clusters()
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        yield engine


def _fit_params(**fields):
    params = _capi.chorus_fit_params()
    assert _capi.chorus_fit_params_init(ctypes.byref(params)) == _capi.CHORUS_OK
    for name in ("factors", "iterations", "threads", "seed"):
        setattr(params, name, FIT[name])
    for name, value in fields.items():
        setattr(params, name, value)
    return params


# ---- struct_size ----------------------------------------------------------------------------------


def test_a_shorter_input_struct_takes_defaults_for_what_it_lacks(loaded_engine):
    calls = []

    @_capi.chorus_progress_fn
    def cancel(_stage, _fraction, _user):
        calls.append(1)
        return 1

    params = _fit_params(progress=cancel)
    assert _capi.chorus_engine_fit(loaded_engine._handle, ctypes.byref(params)) == _capi.CHORUS_ERR_CANCELLED
    assert calls
    calls.clear()
    # A header without the progress fields: the callback is never seen.
    params.struct_size = _capi.chorus_fit_params.progress.offset
    assert _capi.chorus_engine_fit(loaded_engine._handle, ctypes.byref(params)) == _capi.CHORUS_OK
    assert not calls
    # An invalid validation_fraction past the caller's size is never read either.
    params = _fit_params(validation_fraction=0.9)
    assert _capi.chorus_engine_fit(loaded_engine._handle, ctypes.byref(params)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    params.struct_size = _capi.chorus_fit_params.validation_fraction.offset
    assert _capi.chorus_engine_fit(loaded_engine._handle, ctypes.byref(params)) == _capi.CHORUS_OK


@pytest.mark.parametrize("size", [0, 4, 7, ctypes.sizeof(_capi.chorus_fit_params) + 8])
def test_input_struct_size_bounds(loaded_engine, size):
    params = _fit_params(struct_size=size)
    assert _capi.chorus_engine_fit(loaded_engine._handle, ctypes.byref(params)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert b"struct_size" in _capi.chorus_last_error()


def test_output_struct_shorter_than_its_first_layout_is_refused(loaded_engine):
    stats = _capi.chorus_engine_stats()
    assert _capi.chorus_engine_stats_init(ctypes.byref(stats)) == _capi.CHORUS_OK
    stats.struct_size = ctypes.sizeof(stats) - 8
    assert _capi.chorus_engine_get_stats(loaded_engine._handle, ctypes.byref(stats)) == _capi.CHORUS_ERR_INVALID_ARGUMENT


# ---- counted handles ------------------------------------------------------------------------------


def test_two_handles_to_the_engines_graph_are_freed_independently():
    with chorus.Engine() as engine:
        first, second = engine.knowledge_graph, engine.knowledge_graph
        assert ctypes.addressof(first._handle.contents) == ctypes.addressof(second._handle.contents)
        first.close()
        assert second.add_triples(["x"], ["likes"], ["y"]) == 1  # still live
        assert second.counts["triples"] == 1
        raw = second._handle
        second.close()
        assert _capi.chorus_kg_counts(raw, None, None, None) == _capi.CHORUS_ERR_INVALID_ARGUMENT
        _capi.chorus_kg_free(raw)  # a free beyond the count: a no-op
        with engine.knowledge_graph as again:  # the graph lives on in the engine
            assert again.counts["triples"] == 1


# ---- explain in one call --------------------------------------------------------------------------


def _count_calls(monkeypatch, name):
    calls = []
    real = getattr(_capi, name)

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(_capi, name, counting)
    return calls


def test_explain_calls_the_library_once(monkeypatch, fitted):
    ids, scores = fitted.recommend(int(USERS_A[0]), k=3)
    calls = _count_calls(monkeypatch, "chorus_engine_explain")
    agent_calls = _count_calls(monkeypatch, "chorus_engine_agent_info")
    x = fitted.explain(int(USERS_A[0]), int(ids[0]))
    assert len(calls) == 1 and not agent_calls
    assert list(x.shares) == [name for name, _ in fitted.agents]
    assert abs(sum(x.shares.values()) - 1) < 1e-4
    assert abs(x.score - float(scores[0])) < 1e-5
    assert "is recommended" in x.sentence


def test_explain_reports_agent_count_when_the_shares_buffer_is_too_small(fitted):
    ids, _ = fitted.recommend(int(USERS_A[0]), k=1)
    out = _capi.chorus_explanation()
    assert _capi.chorus_explanation_init_sized(ctypes.byref(out), ctypes.sizeof(out)) == _capi.CHORUS_OK
    shares = (ctypes.c_float * 1)(-7.0)
    status = _capi.chorus_engine_explain(fitted._handle, int(USERS_A[0]), int(ids[0]), None, ctypes.byref(out),
                                         shares, 1, None, 0, None)
    assert status == _capi.CHORUS_ERR_BUFFER_TOO_SMALL
    assert out.agent_count == len(fitted.agents) > 1
    assert [out.agent_names[i].decode() for i in range(out.agent_count)] == [n for n, _ in fitted.agents]
    assert "is recommended" in ctypes.string_at(out.sentence, out.sentence_length).decode()
    assert shares[0] == -7.0  # not written


def test_explain_with_the_0_1_layout_gets_neither_sentence_nor_agents(fitted):
    ids, scores = fitted.recommend(int(USERS_A[0]), k=1)
    out = _capi.chorus_explanation()
    ctypes.memset(ctypes.byref(out), 0xAB, ctypes.sizeof(out))
    v1 = _capi.chorus_explanation.sentence.offset
    assert _capi.chorus_explanation_init(ctypes.byref(out)) == _capi.CHORUS_OK  # the function: 0.1.0 layout
    assert out.struct_size == v1
    status = _capi.chorus_engine_explain(fitted._handle, int(USERS_A[0]), int(ids[0]), None, ctypes.byref(out),
                                         None, 0, None, 0, None)
    assert status == _capi.CHORUS_OK
    assert abs(out.score - float(scores[0])) < 1e-5
    tail = ctypes.string_at(ctypes.addressof(out) + v1, ctypes.sizeof(out) - v1)
    assert tail == b"\xab" * (ctypes.sizeof(out) - v1)


# ---- recommend with details in one call -----------------------------------------------------------


def test_details_name_the_agents_of_the_serving_model(monkeypatch, fitted):
    users = [int(USERS_A[0]), int(USERS_A[1])]
    details_calls = _count_calls(monkeypatch, "chorus_engine_recommend_details")
    plain_calls = _count_calls(monkeypatch, "chorus_engine_recommend")
    rec = fitted.recommend(users, k=4, return_details=True)
    assert len(details_calls) == 1 and not plain_calls
    names = [n for n, _ in fitted.agents]
    assert rec.agents == tuple(names)
    assert rec.shares.shape == (2, 4, len(names))
    np.testing.assert_allclose(rec.shares.sum(axis=2), 1.0, atol=1e-4)
    single = fitted.recommend(users[0], k=4, return_details=True)
    assert single.agents == rec.agents and single.shares.shape == (4, len(names))


def test_details_retry_only_when_the_serving_model_has_more_agents(monkeypatch, fitted):
    names = tuple(n for n, _ in fitted.agents)
    # As if a fit had added agents between sizing the buffer and the call: the count is too low.
    monkeypatch.setattr(chorus.Engine, "_agent_count", staticmethod(lambda handle: 1))
    calls = _count_calls(monkeypatch, "chorus_engine_recommend_details")
    rec = fitted.recommend(int(USERS_A[0]), k=3, return_details=True)
    assert len(calls) == 2  # BUFFER_TOO_SMALL with the real count, then the retry
    assert rec.agents == names and rec.shares.shape == (3, len(names))
    np.testing.assert_allclose(rec.shares.sum(axis=1), 1.0, atol=1e-4)


def test_recommend_details_capi_errors(fitted):
    users = (ctypes.c_int64 * 1)(int(USERS_A[0]))
    ids, scores = (ctypes.c_int64 * 3)(), (ctypes.c_float * 3)()
    names, count = ctypes.POINTER(ctypes.c_char_p)(), ctypes.c_size_t(99)
    shares = (ctypes.c_float * 3)()
    status = _capi.chorus_engine_recommend_details(fitted._handle, users, 1, 3, None, ids, scores, 3, shares, 3, None,
                                                   ctypes.byref(names), ctypes.byref(count))
    assert status == _capi.CHORUS_ERR_BUFFER_TOO_SMALL
    assert count.value == len(fitted.agents) and names[0] == b"popularity"
    status = _capi.chorus_engine_recommend_details(fitted._handle, users, 1, 3, None, ids, scores, 3, None, 0, None,
                                                   None, ctypes.byref(count))
    assert status == _capi.CHORUS_ERR_INVALID_ARGUMENT
    with chorus.Engine() as unfitted:
        status = _capi.chorus_engine_recommend_details(unfitted._handle, users, 1, 3, None, ids, scores, 3, None, 0, None,
                                                       ctypes.byref(names), ctypes.byref(count))
        assert status == _capi.CHORUS_ERR_NOT_FITTED
        assert count.value == 0 and not names


# ---- extremes of the entry points this version added or changed --------------------------------


def test_int64_limits_as_ids_and_a_closed_engine(fitted):
    limits = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max], dtype=np.int64)
    rec = fitted.recommend(limits, k=3, return_details=True)
    assert rec.ids.shape == (2, 3) and bool(rec.cold.all())
    assert rec.shares.shape == (2, 3, len(rec.agents))
    assert fitted.explain(int(limits[0]), int(rec.ids[0, 0])).sentence
    with pytest.raises(chorus.NotFound):
        fitted.explain(int(USERS_A[0]), int(limits[1]))
    closed = chorus.Engine()
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        closed.recommend([1], k=1, return_details=True)
    with pytest.raises(ValueError, match="closed"):
        closed.explain(1, 1)


def test_item_minus_one_is_refused_and_nat_timestamps_fit(data):
    with chorus.Engine(hashing_encoder=True) as engine:
        with pytest.raises(chorus.InvalidArgument, match="CHORUS_NO_ITEM"):
            engine.add_interactions([1, 2], [5, -1])
        with pytest.raises(chorus.InvalidArgument, match="CHORUS_NO_ITEM"):
            engine.set_item_texts([-1], ["a film"])
        with pytest.raises(chorus.InvalidArgument, match="CHORUS_NO_ITEM"):
            engine.add_item_facts([-1], ["genre"], ["drama"])
        assert engine.stats()["n_interactions"] == 0
        # numpy's NaT is int64 -2**63: next to int64 max the range is wider than int64.
        stamps = data.timestamps.copy()
        stamps[0] = np.datetime64("NaT").astype(np.int64)
        stamps[1] = np.iinfo(np.int64).max
        engine.add_interactions(data.users, data.items, data.weights, stamps)
        engine.fit(**FIT)
        ids, scores = engine.recommend(int(USERS_A[0]), k=3)
        assert np.isfinite(scores).all()


@pytest.mark.parametrize("weight", [1e21, 2e25, float(np.finfo(np.float32).max)])
def test_any_finite_weight_fits_serves_saves_and_loads(data, weight, tmp_path):
    # Float32's largest, twice for one pair (their sum passes it), with a large alpha: ALS solves such
    # rows in Double; before, the fit diverged to NaN and could not be saved.
    weights = data.weights.astype(np.float32).copy()
    weights[::7] = weight
    with chorus.Engine(hashing_encoder=True) as engine:
        engine.add_interactions(data.users, data.items, weights, data.timestamps)
        engine.add_interactions(data.users[:1], data.items[:1], np.float32([weight]))
        engine.fit(**{**FIT, "alpha": 1000.0})
        ids, scores = engine.recommend(int(USERS_A[0]), k=3)
        assert len(ids) == 3 and np.isfinite(scores).all()
        engine.save(tmp_path / "heavy.chorus")
        with chorus.Engine.load(tmp_path / "heavy.chorus") as loaded:
            assert list(loaded.recommend(int(USERS_A[0]), k=3)[0]) == list(ids)


def test_save_and_load_only_over_regular_files(fitted, tmp_path):
    import os
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(chorus.ChorusIOError, match="not a regular file"):
        chorus.Engine.load(fifo)                      # returns at once: no writer needed
    with pytest.raises(chorus.ChorusIOError, match="not a regular file"):
        chorus.Engine.load("/dev/zero")
    with pytest.raises(chorus.ChorusIOError, match="not a regular file"):
        fitted.save(fifo)
    assert fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_explanation_init_sized_refuses_sizes_it_cannot_fill():
    out = _capi.chorus_explanation()
    for size in (0, 8, ctypes.sizeof(out) + 1, 2**64 - 1):
        assert _capi.chorus_explanation_init_sized(ctypes.byref(out), size) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_explanation_init_sized(None, ctypes.sizeof(out)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_explanation_init_sized(ctypes.byref(out), ctypes.sizeof(out)) == _capi.CHORUS_OK
    assert out.struct_size == ctypes.sizeof(out) and out.because_item == _capi.CHORUS_NO_ITEM


# ---- strings, limits and handle tokens ------------------------------------------------------------


def test_text_and_name_limits_at_their_edges(tmp_path):
    with chorus.Engine(hashing_encoder=True) as engine:
        data = make_clusters()
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        item = int(data.items[0])
        with pytest.raises(chorus.InvalidArgument, match="longer than"):
            engine.set_item_texts([item], ["t" * (_capi.CHORUS_MAX_TEXT_BYTES + 1)])
        engine.set_item_texts([item], ["t" * _capi.CHORUS_MAX_TEXT_BYTES])
        with pytest.raises(chorus.InvalidArgument):
            engine.define_scenario("s" * (_capi.CHORUS_MAX_SCENARIO_NAME_BYTES + 1), "d")
        engine.define_scenario("s" * _capi.CHORUS_MAX_SCENARIO_NAME_BYTES, "d")
        with pytest.raises(chorus.InvalidArgument):
            engine.add_item_facts([item], ["genre"], ["e" * (_capi.CHORUS_MAX_NAME_BYTES + 1)])
        # A multi-byte character counts in bytes: 2048 'é' are 4096 bytes, one more is over.
        assert engine.add_item_facts([item], ["genre"], ["é" * (_capi.CHORUS_MAX_NAME_BYTES // 2)]) == 1
        with pytest.raises(chorus.InvalidArgument):
            engine.add_item_facts([item], ["genre"], ["é" * (_capi.CHORUS_MAX_NAME_BYTES // 2) + "x"])
        with pytest.raises(chorus.InvalidArgument):
            engine.save("p" * (_capi.CHORUS_MAX_PATH_BYTES + 1))
        engine.fit(**FIT)
        path = tmp_path / "limits.chorus"
        engine.save(path)
        with chorus.Engine.load(path) as loaded:
            assert loaded.stats()["n_item_texts"] == 1 and loaded.stats()["n_item_facts"] == 1
            ids, _ = loaded.recommend(int(data.users[0]), k=3, scenario="s" * _capi.CHORUS_MAX_SCENARIO_NAME_BYTES)
            assert len(ids) == 3


def test_invalid_utf8_is_refused_never_repaired():
    lone = "\ud800"  # a lone surrogate: encodable only as invalid UTF-8
    with chorus.Engine(hashing_encoder=True) as engine:
        engine.add_interactions([1, 2], [10, 11])
        for call in (lambda: engine.define_scenario("a" + lone, "d"),
                     lambda: engine.define_scenario("ok", lone),
                     lambda: engine.set_item_texts([10], [lone]),
                     lambda: engine.add_item_facts([10], [lone], ["x"]),
                     lambda: engine.add_interactions([1], [10], scenario=lone),
                     lambda: engine.knowledge_graph.add_triples([lone], ["r"], ["t"])):
            with pytest.raises(chorus.InvalidArgument, match="UTF-8"):
                call()
        with pytest.raises(chorus.NotFound):  # "ok" was refused with its invalid description
            engine.add_interactions([1], [10], scenario="ok")
        assert engine.stats()["n_item_facts"] == 0
        assert engine.stats()["n_interactions"] == 2


def test_nul_in_a_string_or_path_is_refused(tmp_path):
    with chorus.Engine(hashing_encoder=True) as engine:
        engine.add_interactions([1, 2], [10, 11])
        with pytest.raises(ValueError, match="NUL"):
            engine.save(str(tmp_path / "a\0b"))
        with pytest.raises(ValueError, match="NUL"):
            chorus.Engine.load(str(tmp_path / "a\0b"))
        with pytest.raises(ValueError, match="NUL"):
            engine.define_scenario("a\0b", "d")
        with pytest.raises(ValueError, match="NUL"):
            engine.knowledge_graph.add_triples(["a\0"], ["r"], ["t"])
        assert list(tmp_path.iterdir()) == []


def test_a_huge_half_life_is_no_decay_not_a_wrapped_number(data):
    with chorus.Engine(popularity_half_life_seconds=1e30, hashing_encoder=True) as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        engine.fit(**FIT)
        assert engine.stats()["popularity_half_life_seconds"] == 2**63 - 1


def test_freed_handles_stay_dead_and_frees_check_the_kind():
    freed = []
    for _ in range(50):
        e = chorus.Engine()
        freed.append(ctypes.cast(e._handle, ctypes.c_void_p).value)
        e.close()
    with chorus.Engine() as live:
        live_token = ctypes.cast(live._handle, ctypes.c_void_p).value
        assert live_token not in freed and len(set(freed)) == len(freed)
        stats = _capi.chorus_engine_stats()
        _capi.chorus_engine_stats_init(ctypes.byref(stats))
        for token in freed:
            handle = ctypes.cast(ctypes.c_void_p(token), _capi.chorus_engine_p)
            assert _capi.chorus_engine_get_stats(handle, ctypes.byref(stats)) == _capi.CHORUS_ERR_INVALID_ARGUMENT
        # chorus_kg_free given an engine frees nothing.
        _capi.chorus_kg_free(ctypes.cast(live._handle, _capi.chorus_kg_p))
        assert live.stats()["n_interactions"] == 0


# Every public call of a closed engine is refused before it reaches the library (a freed handle).
_CLOSED_CALLS = {
    "add_interactions": lambda e: e.add_interactions([1], [2]),
    "feedback": lambda e: e.feedback(1, 2, "click"),
    "define_scenario": lambda e: e.define_scenario("s", "d"),
    "fit": lambda e: e.fit(),
    "set_learning": lambda e: e.set_learning("linucb"),
    "slate_log": lambda e: e.slate_log(),
    "recommend": lambda e: e.recommend(1, k=1),
    "explain": lambda e: e.explain(1, 2),
    "similar_items": lambda e: e.similar_items(1, k=1),
    "similar_users": lambda e: e.similar_users(1, k=1),
    "set_item_texts": lambda e: e.set_item_texts([1], ["a"]),
    "set_user_texts": lambda e: e.set_user_texts([1], ["a"]),
    "knowledge_graph": lambda e: e.knowledge_graph(),
    "add_item_facts": lambda e: e.add_item_facts([1], ["genre"], ["drama"]),
    "stats": lambda e: e.stats(),
    "save": lambda e: e.save("/nonexistent/never-written.chorus"),
}


@pytest.mark.parametrize("name", sorted(_CLOSED_CALLS))
def test_a_closed_engine_refuses_every_call(name):
    engine = chorus.Engine(hashing_encoder=True)
    engine.close()
    with pytest.raises(ValueError, match="closed"):
        _CLOSED_CALLS[name](engine)

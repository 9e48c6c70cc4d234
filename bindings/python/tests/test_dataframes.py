"""Data as users hold it: pandas DataFrames, SciPy sparse matrices, string ids kept in snapshots,
host metadata, and a clear exception (naming the column or argument) for every kind of bad input."""

import os
import re
import struct

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import chorus
from chorus import _capi
from chorus._ids import METADATA_KEYS, IdMap

from conftest import FIT, REPO_ROOT, USERS_A, USERS_B, make_clusters


def frame(data, *, strings=False, **rename):
    df = pd.DataFrame({"user_id": data.users, "item_id": data.items, "weight": data.weights,
                       "timestamp": pd.to_datetime(data.timestamps, unit="s")})
    if strings:
        df["user_id"] = "user-" + df["user_id"].astype(str)
        df["item_id"] = "item-" + df["item_id"].astype(str)
    return df.rename(columns=rename)


@pytest.fixture(scope="module")
def string_engine():
    data = make_clusters()
    engine = chorus.Engine()
    engine.add_interactions(frame(data, strings=True))
    engine.fit(**FIT)
    yield engine, data
    engine.close()


# ---- DataFrames -----------------------------------------------------------------------------------


def test_a_dataframe_gives_what_the_arrays_give(data, fitted):
    with chorus.Engine() as e:
        e.add_interactions(frame(data))
        e.fit(**FIT)
        users = np.concatenate([USERS_A[:3], USERS_B[:3]])
        ids, scores = e.recommend(users, k=4)
        want_ids, want_scores = fitted.recommend(users, k=4)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5)


def test_column_names_weights_and_timestamps_are_optional(data):
    with chorus.Engine() as e:
        e.add_interactions(frame(data)[["user_id", "item_id"]])
        assert e.stats()["n_interactions"] == len(data.users)
    with chorus.Engine() as e:
        df = frame(data, user_id="u", item_id="i", weight="plays", timestamp="when")
        e.add_interactions(df, user_col="u", item_col="i", weight_col="plays", timestamp_col="when")
        assert e.stats()["n_interactions"] == len(data.users)


def test_missing_columns_are_named(engine, data):
    df = frame(data)
    with pytest.raises(chorus.InvalidArgument, match="no column 'item_id'"):
        engine.add_interactions(df.drop(columns="item_id"))
    with pytest.raises(chorus.InvalidArgument, match=r"no column 'plays' \(weight_col='plays'\)"):
        engine.add_interactions(df, weight_col="plays")
    with pytest.raises(chorus.InvalidArgument, match="no column 'who'"):
        engine.add_interactions(df, user_col="who")
    with pytest.raises(TypeError, match="alone"):
        engine.add_interactions(df, [1, 2])
    assert engine.stats()["n_interactions"] == 0


def test_nan_ids_and_weights_are_named_with_their_row(engine, data):
    df = frame(data).astype({"user_id": "float64"})
    df.loc[5, "user_id"] = np.nan
    with pytest.raises(chorus.InvalidArgument, match=r"column 'user_id' has a missing id \(NaN\) at row 5"):
        engine.add_interactions(df)
    df = frame(data, strings=True)
    df.loc[7, "item_id"] = None
    with pytest.raises(chorus.InvalidArgument, match=r"column 'item_id' has a missing id \((None|NaN)\) at row 7"):
        engine.add_interactions(df)
    df = frame(data)
    df.loc[3, "weight"] = np.nan
    with pytest.raises(chorus.InvalidArgument, match="column 'weight' has NaN at row 3"):
        engine.add_interactions(df)
    df = frame(data)
    df["timestamp"] = df["timestamp"].astype("datetime64[ns]")
    df.loc[2, "timestamp"] = pd.NaT
    with pytest.raises(chorus.InvalidArgument, match="column 'timestamp' has a missing timestamp"):
        engine.add_interactions(df)
    assert engine.stats()["n_interactions"] == 0


def test_nullable_pandas_columns(engine, data):
    df = frame(data).astype({"user_id": "Int64", "weight": "Float32"})
    df.loc[4, "weight"] = pd.NA
    with pytest.raises(chorus.InvalidArgument, match="column 'weight' has NaN at row 4"):
        engine.add_interactions(df)
    df = frame(data).astype({"user_id": "Int64", "weight": "Float32"})
    df.loc[6, "user_id"] = pd.NA
    with pytest.raises(chorus.InvalidArgument, match=r"column 'user_id' has a missing id \((<NA>|NaN)\) at row 6"):
        engine.add_interactions(df)
    assert engine.stats()["n_interactions"] == 0
    engine.add_interactions(frame(data).astype({"user_id": "Int64", "weight": "Float32"}))
    assert engine.stats()["n_interactions"] == len(data.users)


def test_mixed_id_types_in_one_column(engine, data):
    df = frame(data)
    df["item_id"] = df["item_id"].astype(object)
    df.loc[4, "item_id"] = "item-x"
    with pytest.raises(TypeError, match=r"column 'item_id' mixes id types: a str at row 4 and an int at row 0"):
        engine.add_interactions(df)
    with pytest.raises(TypeError, match="user_ids mixes id types"):
        engine.add_interactions(["a", 1], [1, 2])
    with pytest.raises(TypeError, match=r"user_ids must be integers or strings, got bool at position 1"):
        engine.add_interactions([1, True], [1, 2])
    with pytest.raises(TypeError, match="integers or strings, got dtype float64"):
        engine.add_interactions(frame(data).astype({"user_id": "float64"}))
    assert engine.stats()["n_interactions"] == 0


def test_ids_of_another_type_than_the_engines(engine):
    engine.add_interactions([1, 2], [10, 20])
    with pytest.raises(TypeError, match="user_ids are strings, but this engine's user ids are integers"):
        engine.add_interactions(["a"], [10])
    with pytest.raises(TypeError, match="user_ids are strings, but this engine's user ids are integers"):
        engine.recommend("a")
    with chorus.Engine() as e:
        e.add_interactions(["a", "b"], ["x", "y"])
        with pytest.raises(TypeError, match="item_ids are integers, but this engine's item ids are strings"):
            e.add_interactions(["a"], [3])


def test_numpy_strings_are_strings(engine):
    engine.add_interactions(list(np.array(["a", "b"])), np.array(["x", "y"]))
    assert engine._ids("user").encode_known([np.str_("b")], "u")[0] == 1
    assert type(engine._ids("user").decode(np.array([0]))[0]) is str


def test_a_failed_batch_records_no_string_id(engine):
    engine.add_interactions(["a", "b"], ["x", "y"])
    with pytest.raises(chorus.InvalidArgument):
        engine.add_interactions(["c"], ["z"], weights=[-1.0])
    assert len(engine._ids("user")) == 2 and len(engine._ids("item")) == 2
    engine.add_interactions(["c"], ["z"])
    assert engine.stats()["n_users"] == 3


# ---- string ids -----------------------------------------------------------------------------------


def test_string_ids_come_back_as_strings(string_engine):
    e, data = string_engine
    user = int(USERS_A[0])
    ids, scores = e.recommend(f"user-{user}", k=4)
    assert ids.dtype == object and all(isinstance(i, str) for i in ids)
    group = {f"item-{i}" for i in data.group[user]}
    seen = {f"item-{i}" for i in data.seen[user]}
    assert set(ids) == group - seen
    batch, _ = e.recommend([f"user-{user}", f"user-{int(USERS_B[0])}"], k=4)
    assert batch.shape == (2, 4) and list(batch[0]) == list(ids)
    similar, _ = e.similar_items(ids[0], k=3)
    assert all(s in group for s in similar)
    users, _ = e.similar_users(f"user-{user}", k=3, deny_users=["user-never"])
    assert users.dtype == object and all(u in {f"user-{int(x)}" for x in USERS_A} for u in users)
    none, scores = e.similar_users(f"user-{user}", k=2, users=[f"user-{int(USERS_A[1])}"])
    assert none[0] == f"user-{int(USERS_A[1])}" and none[1] is None and scores[1] == -np.inf
    why = e.explain(f"user-{user}", ids[0])
    assert why.item == ids[0] and (why.because_item is None or why.because_item in seen)
    # The sentence names the caller's ids, not the int64 codes the library was given.
    assert f"item {ids[0]!r}" in why.sentence and not re.search(r"\bitem \d", why.sentence), why.sentence
    details = e.recommend(f"user-{user}", k=4, return_details=True)
    assert list(details.ids) == list(ids)
    # Filters take string ids too; an unknown deny/history id filters nothing.
    only, _ = e.recommend(f"user-{user}", k=1, items=[ids[2]], deny_items=["item-never"])
    assert only[0] == ids[2]


def test_an_empty_slot_is_none(string_engine):
    e, data = string_engine
    user = int(USERS_A[0])
    ids, scores = e.recommend(f"user-{user}", k=3, items=[f"item-{next(iter(data.seen[user]))}"])
    assert ids[0] is None and scores[0] == -np.inf


def test_a_string_id_never_seen_is_named(string_engine):
    e, _ = string_engine
    with pytest.raises(chorus.NotFound, match="user_ids: user id 'nobody' was never added"):
        e.recommend("nobody")
    with pytest.raises(chorus.NotFound, match="items: item id 'item-nope' was never added"):
        e.recommend(f"user-{int(USERS_A[0])}", items=["item-nope"])
    with pytest.raises(chorus.NotFound, match="item_ids"):
        e.similar_items("item-nope")
    with pytest.raises(chorus.NotFound, match="user_ids: user id 'nobody'"):
        e.similar_users("nobody")
    with pytest.raises(LookupError):
        e.explain("nobody", "item-nope")


def test_string_ids_survive_a_snapshot(string_engine, tmp_path):
    e, _ = string_engine
    path = tmp_path / "strings.chorus"
    e.save(path)
    user = f"user-{int(USERS_B[2])}"
    with chorus.Engine.load(path) as loaded:
        np.testing.assert_array_equal(loaded.recommend(user, k=4)[0], e.recommend(user, k=4)[0])
        assert loaded.metadata(METADATA_KEYS["user"]) == e._ids("user").to_bytes()
        # New strings continue the codes; old ones keep theirs.
        loaded.add_interactions(["newcomer", user], ["item-new", "item-new"])
        assert loaded._ids("item").encode_known(["item-new"], "x")[0] == len(e._ids("item"))
        with pytest.raises(TypeError, match="strings"):
            loaded.add_interactions([1], [2])
        loaded.save(path)
    with chorus.Engine.load(path) as again:
        assert len(again._ids("user")) == len(e._ids("user")) + 1


def test_integer_engines_keep_their_kind_in_snapshots(engine, tmp_path):
    engine.add_interactions([1, 2], [10, 20])
    engine.save(tmp_path / "ints.chorus")
    with chorus.Engine.load(tmp_path / "ints.chorus") as loaded:
        with pytest.raises(TypeError, match="integers"):
            loaded.add_interactions(["a"], ["b"])


def test_a_snapshot_from_before_the_id_maps_loads():
    path = os.path.join(REPO_ROOT, "Tests", "ChorusAgentsTests", "Fixtures", "engine-v3.chorus")
    if not os.path.isfile(path):
        pytest.skip("the engine-v3 fixture is not beside the binding")
    with chorus.Engine.load(path) as e:
        assert e.metadata(METADATA_KEYS["user"]) is None
        ids, _ = e.recommend(1, k=5)
        assert ids.dtype == np.int64
        with pytest.raises(TypeError, match="already holds integer user ids"):
            e.add_interactions(["someone"], [101])


# ---- texts and facts ------------------------------------------------------------------------------


def test_texts_and_facts_from_dataframes():
    with chorus.Engine(hashing_encoder=True) as e:
        e.add_interactions(["a", "a", "b", "b"], ["x", "y", "y", "z"])
        e.set_item_texts(pd.DataFrame({"item_id": ["x", "y", "w"], "text": ["space", "garden", "sea"]}))
        e.set_user_texts(pd.DataFrame({"who": ["a"], "bio": ["likes space"]}), id_col="who", text_col="bio")
        assert e.stats()["n_item_texts"] == 3 and e.stats()["n_user_texts"] == 1
        assert e.stats()["n_items"] == 4  # "w" joined the catalogue through its text
        facts = pd.DataFrame({"item_id": ["x", "y"], "relation": ["genre", "genre"], "entity": ["sf", "nature"]})
        assert e.add_item_facts(facts) == 2
        with pytest.raises(TypeError, match=r"column 'text' has a missing text at row 1"):
            e.set_item_texts(pd.DataFrame({"item_id": ["x", "y"], "text": ["ok", None]}))
        with pytest.raises(chorus.InvalidArgument, match="no column 'entity'"):
            e.add_item_facts(facts.drop(columns="entity"))
        with pytest.raises(chorus.InvalidArgument, match="no column 'item_id'"):
            e.set_item_texts(pd.DataFrame({"id": ["x"], "text": ["t"]}))


# ---- sparse matrices ------------------------------------------------------------------------------


def test_a_sparse_user_item_matrix(engine):
    m = sp.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 3.0]]))
    engine.add_interactions(m)
    assert engine.stats()["n_interactions"] == 3 and engine.stats()["n_users"] == 2
    engine.add_interactions(sp.coo_array(m))
    assert engine.stats()["n_interactions"] == 6


def test_bad_sparse_matrices_are_refused_by_name(engine):
    with pytest.raises(TypeError, match="user_items must hold numbers.*complex"):
        engine.add_interactions(sp.csr_matrix(np.array([[1j, 0]])))
    zero = sp.csr_matrix((np.array([0.0, 1.0]), (np.array([0, 1]), np.array([0, 1]))), shape=(2, 2))
    with pytest.raises(chorus.InvalidArgument, match=r"user_items holds 0.0 at \(row 0, column 0\).*eliminate_zeros"):
        engine.add_interactions(zero)
    with pytest.raises(chorus.InvalidArgument, match="no stored entries"):
        engine.add_interactions(sp.csr_matrix((3, 3)))
    if hasattr(sp, "coo_array"):
        try:
            one_d = sp.coo_array(np.array([1.0, 2.0]))
        except ValueError:
            one_d = None
        if one_d is not None and one_d.ndim == 1:
            with pytest.raises(chorus.InvalidArgument, match="2-D"):
                engine.add_interactions(one_d)
    assert engine.stats()["n_interactions"] == 0


# ---- host metadata --------------------------------------------------------------------------------


def test_metadata_round_trip_and_limits(engine, tmp_path):
    assert engine.metadata("pipeline") is None
    engine.set_metadata("pipeline", b"v7\x00\xff")
    assert engine.metadata("pipeline") == b"v7\x00\xff"
    engine.set_metadata("pipeline", b"v8")
    assert engine.metadata("pipeline") == b"v8"
    engine.add_interactions([1, 2], [3, 4])
    engine.save(tmp_path / "m.chorus")
    with chorus.Engine.load(tmp_path / "m.chorus") as loaded:
        assert loaded.metadata("pipeline") == b"v8"
    engine.set_metadata("pipeline", b"")
    assert engine.metadata("pipeline") is None
    with pytest.raises(chorus.InvalidArgument, match="key"):
        engine.set_metadata("", b"x")
    with pytest.raises(chorus.InvalidArgument):
        engine.set_metadata("k" * (_capi.CHORUS_MAX_NAME_BYTES + 1), b"x")
    with pytest.raises(TypeError):
        engine.set_metadata("k", "not bytes")


@pytest.mark.parametrize("edit, why", [
    (lambda b: b[:10], "shorter than its header"),
    (lambda b: b"XXXX" + b[4:], "bad magic"),
    (lambda b: b[:4] + b"\x09" + b[5:], "version 9"),
    (lambda b: b[:5] + b"\x07" + b[6:], "unknown kind"),
    (lambda b: b[:8] + struct.pack("<Q", 2**40) + b[16:], "claimed"),
    (lambda b: b + b"x", "add up to"),
    (lambda b: b[:-1], "add up to"),
])
def test_a_malformed_id_map_is_a_format_error(edit, why):
    m = IdMap("user")
    ids, commit = m.encode_new(["ab", "c"], "user_ids")
    commit()
    good = m.to_bytes()
    assert IdMap.from_bytes("user", good, "k")._names == ["ab", "c"]
    with pytest.raises(chorus.FormatError, match=why):
        IdMap.from_bytes("user", edit(good), "k")


def test_a_repeated_string_in_an_id_map_is_a_format_error():
    bad = struct.pack("<4sBBHQ", b"CHID", 1, 2, 0, 2) + struct.pack("<II", 1, 1) + b"aa"
    with pytest.raises(chorus.FormatError, match="twice"):
        IdMap.from_bytes("user", bad, "k")


def test_string_ids_from_many_threads(string_engine):
    import threading
    e, _data = string_engine
    with chorus.Engine() as engine:
        engine.add_interactions(["seed-a", "seed-b"], ["x-0", "x-1"])
        errors = []

        def work(t):
            try:
                for k in range(50):
                    engine.add_interactions([f"t{t}-u{k}", f"t{t}-u{k}"], [f"x-{k % 7}", f"t{t}-i{k}"])
                    assert engine._ids("item").decode(np.array([0, 1]))[0] == "x-0"
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        stats = engine.stats()
        assert stats["n_users"] == len(engine._ids("user")) == 2 + 4 * 50
        assert stats["n_items"] == len(engine._ids("item")) == 2 + 5 + 4 * 50

"""Engine.set_learning / recommend(request_ids=) / slate_log: the learning coordinator from Python:
slates rewarded by feedback, the log in the caller's id types, bad input refused, state saved."""

import numpy as np
import pytest

import chorus
from chorus import InvalidArgument
from conftest import USERS_A, USERS_B, build_engine


@pytest.fixture
def engine(data):
    e = build_engine(data)
    yield e
    e.close()


@pytest.mark.parametrize("mode", ["linucb", "thompson", "policy"])
def test_slates_are_rewarded_and_logged(engine, mode):
    engine.set_learning(mode)
    users = np.array([USERS_A[0], USERS_B[0]], dtype=np.int64)
    ids, _ = engine.recommend(users, k=4, request_ids=[1, 2])
    engine.feedback(int(users[0]), int(ids[0, 3]), "purchase", request_ids=[1])
    engine.feedback(int(users[1]), int(ids[1, 0]), "click", request_ids=[2])
    assert engine.slate_log()["request_id"].size == 0  # both still open
    log = engine.slate_log(close_open=True)
    assert log["request_id"].tolist() == [1] * 4 + [2] * 4
    assert log["user_id"].tolist() == [int(users[0])] * 4 + [int(users[1])] * 4
    assert log["item_id"].tolist() == ids[0].tolist() + ids[1].tolist()
    assert log["slot"].tolist() == [0, 1, 2, 3] * 2
    assert log["reward"].tolist() == [0, 0, 0, 4, 1, 0, 0, 0]
    assert np.all((log["propensity"] > 0) & (log["propensity"] <= 1))
    assert engine.slate_log(drain=True)["request_id"].size == 8
    assert engine.slate_log()["request_id"].size == 0


def test_string_ids_come_back_as_strings(data):
    e = chorus.Engine()
    users = [f"u{u}" for u in data.users]
    items = [f"i{i}" for i in data.items]
    e.add_interactions(users, items, data.weights, data.timestamps)
    e.fit(factors=4, iterations=5, threads=1, agents=["popularity", "als"])
    e.set_learning("linucb")
    ids, _ = e.recommend(users[0], k=3, request_ids=[7])
    e.feedback(users[0], ids[1], "click", request_ids=[7])
    log = e.slate_log(close_open=True)
    assert log["user_id"].tolist() == [users[0]] * 3
    assert log["item_id"].tolist() == list(ids)
    assert log["reward"].tolist() == [0, 1, 0]
    e.close()


def test_bad_learning_input_is_refused(engine):
    for bad in [dict(mode="greedy"), dict(mode="linucb", exploration=float("nan")), dict(mode="linucb", exploration=-1),
                dict(mode="policy", learning_rate=float("inf")), dict(mode="linucb", log_capacity=-1),
                dict(mode="linucb", log_capacity=2**64)]:
        with pytest.raises((InvalidArgument, OverflowError, ValueError)):
            engine.set_learning(**bad)
    with pytest.raises(InvalidArgument):
        engine.recommend([int(USERS_A[0]), int(USERS_A[1])], k=3, request_ids=[1])
    with pytest.raises(InvalidArgument):
        engine.recommend(int(USERS_A[0]), k=3, request_ids=[-1])
    engine.recommend(int(USERS_A[0]), k=3, request_ids=[np.iinfo(np.int64).min])  # any int64 but -1
    with pytest.raises(TypeError):
        engine.recommend(int(USERS_A[0]), k=3, request_ids=["x"])


def test_learning_survives_save_and_load(engine, tmp_path):
    engine.set_learning("thompson", exploration=0.2)
    for r in range(20):
        user = int(USERS_A[r % 5])
        ids, _ = engine.recommend(user, k=3, request_ids=[r])
        engine.feedback(user, int(ids[-1]), "click", request_ids=[r])
    engine.slate_log(close_open=True)
    path = tmp_path / "learning.chorus"
    engine.save(str(path))
    loaded = chorus.Engine.load(str(path))
    user = int(USERS_B[3])
    loaded.recommend(user, k=3, request_ids=[99])
    assert loaded.slate_log(close_open=True)["request_id"].tolist() == [99] * 3  # still learning (mode kept)
    loaded.close()


def test_closed_engine_refuses_learning_calls(data):
    e = build_engine(data)
    e.close()
    with pytest.raises(ValueError, match="closed"):
        e.set_learning("linucb")
    with pytest.raises(ValueError, match="closed"):
        e.slate_log()
    with pytest.raises(ValueError, match="closed"):
        e.learning_privacy_spent


def test_private_learning_spends_epsilon_and_keeps_feedback_with_its_user(data, tmp_path):
    plain, private = build_engine(data), build_engine(data)
    assert private.learning_privacy_spent.epsilon == 0 and private.learning_privacy_spent.rounds == 0
    private.set_learning("linucb", clip_norm=1.0, noise_multiplier=1.0, release_slates=1)
    user = int(USERS_A[2])
    ids, _ = private.recommend(user, k=3, request_ids=[3])
    private.feedback(user, int(ids[0]), "skip", request_ids=[3])
    private.slate_log(close_open=True)
    spent = private.learning_privacy_spent
    # One release at sigma 1, delta 1e-5: epsilon 5.2986 (the accountant's grid of orders).
    assert spent.rounds == 1 and spent.delta == 1e-5 and abs(spent.epsilon - 5.2986) < 1e-3
    # Thirty users buy a brand-new item: popularity learns it from plain feedback only.
    buyers = np.concatenate([USERS_A, USERS_B[:10]])
    for e in (plain, private):
        e.feedback(buyers, np.full(buyers.size, 777_777), "purchase")
    cold = 5_555_555
    assert 777_777 in plain.recommend(cold, k=10, agent="popularity")[0].tolist()
    assert 777_777 not in private.recommend(cold, k=10, agent="popularity")[0].tolist()
    # The buyer's own overlay still learns: the item they bought leaves their list.
    bought = int(private.recommend(user, k=1)[0][0])
    private.feedback(user, bought, "purchase")
    assert bought not in private.recommend(user, k=5)[0].tolist()
    path = tmp_path / "private.chorus"
    private.save(str(path))
    loaded = chorus.Engine.load(str(path))
    assert loaded.learning_privacy_spent == spent
    assert 777_777 not in loaded.recommend(cold, k=10, agent="popularity")[0].tolist()
    # Plain learning gives no guarantee.
    plain.set_learning("linucb")
    ids, _ = plain.recommend(user, k=3, request_ids=[4])
    plain.slate_log(close_open=True)
    assert plain.learning_privacy_spent.epsilon == float("inf")
    for e in (plain, private, loaded):
        e.close()


def test_bad_privacy_options_are_refused(engine):
    for bad in [dict(noise_multiplier=1.0), dict(clip_norm=float("nan")), dict(clip_norm=-1.0),
                dict(clip_norm=1.0, noise_multiplier=float("inf")), dict(clip_norm=1.0, delta=1.0),
                dict(clip_norm=1.0, release_slates=10**8), dict(clip_norm=1.0, release_slates=-1)]:
        with pytest.raises(InvalidArgument):
            engine.set_learning("linucb", **bad)
    with pytest.raises(TypeError):
        engine.set_learning("linucb", clip_norm="big")

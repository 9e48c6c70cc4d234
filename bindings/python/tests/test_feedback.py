"""Engine.feedback: live feedback seen by the next recommend, without a refit; bad input refused
with nothing recorded; the online state saved and loaded."""

import math

import numpy as np
import pytest

import chorus
from chorus import Event, InvalidArgument, NotFitted, NotFound
from conftest import FIT, ITEMS_A, ITEMS_B, USERS_A, USERS_B, build_engine


@pytest.fixture
def engine(data):
    e = build_engine(data)
    yield e
    e.close()


def test_event_enum_matches_the_header():
    assert [e.name for e in Event] == ["IMPRESSION", "CLICK", "ADD_TO_CART", "PURCHASE", "RATING", "SKIP", "DISMISS"]
    assert [int(e) for e in Event] == list(range(7))
    assert chorus.engine.DEFAULT_REWARDS["purchase"] == 4.0


def test_one_event_is_a_batch_of_one(engine, data):
    user = int(USERS_A[0])
    ids, _ = engine.recommend(user, k=3)
    before = engine.stats()["n_interactions"]
    engine.feedback(user, int(ids[0]), "purchase")
    assert engine.stats()["n_interactions"] == before + 1
    after, _ = engine.recommend(user, k=3)
    assert int(ids[0]) not in after.tolist()


def test_events_as_names_enum_and_ints(engine):
    users = np.array([USERS_A[1]] * 3, dtype=np.int64)
    items = ITEMS_A[:3]
    before = engine.stats()["n_interactions"]
    engine.feedback(users, items, ["click", Event.ADD_TO_CART, 3])
    engine.feedback(users, items, "add-to-cart")  # one event type for the whole batch
    engine.feedback(users, items, np.array([1, 2, 3], dtype=np.int64), values=2.0)
    assert engine.stats()["n_interactions"] == before + 9


def test_a_new_user_is_served_personally(engine):
    newcomer = 123_456_789
    ids, _ = engine.recommend(newcomer, k=4)
    cold = engine.recommend(newcomer, k=4, return_details=True).cold
    assert cold
    engine.feedback([newcomer] * 3, ITEMS_B[:3], ["click", "click", "purchase"],
                    timestamps=np.array(["2024-01-02", "2024-01-01", "2024-01-03"], dtype="datetime64[s]"))
    rec = engine.recommend(newcomer, k=4, return_details=True)
    assert not rec.cold
    assert set(rec.ids.tolist()) <= set(ITEMS_B.tolist()) - set(ITEMS_B[:3].tolist())


def test_dismiss_drops_and_custom_rewards(engine):
    user = int(USERS_B[2])
    ids, _ = engine.recommend(user, k=4)
    engine.feedback(user, int(ids[0]), Event.DISMISS)
    everything, _ = engine.recommend(user, k=20, include_seen=True)
    assert int(ids[0]) not in everything.tolist()
    # A click configured as negative feedback drops too; an impression made positive is an interaction.
    engine.feedback(user, int(ids[1]), "click", rewards={"click": -2})
    everything, _ = engine.recommend(user, k=20, include_seen=True)
    assert int(ids[1]) not in everything.tolist()
    before = engine.stats()["n_interactions"]
    engine.feedback(user, int(ids[2]), "impression", rewards={"impression": 0.5})
    assert engine.stats()["n_interactions"] == before + 1


def test_feedback_before_fit_is_accumulated(data):
    with chorus.Engine() as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        e.feedback([5, 5], [ITEMS_A[0], 77], ["purchase", "click"])
        with pytest.raises(NotFitted):
            e.recommend(5, k=2)
        e.fit(**FIT)
        assert e.stats()["n_model_items"] == 21  # the new item 77 came in through feedback
        ids, _ = e.recommend(5, k=3)
        assert int(ITEMS_A[0]) not in ids.tolist()


@pytest.mark.parametrize("kwargs, error", [
    (dict(events="like"), InvalidArgument),
    (dict(events=["click", "nope"]), InvalidArgument),
    (dict(events=[1, 7]), InvalidArgument),
    (dict(events=[1, -1]), InvalidArgument),
    (dict(events=[1, 2**40]), InvalidArgument),
    (dict(events=[1.5, 2]), TypeError),
    (dict(events=["click"] * 3), InvalidArgument),
    (dict(values=[1.0, math.nan]), InvalidArgument),
    (dict(values=[math.inf, 1.0]), InvalidArgument),
    (dict(values=[1.0, -1.0]), InvalidArgument),
    (dict(values=[1.0, 2.0, 3.0]), InvalidArgument),
    (dict(timestamps=[1]), InvalidArgument),
    (dict(request_ids=[1, 2, 3]), InvalidArgument),
    (dict(item_ids=[ITEMS_A[0], -1]), InvalidArgument),
    (dict(item_ids=[ITEMS_A[0]]), InvalidArgument),
    (dict(user_ids=[[1, 2]]), InvalidArgument),
    (dict(user_ids=[], item_ids=[]), InvalidArgument),
    (dict(scenario="nowhere"), NotFound),
    (dict(rewards={"like": 1}), InvalidArgument),
    (dict(rewards={"click": math.nan}), InvalidArgument),
])
def test_bad_input_is_refused_and_nothing_is_recorded(engine, kwargs, error):
    args = dict(user_ids=[USERS_A[0], USERS_A[1]], item_ids=ITEMS_A[:2], events=["click", "purchase"])
    args.update(kwargs)
    before = engine.stats()["n_interactions"]
    with pytest.raises(error):
        engine.feedback(**args)
    assert engine.stats()["n_interactions"] == before


def test_negative_user_ids_and_extreme_timestamps_are_accepted(engine):
    before = engine.stats()["n_interactions"]
    engine.feedback([-3, 2**63 - 1], [ITEMS_A[0], -(2**63)], ["click", "rating"], values=[1, 5],
                    timestamps=[-(2**63), 2**63 - 1], request_ids=[0, -1])
    assert engine.stats()["n_interactions"] == before + 2


def test_online_state_is_saved_and_loaded(engine, tmp_path):
    newcomer = 424_242
    engine.feedback([newcomer] * 2, ITEMS_B[4:6], "purchase")
    engine.feedback(int(USERS_A[3]), int(ITEMS_A[9]), "dismiss")
    users = np.array([newcomer, USERS_A[3], USERS_B[0]], dtype=np.int64)
    ids, _ = engine.recommend(users, k=3)
    path = tmp_path / "online.chorus"
    engine.save(path)
    with chorus.Engine.load(path) as loaded:
        again, _ = loaded.recommend(users, k=3)
        assert np.array_equal(ids, again)
        everything, _ = loaded.recommend(int(USERS_A[3]), k=20, include_seen=True)
        assert int(ITEMS_A[9]) not in everything.tolist()


def test_a_new_item_is_served_at_once(engine):
    fresh = 31_337
    buyers = np.arange(50_000, 50_020, dtype=np.int64)
    engine.feedback(np.repeat(buyers, 2), np.tile([ITEMS_A[0], fresh], 20), np.tile(["click", "purchase"], 20))
    ids, _ = engine.recommend(77_777, k=1, agent="popularity")
    assert ids.tolist() == [fresh]
    engine.feedback(88_888, int(ITEMS_A[0]), "click")
    ids, _ = engine.recommend(88_888, k=1, agent="session")
    assert ids.tolist() == [fresh]
    n_model = engine.stats()["n_model_items"]
    ids, _ = engine.recommend(77_777, k=n_model + 1)
    assert fresh in ids.tolist()


def test_feedback_takes_the_engines_string_ids(tmp_path):
    # String ids go through the binding's id maps, as in add_interactions: known strings keep their
    # codes, new ones (a new user, a new item) are added only when the library accepts the batch.
    with chorus.Engine(hashing_encoder=True) as e:
        users = [f"u{n}" for n in range(40) for _ in range(6)]
        items = [f"{'a' if n < 20 else 'b'}{(n + j) % 10}" for n in range(40) for j in range(6)]
        e.add_interactions(users, items)
        e.fit(**FIT)
        ids, _ = e.recommend("u0", k=3)
        e.feedback("u0", ids[0], "purchase")
        assert ids[0] not in list(e.recommend("u0", k=3)[0])
        with pytest.raises(TypeError):
            e.feedback(7, "a1", "click")  # an int user in a string-id engine
        with pytest.raises(InvalidArgument):
            e.feedback("newcomer", "a1", "no-such-event")
        e.feedback(["newcomer"] * 3, ["a1", "a2", "a3"], "click")
        got, _ = e.recommend("newcomer", k=3)
        assert all(isinstance(i, str) for i in got)
        e.save(tmp_path / "s.chorus")
        with chorus.Engine.load(tmp_path / "s.chorus") as back:
            assert list(back.recommend("newcomer", k=3)[0]) == list(got)

"""Item and user texts: the content agent through the Python binding."""

import numpy as np
import pytest

import chorus
from conftest import FIT, ITEMS_A, ITEMS_B, USERS_A, USERS_B

SPACE = "space film {}: rocket galaxy astronaut orbit planet"
COOKING = "cooking show {}: recipe kitchen pasta chef soup"
NEW_ITEM = 3 * 10**12  # an item known only by its text
TEXT_USER = 77_777_777  # a user known only by a profile text


@pytest.fixture
def text_engine(data):
    with chorus.Engine(hashing_encoder=True) as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        e.set_item_texts({int(i): SPACE.format(n) for n, i in enumerate(ITEMS_A)})
        e.set_item_texts(list(ITEMS_B), [COOKING.format(n) for n in range(len(ITEMS_B))])
        e.set_item_texts({NEW_ITEM: "a new space film: rocket, galaxy, astronaut"})
        e.set_user_texts({TEXT_USER: "I cook at home: recipes, kitchen, pasta and soup"})
        yield e


def test_content_agent_joins_and_reports(text_engine):
    names = [name for name, _ in text_engine.agents]
    assert names[0] == "popularity" and names[-2:] == ["content", "query"] and "als" in names
    assert "hashing" in text_engine.encoder
    s = text_engine.stats()
    assert s["n_item_texts"] == len(ITEMS_A) + len(ITEMS_B) + 1
    assert s["n_user_texts"] == 1
    assert s["n_items"] == len(ITEMS_A) + len(ITEMS_B) + 1  # the text-only item is in the catalogue
    text_engine.fit(**FIT)
    weights = [w for _, w in text_engine.agents]
    assert abs(sum(weights) - 1) < 1e-5


def test_content_recommends_by_text_and_new_items(text_engine, data):
    text_engine.fit(**FIT)
    ids, _ = text_engine.recommend(USERS_B[:5], k=4, agent="content")
    assert all(int(i) in set(ITEMS_B.tolist()) for i in ids.ravel())
    # A space user ranks the text-only item above every cooking item.
    ids, _ = text_engine.recommend(int(USERS_A[0]), k=len(ITEMS_A) + len(ITEMS_B) + 1 - 6, agent="content")
    order = ids.tolist()
    assert NEW_ITEM in order
    first_cooking = min(order.index(int(i)) for i in ITEMS_B)
    assert order.index(NEW_ITEM) < first_cooking


def test_profile_text_user_is_cold_but_served_by_content(text_engine):
    text_engine.fit(**FIT)
    rec = text_engine.recommend(TEXT_USER, k=4, return_details=True)
    assert rec.cold
    assert np.allclose(rec.shares.sum(axis=1), 1, atol=1e-4)
    ids, _ = text_engine.recommend(TEXT_USER, k=4, agent="content")
    assert set(ids.tolist()) <= set(ITEMS_B.tolist())


def test_texts_survive_save_and_load(text_engine, tmp_path):
    text_engine.fit(**FIT)
    path = tmp_path / "texts.chorus"
    text_engine.save(path)
    with chorus.Engine.load(path) as loaded:
        assert loaded.stats()["n_item_texts"] == text_engine.stats()["n_item_texts"]
        assert "hashing" in loaded.encoder
        a = text_engine.recommend([int(USERS_A[1]), TEXT_USER], k=5, return_details=True)
        b = loaded.recommend([int(USERS_A[1]), TEXT_USER], k=5, return_details=True)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)
        # New texts on the loaded engine use the same encoder as the saved ones.
        loaded.set_item_texts({NEW_ITEM + 1: "another space film"})


def test_bad_text_calls_raise_and_change_nothing(text_engine):
    before = text_engine.stats()["n_item_texts"]
    with pytest.raises(chorus.InvalidArgument):
        text_engine.set_item_texts([1, 2], ["only one"])
    with pytest.raises(chorus.InvalidArgument):
        text_engine.set_item_texts([5, 5], ["a", "b"])
    with pytest.raises(TypeError):
        text_engine.set_item_texts([5], [b"bytes"])
    with pytest.raises(TypeError):
        text_engine.set_item_texts([5], "not a list")
    with pytest.raises(ValueError):
        text_engine.set_item_texts([5], ["nul\0inside"])
    assert text_engine.stats()["n_item_texts"] == before
    text_engine.set_item_texts({int(ITEMS_A[0]): ""})  # an empty text removes it
    assert text_engine.stats()["n_item_texts"] == before - 1


def test_engine_encoder_options():
    with pytest.raises(chorus.NotFound):
        chorus.Engine(encoder_path="/no/such/model/dir")
    with pytest.raises(chorus.InvalidArgument):
        chorus.Engine(require_encoder=True, hashing_encoder=True)
    with chorus.Engine() as e:
        assert e.encoder  # the transformer when installed, else the hashing fallback, with why


def test_query_history_diversity_and_explain(text_engine):
    text_engine.fit(**FIT)
    space = set(ITEMS_A.tolist()) | {NEW_ITEM}
    ids, _ = text_engine.recommend(int(USERS_B[0]), k=3, query="rocket galaxy astronaut", agent="query")
    assert set(ids.tolist()) <= space
    rec = text_engine.recommend(int(USERS_B[0]), k=3, query="rocket galaxy", return_details=True)
    assert np.allclose(rec.shares.sum(axis=1), 1, atol=1e-4)
    # An anonymous visitor's history.
    visitor = 123_456_789
    hist = [int(i) for i in ITEMS_B[:3]]
    rec = text_engine.recommend(visitor, k=3, history=hist, return_details=True)
    assert rec.cold and not set(rec.ids.tolist()) & set(hist)
    assert set(rec.ids.tolist()) <= set(ITEMS_B.tolist())
    with pytest.raises(chorus.InvalidArgument):
        text_engine.recommend(visitor, k=3, diversity=2.0)
    diverse, _ = text_engine.recommend(int(USERS_A[0]), k=5, diversity=0.9)
    assert len(set(diverse.tolist())) == 5
    # Explanations agree with recommendations.
    ids, scores = text_engine.recommend(int(USERS_A[0]), k=3)
    x = text_engine.explain(int(USERS_A[0]), int(ids[0]))
    assert isinstance(x, chorus.Explanation)
    assert abs(x.score - float(scores[0])) < 1e-5
    assert abs(sum(x.shares.values()) - 1) < 1e-4
    assert x.because_item in set(ITEMS_A.tolist()) and "is recommended" in x.sentence
    q = text_engine.explain(visitor, NEW_ITEM, query="a rocket to the galaxy")
    assert "rocket" in q.matched_terms and "the" not in q.matched_terms
    with pytest.raises(chorus.NotFound):
        text_engine.explain(visitor, 42)


def test_scenarios(data):
    with chorus.Engine(hashing_encoder=True) as e:
        e.define_scenario("home", "the home feed")
        e.define_scenario("search", "results for what the user searched")
        half = data.users.size // 2
        e.add_interactions(data.users[:half], data.items[:half], data.weights[:half], data.timestamps[:half], scenario="home")
        e.add_interactions(data.users[half:], data.items[half:], data.weights[half:], data.timestamps[half:], scenario="search")
        with pytest.raises(chorus.NotFound):
            e.add_interactions([1], [2], scenario="nope")
        with pytest.raises(TypeError):
            e.define_scenario(3, "x")
        e.fit(**FIT)
        a, _ = e.recommend(int(USERS_A[0]), k=3, scenario="home")
        b, _ = e.recommend(int(USERS_A[0]), k=3, scenario="search")
        assert a.shape == b.shape == (3,)
        with pytest.raises(chorus.NotFound):
            e.recommend(int(USERS_A[0]), k=3, scenario="nope")


def test_item_facts_feed_the_kg_agent(data):
    with chorus.Engine(hashing_encoder=True) as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        ids = [int(i) for i in ITEMS_A] + [int(i) for i in ITEMS_B]
        directors = ["A"] * len(ITEMS_A) + ["B"] * len(ITEMS_B)
        assert e.add_item_facts(ids, ["director"] * len(ids), directors) == len(ids)
        assert e.add_item_facts(ids[:1], ["director"], ["A"]) == 0
        with pytest.raises(chorus.InvalidArgument):
            e.add_item_facts([1], [""], ["x"])
        with pytest.raises(chorus.InvalidArgument):
            e.add_item_facts([1, 2], ["r"], ["x"])
        assert e.stats()["n_item_facts"] == len(ids)
        e.fit(**FIT)
        assert "kg" in [n for n, _ in e.agents]
        got, _ = e.recommend(USERS_B[:4], k=3, agent="kg")
        assert set(got.ravel().tolist()) <= set(ITEMS_B.tolist())


def test_the_engines_knowledge_graph_is_shared_trained_and_saved(data, tmp_path):
    with chorus.Engine(hashing_encoder=True) as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        ids = [int(i) for i in ITEMS_A] + [int(i) for i in ITEMS_B]
        e.add_item_facts(ids, ["director"] * len(ids), ["A"] * len(ITEMS_A) + ["B"] * len(ITEMS_B))
        with e.knowledge_graph as kg:
            assert kg.counts["triples"] == len(ids)
            assert kg.add_triples(["A"], ["born_in"], ["France"]) == 1
        assert e.knowledge_graph.counts["triples"] == len(ids) + 1  # the same graph
        e.fit(**FIT)
        assert "kge" not in [n for n, _ in e.agents]  # not before the graph is trained
        with e.knowledge_graph as kg:
            kg.train(model="distmult", dim=32, epochs=300, batch_size=32)
        e.fit(**FIT)
        assert "kge" in [n for n, _ in e.agents]
        got, _ = e.recommend(USERS_B[:4], k=3, agent="kge")
        assert set(got.ravel().tolist()) <= set(ITEMS_B.tolist())
        vector = e.knowledge_graph.entity_vector(f"item:{ids[0]}")
        assert vector.shape == (32,)
        path = tmp_path / "engine.chorus"
        e.save(path)
    with chorus.Engine.load(path) as back:
        kg = back.knowledge_graph
        assert kg.counts["triples"] == len(ids) + 1
        assert np.array_equal(kg.entity_vector(f"item:{ids[0]}"), vector)
        kg.close()
        with pytest.raises(ValueError):
            kg.counts

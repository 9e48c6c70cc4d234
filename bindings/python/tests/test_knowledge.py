"""chorus.KnowledgeGraph: triples, training, evaluation, vectors, save/load."""

import numpy as np
import pytest

import chorus


def _write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_knowledge_graph_end_to_end(tmp_path):
    with chorus.KnowledgeGraph() as kg:
        heads = ["a", "b", "c", "d", "e", "f"]
        tails = ["b", "c", "d", "e", "f", "a"]
        assert kg.add_triples(heads, ["likes"] * 6, tails) == 6
        assert kg.add_triples(heads[:1], ["likes"], tails[:1]) == 0
        with pytest.raises(chorus.InvalidArgument):
            kg.add_triples(["a"], [""], ["b"])
        with pytest.raises(chorus.FormatError) as err:
            kg.load_tsv(_write(tmp_path / "bad.tsv", "a\tnear\tc\nonly two\tfields\n"))
        assert "2" in str(err.value)
        assert kg.load_tsv(_write(tmp_path / "train.tsv", "a\tnear\tc\r\nc\tnear\te\r\n")) == 2
        assert kg.counts == {"entities": 6, "relations": 2, "triples": 8}
        with pytest.raises(chorus.NotFitted):
            kg.entity_vector("a")
        with pytest.raises(chorus.InvalidArgument):
            kg.train(model="nope")
        with pytest.raises(chorus.Cancelled):
            kg.train(model="distmult", dim=8, epochs=5, batch_size=4, negatives=4, progress=lambda s, f: True)
        with pytest.raises(chorus.InvalidArgument):
            kg.train(model="rotate", dim=8, epochs=2, lr_decay_factor=0)
        kg.train(model="rotate", dim=8, epochs=20, batch_size=4, negatives=4, threads=2, share_negatives=2, lr_decay_epoch=10)
        shared = kg.entity_vector("a")
        kg.train(model="rotate", dim=8, epochs=20, batch_size=4, negatives=4, threads=2, filter_negatives=True)
        filtered = kg.entity_vector("a")
        with pytest.raises(chorus.InvalidArgument):
            kg.train(model="rotate", dim=8, epochs=2, filter_negatives=1)
        kg.train(model="rotate", dim=8, epochs=20, batch_size=4, negatives=4, threads=2)
        v = kg.entity_vector("a")
        assert not np.array_equal(v, shared)  # the knobs reached the trainer
        assert not np.array_equal(v, filtered)
        assert v.dtype == np.float32 and v.size == 16  # RotatE: 8 complex numbers
        assert kg.relation_vector("likes").size == 8
        with pytest.raises(chorus.NotFound):
            kg.entity_vector("nobody")
        m = kg.evaluate(_write(tmp_path / "test.tsv", "b\tnear\td\nzz\tnear\ta\n"))
        assert m["queries"] == 2 and m["skipped"] == 1 and 0 < m["mrr"] <= 1
        kg.save(tmp_path / "kg.chorus")
    with chorus.KnowledgeGraph.load(tmp_path / "kg.chorus") as again:
        np.testing.assert_array_equal(again.entity_vector("a"), v)


def test_lifetime_close_and_pickle():
    import pickle

    kg = chorus.KnowledgeGraph()
    assert not kg.closed
    with pytest.raises(TypeError, match="kg.save"):
        pickle.dumps(kg)
    kg.close()
    kg.close()
    assert kg.closed
    with pytest.raises(ValueError, match="closed chorus.KnowledgeGraph"):
        kg.counts
    with pytest.raises(ValueError):
        with kg:
            pass

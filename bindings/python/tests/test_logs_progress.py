"""Library log lines in Python's logging (logger "chorus"), and progress bars (tqdm)."""

import io
import logging
import sys

import numpy as np
import pytest

import chorus
from chorus import _capi, _progress

from conftest import FIT, make_clusters


def test_library_log_lines_reach_the_chorus_logger(caplog):
    caplog.set_level(logging.DEBUG, logger="chorus")
    with chorus.Engine(hashing_encoder=True) as e:
        e.set_item_texts({1: "space rockets"})
    lines = [r for r in caplog.records if r.name == "chorus"]
    assert any(r.levelno >= logging.INFO and "text encoder: hashing encoder" in r.getMessage() for r in lines), \
        [r.getMessage() for r in lines]
    caplog.clear()
    data = make_clusters()
    with chorus.Engine() as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        e.fit(**FIT, progress=False)
    assert any(r.name == "chorus" for r in caplog.records)


def test_a_warning_from_the_library_is_a_warning_record(caplog):
    caplog.set_level(logging.WARNING, logger="chorus")
    engine = chorus.Engine()
    # Freeing an engine through the graph's free function: a no-op the library logs as a warning.
    _capi.chorus_kg_free(ctypes_cast_engine(engine))
    engine.close()
    assert any(r.levelno == logging.WARNING for r in caplog.records if r.name == "chorus"), caplog.records


def ctypes_cast_engine(engine):
    import ctypes
    return ctypes.cast(engine._handle, _capi.chorus_kg_p)


def test_a_failing_log_handler_never_reaches_the_library(caplog):
    class Broken(logging.Handler):
        def emit(self, record):
            raise RuntimeError("handler broke")

    logger = logging.getLogger("chorus")
    handler = Broken()
    logger.addHandler(handler)
    old = logging.raiseExceptions
    logging.raiseExceptions = True
    try:
        with chorus.Engine(hashing_encoder=True) as e:
            e.set_item_texts({1: "still fine"})  # logs; the handler raises inside the callback
            assert e.stats()["n_item_texts"] == 1
    finally:
        logger.removeHandler(handler)
        logging.raiseExceptions = old


def test_forwarding_can_be_turned_off(caplog):
    caplog.set_level(logging.DEBUG, logger="chorus")
    chorus.forward_logs(False)
    try:
        with chorus.Engine(hashing_encoder=True) as e:
            e.set_item_texts({1: "quiet"})
        assert not [r for r in caplog.records if r.name == "chorus"]
    finally:
        chorus.forward_logs(True)


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def terminal(monkeypatch):
    """A stderr that says it is a terminal. pytest's own capture swaps sys.stderr back between
    fixture set-up and the test, so the test installs it: ``tty = terminal()``."""
    def install():
        tty = FakeTTY()
        monkeypatch.setattr(sys, "stderr", tty)
        return tty
    return install


def test_fit_shows_a_bar_in_a_terminal_and_is_silenced(terminal):
    pytest.importorskip("tqdm")
    terminal = terminal()
    data = make_clusters()
    with chorus.Engine() as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        e.fit(**FIT)
        assert "chorus fit" in terminal.getvalue()
        terminal.truncate(0)
        terminal.seek(0)
        e.fit(**FIT, progress=False)
        assert terminal.getvalue() == ""
        chorus.set_progress(False)
        try:
            e.fit(**FIT)
            assert terminal.getvalue() == ""
            e.fit(**FIT, progress=True)  # an explicit True still shows one
            assert "chorus fit" in terminal.getvalue()
        finally:
            chorus.set_progress(True)


def test_no_bar_when_stderr_is_not_a_terminal(capsys):
    data = make_clusters()
    with chorus.Engine() as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        e.fit(**FIT)
    assert "chorus fit" not in capsys.readouterr().err


def test_a_callable_still_works_and_a_bad_progress_is_refused():
    data = make_clusters()
    seen = []
    with chorus.Engine() as e:
        e.add_interactions(data.users, data.items, data.weights, data.timestamps)
        e.fit(**FIT, progress=lambda stage, f: seen.append(f))
        assert seen and seen[-1] == pytest.approx(1.0)
        with pytest.raises(TypeError, match="progress"):
            e.fit(**FIT, progress="yes")


def test_knowledge_graph_training_bar(terminal):
    pytest.importorskip("tqdm")
    terminal = terminal()
    with chorus.KnowledgeGraph() as kg:
        kg.add_triples(["a", "b", "c"], ["r", "r", "r"], ["b", "c", "a"])
        kg.train(model="transe", dim=8, epochs=2, threads=1)
    assert "chorus knowledge graph" in terminal.getvalue()


def test_encoder_bar_chunks_without_changing_vectors(terminal):
    pytest.importorskip("tqdm")
    terminal = terminal()
    texts = [f"text {i} {'space' if i % 2 else 'gardens'}" for i in range(1100)]  # just over one chunk
    with chorus.Encoder() as enc:
        whole = enc.encode(texts, progress=False)
        assert terminal.getvalue() == ""
        chunked = enc.encode(texts)
        assert "chorus encode" in terminal.getvalue()
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def many_texts(n, prefix="item"):
    return {f"{prefix}-{i}": f"{prefix} {i}: {'space rocket galaxy' if i % 2 else 'kitchen soup pasta'}" for i in range(n)}


def test_set_item_texts_shows_a_bar_for_many_texts(terminal):
    pytest.importorskip("tqdm")
    terminal = terminal()
    with chorus.Engine(hashing_encoder=True) as e:
        e.set_item_texts(many_texts(20))
        e.set_user_texts({"u": "a profile"})
        assert terminal.getvalue() == ""  # 1024 texts or fewer: no bar unless asked
        e.set_item_texts(many_texts(1500, "big"))
        assert "chorus item texts" in terminal.getvalue()
        terminal.truncate(0)
        terminal.seek(0)
        e.set_item_texts(many_texts(1500, "big"), progress=False)
        e.set_user_texts(many_texts(1100, "user"), progress=False)
        assert terminal.getvalue() == ""
        e.set_user_texts({"u": "another profile"}, progress=True)
        assert "chorus user texts" in terminal.getvalue()
        assert e.stats()["n_item_texts"] == 1520 and e.stats()["n_user_texts"] == 1101


def test_set_texts_progress_callable_and_cancel_leave_nothing_changed():
    seen = []
    with chorus.Engine(hashing_encoder=True) as e:
        e.set_item_texts(many_texts(1200), progress=lambda stage, f: seen.append((stage, f)))
        assert [s for s, _ in seen] == ["encoding"] * 4
        assert [f for _, f in seen] == pytest.approx([0.0, 512 / 1200, 1024 / 1200, 1.0])
        assert e.stats()["n_item_texts"] == 1200
        # Cancelled at each report: no text added, changed or removed, no new string id kept.
        for at in range(4):
            calls = []

            def cancel(stage, f, at=at):
                calls.append(f)
                return len(calls) > at

            new = many_texts(1200, "new")
            with pytest.raises(chorus.Cancelled):
                e.set_item_texts(new, progress=cancel)
            assert len(calls) == at + 1
            with pytest.raises(chorus.Cancelled):
                e.set_item_texts({k: "" for k in many_texts(1200)}, progress=lambda s, f: True)
            assert e.stats()["n_item_texts"] == 1200
            with pytest.raises(chorus.NotFound, match="never added"):
                e.similar_items("new-0")
        # An exception in the callable cancels too and is re-raised.
        with pytest.raises(KeyError):
            e.set_user_texts(many_texts(600, "user"), progress=lambda s, f: {}["boom"] if f > 0.5 else None)
        assert e.stats()["n_user_texts"] == 0
        with pytest.raises(TypeError, match="progress"):
            e.set_item_texts({"x": "y"}, progress="yes")


def test_chunked_encoding_stores_the_same_vectors(tmp_path):
    texts = many_texts(1100)
    paths = []
    for progress in (False, lambda s, f: None):
        with chorus.Engine(hashing_encoder=True) as e:
            e.set_item_texts(texts, progress=progress)
            paths.append(tmp_path / f"{len(paths)}.chorus")
            e.save(str(paths[-1]))
    assert paths[0].read_bytes() == paths[1].read_bytes()

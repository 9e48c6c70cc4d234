"""chorus.Encoder: the text encoder through the C ABI."""

import json
import os
import pathlib

import numpy as np
import pytest

import chorus

FIXTURE = pathlib.Path(__file__).resolve().parents[3] / "Tests" / "ChorusTextTests" / "Fixtures" / "minilm_reference.jsonl"


@pytest.fixture(scope="module")
def encoder():
    with chorus.Encoder() as enc:
        yield enc


def test_shape_norm_and_similarity(encoder):
    texts = ["A galactic space opera with rebels and an empire.", "Rebels fight a galactic empire in space.",
             "Stainless steel frying pan with a glass lid.", ""]
    v = encoder.encode(texts)
    assert v.shape == (4, encoder.dim) and v.dtype == np.float32 and encoder.dim == 384
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    assert encoder.encode([]).shape == (0, 384)
    assert isinstance(encoder.name, str) and encoder.name


def test_matches_the_reference_model_when_the_weights_are_present(encoder):
    if encoder.is_fallback:
        pytest.skip(f"the all-MiniLM-L6-v2 weights are not installed here: {encoder.name}")
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    got = encoder.encode([r["text"] for r in rows])
    ref = np.array([r["embedding"] for r in rows], dtype=np.float32)
    cos = np.sum(got * ref, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1) + 1e-12)
    nonzero = np.linalg.norm(ref, axis=1) > 0
    assert cos[nonzero].min() >= 0.9999


def test_errors(encoder, tmp_path):
    with pytest.raises(chorus.NotFound):
        chorus.Encoder(tmp_path / "missing")
    with pytest.raises(chorus.NotFound):
        chorus.Encoder(tmp_path)  # a directory without weights
    with pytest.raises(TypeError):
        encoder.encode("not a list")
    with pytest.raises(TypeError):
        encoder.encode(["ok", 3])
    with pytest.raises(ValueError):
        encoder.encode(["nul\0inside"])
    with pytest.raises(ValueError):
        chorus.Encoder(threads=-1)


def test_close_is_idempotent_and_guards_use():
    enc = chorus.Encoder()
    enc.close()
    enc.close()
    with pytest.raises(ValueError, match="closed chorus.Encoder"):
        enc.encode(["x"])
    assert enc.closed and "closed" in repr(enc)


def test_refuses_to_pickle():
    import pickle

    with chorus.Encoder() as enc:
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(enc)

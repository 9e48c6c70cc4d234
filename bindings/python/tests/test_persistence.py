"""save / load: round trips and every failure mode of the snapshot file."""

import os
import pathlib
import struct
import zlib

import numpy as np
import pytest

import chorus

from conftest import FIT, ITEMS_A, USERS_A, USERS_B

ALL_USERS = np.concatenate([USERS_A, USERS_B, [123_456_789]])


def assert_same_engine(a, b):
    for agent in (None, "als", "popularity"):
        ra = a.recommend(ALL_USERS, k=7, agent=agent, return_details=True)
        rb = b.recommend(ALL_USERS, k=7, agent=agent, return_details=True)
        for x, y in zip(ra, rb):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.similar_items(ITEMS_A, k=5)[0], b.similar_items(ITEMS_A, k=5)[0])
    np.testing.assert_array_equal(a.similar_items(ITEMS_A, k=5)[1], b.similar_items(ITEMS_A, k=5)[1])
    assert a.agents == b.agents
    sa, sb = a.stats(), b.stats()
    for key in ("fitted", "n_users", "n_items", "n_interactions", "n_model_users", "n_model_items", "model_bytes"):
        assert sa[key] == sb[key], key


@pytest.fixture(scope="module")
def snapshot(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "engine.chorus"
    fitted.save(path)
    return path


def test_round_trip_gives_identical_recommendations(fitted, snapshot):
    with chorus.Engine.load(snapshot) as loaded:
        assert_same_engine(fitted, loaded)


@pytest.mark.parametrize("kind", [str, pathlib.Path, os.fsencode])
def test_save_and_load_accept_path_types(fitted, tmp_path, kind):
    path = tmp_path / "e.chorus"
    fitted.save(kind(path))
    assert path.is_file()
    with chorus.Engine.load(kind(path)) as loaded:
        assert loaded.stats()["fitted"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["e.chorus"]  # no temporary file left behind


def test_non_ascii_path(fitted, tmp_path):
    path = tmp_path / "modèle — snapshot.chorus"
    fitted.save(path)
    with chorus.Engine.load(path) as loaded:
        assert loaded.stats()["fitted"] is True


def test_save_overwrites(fitted, tmp_path):
    path = tmp_path / "e.chorus"
    path.write_bytes(b"old content")
    fitted.save(path)
    with chorus.Engine.load(path) as loaded:
        assert_same_engine(fitted, loaded)


def test_round_trip_of_an_unfitted_engine(tmp_path, data):
    path = tmp_path / "unfitted.chorus"
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        engine.save(path)
    with chorus.Engine.load(path) as loaded:
        s = loaded.stats()
        assert s["fitted"] is False and s["n_interactions"] == len(data.users)
        with pytest.raises(chorus.NotFitted):
            loaded.recommend(int(USERS_A[0]))
        loaded.fit(**FIT)
        assert loaded.stats()["fitted"] is True


def test_loaded_engine_can_learn_more(fitted, snapshot, data):
    with chorus.Engine.load(snapshot) as loaded:
        loaded.add_interactions([555], [int(ITEMS_A[0])])
        loaded.fit(**FIT)
        assert loaded.stats()["n_model_users"] == fitted.stats()["n_model_users"] + 1


def test_save_into_a_directory_is_io_error(fitted, tmp_path):
    with pytest.raises(chorus.ChorusIOError):
        fitted.save(tmp_path)


def test_save_into_a_missing_directory_is_io_error(fitted, tmp_path):
    with pytest.raises(chorus.ChorusIOError):
        fitted.save(tmp_path / "missing" / "e.chorus")


def test_save_empty_path_is_invalid(fitted):
    with pytest.raises(chorus.InvalidArgument):
        fitted.save("")


def test_save_rejects_non_paths(fitted):
    with pytest.raises(TypeError):
        fitted.save(42)


def test_load_missing_file_is_not_found(tmp_path):
    with pytest.raises(chorus.NotFound):
        chorus.Engine.load(tmp_path / "missing.chorus")
    with pytest.raises(chorus.NotFound):
        chorus.Engine.load(tmp_path / "no" / "such" / "dir.chorus")


def test_load_a_directory_is_io_error(tmp_path):
    with pytest.raises(chorus.ChorusIOError):
        chorus.Engine.load(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, world\n" * 10, b"CHORSNAP", os.urandom(4096)])
def test_load_a_non_snapshot_is_format_error(tmp_path, content):
    path = tmp_path / "junk.chorus"
    path.write_bytes(content)
    with pytest.raises(chorus.FormatError):
        chorus.Engine.load(path)


@pytest.mark.parametrize("keep", [0.99, 0.5, 0.1, 20])
def test_load_a_truncated_snapshot_is_format_error(snapshot, tmp_path, keep):
    raw = snapshot.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "truncated.chorus"
    path.write_bytes(raw[:n])
    with pytest.raises(chorus.FormatError) as info:
        chorus.Engine.load(path)
    assert type(info.value) is chorus.FormatError


def test_load_a_snapshot_with_trailing_bytes_is_format_error(snapshot, tmp_path):
    path = tmp_path / "long.chorus"
    path.write_bytes(snapshot.read_bytes() + b"\0")
    with pytest.raises(chorus.FormatError):
        chorus.Engine.load(path)


@pytest.mark.parametrize("where", [0.3, 0.6, 0.95])
def test_load_a_corrupted_snapshot_is_format_error(snapshot, tmp_path, where):
    raw = bytearray(snapshot.read_bytes())
    raw[int(len(raw) * where)] ^= 0x5A
    path = tmp_path / "corrupt.chorus"
    path.write_bytes(bytes(raw))
    with pytest.raises(chorus.FormatError):
        chorus.Engine.load(path)


def test_load_a_newer_format_is_unsupported_version(snapshot, tmp_path):
    # The header: 8-byte magic, u32 format version, u32 section count, u32 CRC-32 of bytes 0..<16.
    raw = bytearray(snapshot.read_bytes())
    assert raw[:8] == b"CHORSNAP"
    version = struct.unpack_from("<I", raw, 8)[0]
    struct.pack_into("<I", raw, 8, version + 1)
    struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw[:16])) & 0xFFFFFFFF)
    path = tmp_path / "future.chorus"
    path.write_bytes(bytes(raw))
    with pytest.raises(chorus.UnsupportedVersion) as info:
        chorus.Engine.load(path)
    assert isinstance(info.value, chorus.FormatError)

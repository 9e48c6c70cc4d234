"""Crash safety of save: a process killed with SIGKILL while it saves, many times.

A child process loads two distinguishable engines (version A and version B, a few MB each) and
saves them in turn to one path, forever, saying when each save is done. The parent lets 0, 1 or 2
saves complete, then kills it after a delay drawn over about one save's duration (both from a
seeded RNG), so that kills land before, inside and between saves. After
each kill the path must hold a complete snapshot of A or of B: it loads, and recommends exactly as
A or as B does. Temporary files a killed save may leave (see FileIO.writeAtomically: only one
killed between naming its temporary file and renaming it) are removed by the next save of the
path, which must leave nothing but the snapshot.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import chorus

from conftest import BINDING_DIR

TRIALS = 40
SEED = 20261203
PROBE_USERS = np.arange(0, 400, 9, dtype=np.int64)

CHILD = r"""
import sys
import chorus
a = chorus.Engine.load(sys.argv[1])
b = chorus.Engine.load(sys.argv[2])
target = sys.argv[3]
print("ready", flush=True)
while True:
    a.save(target)
    print("saved", flush=True)
    b.save(target)
    print("saved", flush=True)
"""


def make_version(n_users: int, seed: int) -> "chorus.Engine":
    """A fitted engine of about 4 MB, most of it the content agent's vectors of 800 item texts
    (hashing encoder): big enough that a save takes a while, quick to fit."""
    rng = np.random.default_rng(seed)
    n_items = 800
    users = np.repeat(np.arange(n_users, dtype=np.int64), 10)
    items = rng.integers(0, n_items, size=users.size, dtype=np.int64)
    weights = rng.integers(1, 5, size=users.size).astype(np.float32)
    timestamps = 1_700_000_000 + rng.integers(0, 10**7, size=users.size, dtype=np.int64)
    engine = chorus.Engine(hashing_encoder=True)
    engine.add_interactions(users, items, weights, timestamps)
    engine.set_item_texts({i: f"item {i}, genre {i % 17}, mood {i % 5}, decade {i % 7}" for i in range(n_items)})
    engine.fit(factors=4, iterations=2, threads=2, seed=seed)
    return engine


def temporaries(directory, name):
    return sorted(p for p in os.listdir(directory) if p.startswith(name + ".tmp-"))


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    directory = tmp_path_factory.mktemp("versions")
    paths = []
    recs = []
    for n_users, seed in ((400, 1), (360, 2)):
        with make_version(n_users, seed) as engine:
            path = directory / f"v{seed}.chorus"
            engine.save(path)
            paths.append(path)
            recs.append(engine.recommend(PROBE_USERS, k=10)[0])
    assert not np.array_equal(recs[0], recs[1]), "the two versions must be told apart"
    sizes = [p.stat().st_size for p in paths]
    assert min(sizes) > 1_000_000, f"snapshots of a few MB expected, got {sizes}"
    return paths, recs


def test_kill_9_during_save_leaves_a_whole_old_or_new_snapshot(versions, tmp_path):
    (path_a, path_b), (recs_a, recs_b) = versions
    target = tmp_path / "model.chorus"
    # The child's first save must be whole before the first kill can be judged: start from A.
    with chorus.Engine.load(path_a) as a:
        started = time.perf_counter()
        a.save(target)
        save_seconds = time.perf_counter() - started
    rng = random.Random(SEED)
    env = dict(os.environ, PYTHONPATH=BINDING_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    seen = {"A": 0, "B": 0}
    left_behind = 0
    dead_pids = []
    for trial in range(TRIALS):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path_a), str(path_b), str(target)],
                                 stdout=subprocess.PIPE, env=env)
        try:
            line = child.stdout.readline()
            assert line.strip() == b"ready", f"trial {trial}: the child did not start ({line!r})"
            # Let 0, 1 or 2 saves (A, then B) complete, then kill at a point drawn over the next save
            # and a bit: before, inside or just after it.
            for _ in range(rng.randint(0, 2)):
                assert child.stdout.readline().strip() == b"saved", f"trial {trial}: the child's save failed"
            time.sleep(rng.uniform(0.0, 1.2 * save_seconds))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL, f"trial {trial}: the child ended on its own ({child.returncode})"
        dead_pids.append(child.pid)
        left_behind += len(temporaries(tmp_path, target.name))
        with chorus.Engine.load(target) as loaded:  # a whole snapshot, or this raises FormatError
            got = loaded.recommend(PROBE_USERS, k=10)[0]
        if np.array_equal(got, recs_a):
            seen["A"] += 1
        elif np.array_equal(got, recs_b):
            seen["B"] += 1
        else:
            pytest.fail(f"trial {trial}: the snapshot after the kill recommends as neither version")
    # Both versions were caught on the path (the kills did land at different points of the loop).
    assert seen["A"] > 0 and seen["B"] > 0, seen

    # The writers are dead (and reaped): a later save of the path removes whatever they left, and
    # a temporary file named after a killed child, as a save killed between naming its temporary
    # file and renaming it would leave.
    stale = tmp_path / f"{target.name}.tmp-{dead_pids[-1]}-4242"
    stale.write_bytes(b"\0" * 4096)
    with chorus.Engine.load(path_b) as b:
        b.save(target)
    assert temporaries(tmp_path, target.name) == [], (
        f"temporary files remain after a save ({left_behind} seen after the kills)")
    assert sorted(os.listdir(tmp_path)) == ["model.chorus"]
    with chorus.Engine.load(target) as loaded:
        np.testing.assert_array_equal(loaded.recommend(PROBE_USERS, k=10)[0], recs_b)

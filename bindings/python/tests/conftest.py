"""Shared synthetic data for the binding's tests.

Two clusters: users of cluster A interact only with items of group A, users of cluster B only
with items of group B. Each user sees 6 of the 10 items of their group, so a working ALS must
recommend the user's 4 unseen in-group items and nothing from the other group: a known answer.
Ids are large and sparse on purpose (the engine maps the host's own int64 ids).
"""

import os
import sys
from typing import Dict, NamedTuple, Set

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BINDING_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(BINDING_DIR))
if BINDING_DIR not in sys.path:  # also run without PYTHONPATH=bindings/python
    sys.path.insert(0, BINDING_DIR)

import chorus  # noqa: E402

ITEMS_A = 10**12 + np.arange(10, dtype=np.int64)
ITEMS_B = 2 * 10**12 + 7 * np.arange(10, dtype=np.int64)
USERS_A = 1_000 + 3 * np.arange(20, dtype=np.int64)
USERS_B = 900_000 + np.arange(20, dtype=np.int64)
SEEN_PER_USER = 6
T0 = 1_700_000_000

# Two latent factors for two clusters: with many more factors than this tiny catalogue needs, ALS
# memorises each user's seen items and scores every unseen item near 0 (that is ALS, not a bug),
# which would make the known answer depend on noise.
FIT = dict(factors=2, iterations=20, regularization=0.1, threads=1, seed=7)


class Data(NamedTuple):
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray
    seen: Dict[int, Set[int]]
    group: Dict[int, Set[int]]  # user -> the items of their group


def make_clusters(seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    users, items, weights, ts = [], [], [], []
    seen: Dict[int, Set[int]] = {}
    group: Dict[int, Set[int]] = {}
    for cluster_users, cluster_items in ((USERS_A, ITEMS_A), (USERS_B, ITEMS_B)):
        for u in cluster_users:
            chosen = rng.choice(cluster_items, size=SEEN_PER_USER, replace=False)
            seen[int(u)] = {int(i) for i in chosen}
            group[int(u)] = {int(i) for i in cluster_items}
            for t, i in enumerate(chosen):
                users.append(u)
                items.append(i)
                weights.append(float(rng.integers(1, 4)))
                ts.append(T0 + 3600 * t + int(rng.integers(0, 60)))
    return Data(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                np.array(weights, dtype=np.float32), np.array(ts, dtype=np.int64), seen, group)


@pytest.fixture(scope="session")
def data() -> Data:
    return make_clusters()


def build_engine(data: Data, **fit) -> "chorus.Engine":
    engine = chorus.Engine()
    engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
    engine.fit(**{**FIT, **fit})
    return engine


@pytest.fixture(scope="session")
def fitted(data):
    """A fitted engine shared by read-only tests (do not mutate or close it)."""
    engine = build_engine(data)
    yield engine
    engine.close()


@pytest.fixture
def engine():
    """A fresh empty engine, closed after the test."""
    with chorus.Engine() as e:
        yield e

"""Chorus quickstart: interactions in, a fitted engine, recommendations out.

Run from the repository root after `make lib`:

    PYTHONPATH=bindings/python python3 examples/python/quickstart.py

(or `pip install ./bindings/python` once, then just `python3 examples/python/quickstart.py`).
"""

import os
import tempfile

import numpy as np

import chorus

# Synthetic data: 50 "jazz" fans play items 100-119, 50 "metal" fans play items 200-219.
rng = np.random.default_rng(0)
users, items, plays, stamps = [], [], [], []
for user in range(100):
    catalog = np.arange(100, 120) if user < 50 else np.arange(200, 220)
    for t, item in enumerate(rng.choice(catalog, size=8, replace=False)):
        users.append(user)
        items.append(item)
        plays.append(rng.integers(1, 10))  # a confidence: how often it was played
        stamps.append(1_700_000_000 + 3_600 * t)

print(f"chorus {chorus.__version__} ({chorus.library_path()})")

with chorus.Engine() as engine:
    engine.add_interactions(users, items, weights=plays, timestamps=stamps)
    # A small catalogue wants few factors (and more regularization) than the defaults (64, 0.01).
    engine.fit(factors=4, regularization=1.0, iterations=15, progress=lambda stage, fraction: None)
    print("agents and blend weights:", [(name, round(weight, 3)) for name, weight in engine.agents])

    # Batch-first: one row per user, best first.
    ids, scores = engine.recommend([0, 99], k=5)
    print("recommendations for user 0 (jazz): ", ids[0].tolist())
    print("recommendations for user 99 (metal):", ids[1].tolist())

    # A user the model has never seen is served from popularity, and flagged.
    details = engine.recommend(12345, k=3, return_details=True)
    print("recommendations for a new user:", details.ids.tolist(), "cold start:", details.cold)

    # Business rules: an allow-list and a deny-list.
    ids, _ = engine.recommend(0, k=3, items=range(100, 110), deny_items=[100, 101])
    print("recommendations among items 102-109:", ids.tolist())

    ids, scores = engine.similar_items(100, k=3)
    print("items like 100:", ids.tolist(), "cosines:", [f"{s:.3f}" for s in scores])

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "engine.chorus")
        engine.save(path)
        with chorus.Engine.load(path) as loaded:
            same = np.array_equal(loaded.recommend([0, 99], k=5)[0], engine.recommend([0, 99], k=5)[0])
            print("snapshot round trip gives the same recommendations:", same)

    try:
        chorus.Engine.load("/no/such/snapshot.chorus")
    except chorus.NotFound as e:  # also a LookupError
        print("errors are exceptions:", type(e).__name__, e.status_name)

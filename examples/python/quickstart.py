"""Chorus quickstart (the README shows this file): a DataFrame of plays in, recommendations out."""
import os
import tempfile

import numpy as np
import pandas as pd

import chorus

# 50 jazz fans play tracks jazz-0 ... jazz-19, 50 metal fans play metal-0 ... metal-19.
rng = np.random.default_rng(0)
rows: list[tuple[str, str, int, int]] = []
for n in range(100):
    genre = "jazz" if n < 50 else "metal"
    for t, track in enumerate(rng.choice(20, size=8, replace=False)):
        rows.append((f"{genre}-fan-{n}", f"{genre}-{track}", int(rng.integers(1, 10)), 1_700_000_000 + 3_600 * t))
plays = pd.DataFrame(rows, columns=["user_id", "item_id", "weight", "timestamp"])

with chorus.Engine() as engine, tempfile.TemporaryDirectory() as tmp:
    engine.add_interactions(plays)  # columns user_id, item_id [, weight, timestamp]; ids of your own
    engine.fit(factors=4, regularization=1.0)  # a tqdm bar in a terminal; progress=False silences it
    ids, scores = engine.recommend(["jazz-fan-0", "metal-fan-99"], k=5)
    print("recommendations for jazz-fan-0:  ", list(ids[0]))
    print("recommendations for metal-fan-99:", list(ids[1]))
    print("why:", engine.explain("jazz-fan-0", ids[0][0]).sentence)
    path = os.path.join(tmp, "engine.chorus")
    engine.save(path)  # the string ids travel in the snapshot
    with chorus.Engine.load(path) as loaded:
        print("same after a reload:", list(loaded.recommend("jazz-fan-0", k=5)[0]) == list(ids[0]))
    try:
        engine.recommend("nobody")
    except chorus.NotFound as e:  # also a LookupError
        print("errors are exceptions:", e)

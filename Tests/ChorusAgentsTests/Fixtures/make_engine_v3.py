"""Writes engine-v3.chorus and engine-v3.expected.json: a small engine snapshot in engine format 3
(interactions in two scenarios, item texts by the hashing encoder, item facts, a fitted model) and
what that library recommended from it. SnapshotCompatibilityTests loads the snapshot with the
current library and expects the same lists, bit for bit: snapshots written before a change keep
loading and serving as they did.

Run with the Python binding and the library of the release that writes the fixture:

    CHORUS_LIBRARY=/path/to/libchorus.so PYTHONPATH=bindings/python \
        python3 Tests/ChorusAgentsTests/Fixtures/make_engine_v3.py

(recorded with the library of commit ceeac5d, version 0.1.0, before the engine was split).
"""
import json
import os

import chorus

here = os.path.dirname(os.path.abspath(__file__))
users, items, weights, times, scen = [], [], [], [], []
t = 1_000_000
for u in range(1, 25):
    group = 100 if u % 2 else 200
    for i in range(1, 13):
        if i == 1 or (u * 7 + i * 3) % 5 < 2:
            t += 60
            users.append(u); items.append(group + i); weights.append(1.0 + (u + i) % 3); times.append(t)
            scen.append("home" if (u + i) % 4 == 0 else "")
words = {100: ["rocket", "galaxy", "orbit", "comet"], 200: ["recipe", "baking", "pasta", "soup"]}
with chorus.Engine(hashing_encoder=True) as e:
    e.define_scenario("home", "the home feed: a relaxed browse")
    for s in ("", "home"):
        rows = [r for r in range(len(users)) if scen[r] == s]
        e.add_interactions([users[r] for r in rows], [items[r] for r in rows], [weights[r] for r in rows],
                           [times[r] for r in rows], scenario=s or None)
    ids = [g + i for g in (100, 200) for i in range(1, 13)]
    e.set_item_texts(ids, [f"item {i}: {words[i // 100 * 100][i % 4]} and {words[i // 100 * 100][(i * 3) % 4]}" for i in ids])
    e.add_item_facts(ids, ["group"] * len(ids), [str(i // 100) for i in ids])
    e.fit(factors=4, iterations=5, threads=1)
    e.save(os.path.join(here, "engine-v3.chorus"))
    expected = []
    for user, kw in [(1, {}), (2, {}), (3, {"scenario": "home"}), (4, {"query": "rocket orbit"}),
                     (-5, {"history": [101, 103]}), (6, {"diversity": 0.5})]:
        r = e.recommend(user, k=5, return_details=True, **kw)
        expected.append({"user": user, "options": kw, "items": [int(x) for x in r.ids],
                         "scores": [float(x) for x in r.scores],
                         "shares": [[float(x) for x in row] for row in r.shares]})
    json.dump({"agents": [name for name, _ in e.agents], "requests": expected},
              open(os.path.join(here, "engine-v3.expected.json"), "w"), indent=1)

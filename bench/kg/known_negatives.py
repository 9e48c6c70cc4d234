#!/usr/bin/env python3
"""How often a uniformly drawn negative is a known fact: for each training triple (h, r, t) and each
side, the share of entities x with (x, r, t) (head side) or (h, r, x) (tail side) in train, other
than the triple's own entity; averaged over the triples. That is the chance that one negative drawn
for that side is a training triple (what `--filter-negatives` leaves out).

    python3 bench/kg/known_negatives.py [--data DIR] [--negatives 256]
"""

import argparse
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--negatives", type=int, default=256)
    args = ap.parse_args()
    n = args.negatives
    print(f"| dataset | entities | head side: share of draws that are facts | tail side | facts among {n} head / tail negatives | triples expecting >= 1 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("fb15k-237", "wn18rr"):
        with open(os.path.join(args.data, name, "train.txt"), encoding="utf-8") as f:
            triples = [line.rstrip("\r\n").split("\t") for line in f if line.strip()]
        entities = {e for h, _, t in triples for e in (h, t)}
        heads_of, tails_of = defaultdict(int), defaultdict(int)
        for h, r, t in triples:
            heads_of[(r, t)] += 1
            tails_of[(h, r)] += 1
        e = len(entities)
        head = [(heads_of[(r, t)] - 1) / e for h, r, t in triples]
        tail = [(tails_of[(h, r)] - 1) / e for h, r, t in triples]
        some = sum(1 for a, b in zip(head, tail) if a * n >= 1 or b * n >= 1) / len(triples)
        mh, mt = sum(head) / len(head), sum(tail) / len(tail)
        print(f"| {name} | {e} | {mh:.2%} | {mt:.2%} | {mh * n:.1f} / {mt * n:.1f} | {some:.0%} |")


if __name__ == "__main__":
    main()

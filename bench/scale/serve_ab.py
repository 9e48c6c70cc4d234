#!/usr/bin/env python3
"""Single-user recommend latency of two builds of libchorus on one saved model, alternating, so that
a change in serving is told apart from the machine's own drift (which moved bench/scale's implicit
figures 1.1-2.4x between two runs a day apart).

    python3 bench/scale/serve_ab.py --save MODEL [--size 20M]      # fit bench/scale's set, save it
    python3 bench/scale/serve_ab.py --model MODEL --libs A.so B.so [--rounds 2] [--calls 10000]

Each round runs each library in a fresh process: load the model (the serving index is built at
load), 200 warm-up calls, then `recommend(u, k=10)` for `--calls` users spread over the id range;
prints p50 / p99 per library per round. A development aid, not a record (nothing is written).
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

BINDINGS = os.path.join(common.REPO, "bindings", "python")


def serve(args):
    sys.path.insert(0, BINDINGS)
    import numpy as np
    import chorus

    engine = chorus.Engine.load(args.model)
    users = np.unique(np.linspace(0, args.max_user, args.calls, dtype=np.int64))
    for u in users[:200]:
        engine.recommend(int(u), k=10)
    lat = []
    for u in users:
        t = time.perf_counter()
        engine.recommend(int(u), k=10)
        lat.append(time.perf_counter() - t)
    lat.sort()
    print(f"p50 {1e3 * lat[len(lat) // 2]:.2f} ms, p99 {1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]:.2f} ms over {len(lat)} calls")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", metavar="MODEL", help="fit bench/scale's --size set (default fit, 2 threads) and save it here")
    ap.add_argument("--size", default="20M")
    ap.add_argument("--model", help="a saved model to serve")
    ap.add_argument("--libs", nargs=2, metavar="LIB", help="two libchorus.so builds to compare")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--max-user", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args)
    if args.save:
        import run as scale
        sys.path.insert(0, BINDINGS)
        import chorus

        users, items, ts = scale.generate(args.size)
        engine = chorus.Engine(hashing_encoder=True)
        engine.add_interactions(users, items, None, ts)
        engine.fit(factors=64, iterations=15, regularization=0.01, alpha=1.0, threads=2)
        engine.save(args.save)
        print(f"saved {args.save}")
        return
    if not (args.model and args.libs):
        ap.error("give --save MODEL, or --model MODEL --libs A B")
    max_user = scale_users(args.size)
    for r in range(args.rounds):
        for lib in args.libs:
            env = dict(os.environ, CHORUS_LIBRARY=os.path.abspath(lib))
            out = subprocess.run([sys.executable, __file__, "--serve", "--model", args.model, "--calls", str(args.calls),
                                  "--max-user", str(max_user)], env=env, capture_output=True, text=True, check=True)
            print(f"round {r + 1} {lib}: {out.stdout.strip()}", flush=True)


def scale_users(size):
    import run as scale
    return scale.SIZES[size][1] - 1


if __name__ == "__main__":
    main()

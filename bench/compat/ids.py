"""What string ids cost in the Python binding: 1,000,000 interactions (100,000 users x 20,000
items, uniform) added from a DataFrame with integer ids and with string ids, then 1,000 single-row
adds of new strings, and the user map's snapshot encoding.

    CHORUS_LIBRARY=.build/release/libchorus.so PYTHONPATH=bindings/python python3 bench/compat/ids.py [--rows N]

--rows N (default 1,000,000) scales the DataFrames (users and items in the same proportion); a smaller N is
a quick check (make bench-check), not the figures in bindings/python/README.md.
"""

import argparse
import time

import numpy as np
import pandas as pd

import chorus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    n = ap.parse_args().rows
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, max(1, n // 10), n), rng.integers(0, max(1, n // 50), n)
    ints = pd.DataFrame({"user_id": u, "item_id": i})
    strings = pd.DataFrame({"user_id": "u" + pd.Series(u).astype(str), "item_id": "i" + pd.Series(i).astype(str)})
    with chorus.Engine() as e:
        t = time.perf_counter()
        e.add_interactions(ints)
        print(f"{n:,} rows, integer ids: {time.perf_counter() - t:.2f} s")
    with chorus.Engine() as e:
        t = time.perf_counter()
        e.add_interactions(strings)
        print(f"{n:,} rows, string ids:  {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        for k in range(1000):
            e.add_interactions([f"new-user-{k}"], [f"new-item-{k}"])
        print(f"single-row adds of new strings: {(time.perf_counter() - t) * 1e3:.0f} us each (1,000 of them)")
        t = time.perf_counter()
        size = len(e._ids("user").to_bytes())
        print(f"user map encoding: {size:,} bytes in {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()

"""What string ids cost in the Python binding: 1,000,000 interactions (100,000 users x 20,000
items, uniform) added from a DataFrame with integer ids and with string ids, then 1,000 single-row
adds of new strings, and the user map's snapshot encoding.

    CHORUS_LIBRARY=.build/release/libchorus.so PYTHONPATH=bindings/python python3 bench/compat/ids.py
"""

import time

import numpy as np
import pandas as pd

import chorus


def main() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    u, i = rng.integers(0, 100_000, n), rng.integers(0, 20_000, n)
    ints = pd.DataFrame({"user_id": u, "item_id": i})
    strings = pd.DataFrame({"user_id": "u" + pd.Series(u).astype(str), "item_id": "i" + pd.Series(i).astype(str)})
    with chorus.Engine() as e:
        t = time.perf_counter()
        e.add_interactions(ints)
        print(f"1M rows, integer ids: {time.perf_counter() - t:.2f} s")
    with chorus.Engine() as e:
        t = time.perf_counter()
        e.add_interactions(strings)
        print(f"1M rows, string ids:  {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        for k in range(1000):
            e.add_interactions([f"new-user-{k}"], [f"new-item-{k}"])
        print(f"single-row adds of new strings: {(time.perf_counter() - t) * 1e3:.0f} us each (1,000 of them)")
        t = time.perf_counter()
        size = len(e._ids("user").to_bytes())
        print(f"user map encoding: {size:,} bytes in {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()

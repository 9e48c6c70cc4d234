#!/usr/bin/env python3
"""Builds examples/data/demo/, the small demo catalogue Chorus ships, from MovieLens ml-latest-small.

Selection (deterministic, standard library only):
  1. the --movies most-rated movies (ties broken by the smaller movieId);
  2. the --users users with the most ratings on those movies (ties: smaller userId);
  3. each kept user's ratings on kept movies, capped at their --max-per-user most recent ones
     (ties in time broken by movieId), so the shipped files stay under ~300 KB.

Output keeps the ml-latest-small layout (so the same loader reads both) but with LF line endings:
  ratings.csv  userId,movieId,rating,timestamp   sorted by userId, then timestamp, then movieId
  movies.csv   movieId,title,genres              sorted by movieId; titles quoted as in the source

Usage: python3 examples/data/make_demo.py [--source ../shared/data/ml-latest-small] [--out examples/data/demo]
(paths relative to the repository root; the defaults also work when run from any directory).
"""
import argparse
import collections
import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=os.path.join(ROOT, "..", "shared", "data", "ml-latest-small"),
                    help="the ml-latest-small directory (default: ../shared/data/ml-latest-small from the repo root)")
    ap.add_argument("--out", default=os.path.join(HERE, "demo"), help="output directory (default: examples/data/demo)")
    ap.add_argument("--movies", type=int, default=300)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--max-per-user", type=int, default=55)
    args = ap.parse_args()

    ratings_path = os.path.join(args.source, "ratings.csv")
    movies_path = os.path.join(args.source, "movies.csv")
    if not os.path.exists(ratings_path):
        sys.exit(f"make_demo: {ratings_path} not found (give --source)")

    with open(ratings_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header == ["userId", "movieId", "rating", "timestamp"], header
        ratings = [(int(u), int(m), r, int(t)) for u, m, r, t in reader]
    with open(movies_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header == ["movieId", "title", "genres"], header
        movies = {int(m): (title, genres) for m, title, genres in reader}

    per_movie = collections.Counter(m for _, m, _, _ in ratings)
    top_movies = {m for m, _ in sorted(per_movie.items(), key=lambda kv: (-kv[1], kv[0]))[:args.movies]}
    per_user = collections.Counter(u for u, m, _, _ in ratings if m in top_movies)
    top_users = {u for u, _ in sorted(per_user.items(), key=lambda kv: (-kv[1], kv[0]))[:args.users]}

    by_user = collections.defaultdict(list)
    for u, m, r, t in ratings:
        if u in top_users and m in top_movies:
            by_user[u].append((t, m, r))
    rows = []
    for u in sorted(by_user):
        kept = sorted(by_user[u])[-args.max_per_user:]
        rows.extend((u, m, r, t) for t, m, r in kept)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ratings.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        w.writerows(rows)
    with open(os.path.join(args.out, "movies.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["movieId", "title", "genres"])
        for m in sorted(top_movies):
            w.writerow([m, *movies[m]])

    users = len({u for u, *_ in rows})
    items = len({m for _, m, *_ in rows})
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in ("ratings.csv", "movies.csv"))
    print(f"make_demo: {len(rows)} ratings, {users} users, {items} rated movies of {len(top_movies)}; "
          f"{size} bytes in {args.out}")


if __name__ == "__main__":
    main()

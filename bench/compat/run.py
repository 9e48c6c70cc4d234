"""chorus.compat.implicit beside implicit's own ALS, on MovieLens 100k, judged by implicit's own
evaluation (train_test_split, ranking_metrics_at_k) with the same code for both models.

    OPENBLAS_NUM_THREADS=1 CHORUS_LIBRARY=.build/release/libchorus.so PYTHONPATH=bindings/python \\
        python3 bench/compat/run.py --data ../shared/data
"""

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares as ImplicitALS
from implicit.evaluation import ranking_metrics_at_k, train_test_split
from threadpoolctl import threadpool_limits

from chorus.compat.implicit import AlternatingLeastSquares as ChorusALS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    raw = np.loadtxt(os.path.join(args.data, "ml-100k", "u.data"), dtype=np.int64)
    users, items, ratings = raw[:, 0] - 1, raw[:, 1] - 1, raw[:, 2].astype(np.float32)
    matrix = sp.csr_matrix((ratings, (users, items)), shape=(users.max() + 1, items.max() + 1))
    train, test = train_test_split(matrix, train_percentage=0.8, random_state=42)
    print(f"ml-100k: {matrix.shape[0]} users x {matrix.shape[1]} items, {train.nnz} train / {test.nnz} test")
    models = {
        "implicit ALS": lambda: ImplicitALS(factors=64, iterations=15, regularization=0.01, num_threads=args.threads, random_state=42),
        "chorus compat, ALS only": lambda: ChorusALS(factors=64, iterations=15, regularization=0.01, num_threads=args.threads,
                                                     random_state=42, agents=["als"]),
        "chorus compat, full blend": lambda: ChorusALS(factors=64, iterations=15, regularization=0.01, num_threads=args.threads,
                                                       random_state=42),
    }
    print("| model | fit s | eval s | precision@10 | map@10 | ndcg@10 | auc@10 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, make in models.items():
        with threadpool_limits(1, "blas"):
            model = make()
            t0 = time.perf_counter()
            model.fit(train, show_progress=False)
            t1 = time.perf_counter()
            m = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)
            t2 = time.perf_counter()
        print(f"| {name} | {t1 - t0:.1f} | {t2 - t1:.1f} | {m['precision']:.4f} | {m['map']:.4f} | {m['ndcg']:.4f} | {m['auc']:.4f} |")


if __name__ == "__main__":
    main()

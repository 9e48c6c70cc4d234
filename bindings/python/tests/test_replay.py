"""chorus.replay.run: chorus replay from Python, its result, progress per stage, cancellation and
errors. A MovieLens-format fixture where the answer is clear (each user rates a run of consecutive
items of a 40-item ring): the online modes find the successor far more often than a random slate."""

import random

import pytest

import chorus
import chorus.replay


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    d = tmp_path_factory.mktemp("ml")
    rng = random.Random(5)
    rows = []
    for u in range(1, 61):
        start = rng.randrange(40)
        for j in range(12):
            rows.append((u, 1 + (start + j) % 40, 5.0, 1_000_000 + j * 1000 + rng.randrange(900)))
    with open(d / "ratings.csv", "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        f.writelines("%d,%d,%.1f,%d\n" % r for r in rows)
    with open(d / "movies.csv", "w") as f:
        f.write("movieId,title,genres\n")
        f.writelines("%d,Movie %d (2000),Drama\n" % (i, i) for i in range(1, 41))
    return str(d)


SMALL = ["--factors", "4", "--iterations", "3", "--bpr-epochs", "2", "--threads", "1", "--windows", "4"]


def test_run_returns_the_result_and_reports_progress(ring):
    seen = []
    result = chorus.replay.run(ring, modes=["online", "linucb", "random"], k=3, seed=3, extra_args=SMALL,
                               progress=lambda stage, fraction: seen.append((stage, fraction)))
    modes = {m["mode"]: m for m in result["modes"]}
    assert list(modes) == ["online", "linucb", "random"]
    assert result["k"] == 3 and result["seed"] == 3
    assert modes["random"]["hit_rate"] < 0.2 < 0.5 < modes["online"]["hit_rate"]
    assert modes["linucb"]["hit_rate"] > 0.2
    stages = {s for s, _ in seen}
    assert {"online", "linucb", "random"} <= stages, stages
    for mode in ("online", "linucb"):
        fractions = [f for s, f in seen if s == mode]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_a_progress_callable_can_cancel(ring):
    with pytest.raises(chorus.Cancelled):
        chorus.replay.run(ring, modes=["online"], k=3, extra_args=SMALL, progress=lambda stage, fraction: stage == "online")


def test_a_refused_argument_is_an_error_naming_it(ring):
    with pytest.raises(chorus.InvalidArgument, match="--modes"):
        chorus.replay.run(ring, modes=["bandit"], progress=False)
    with pytest.raises(chorus.InvalidArgument):
        chorus.replay.run(str(ring) + "/missing", progress=False)

"""chorus.report: a chorus eval --json result drawn as a PNG and a self-contained HTML page."""

import base64
import json
import os
import re
import subprocess
import sys

import pytest

import chorus
from chorus import report
from chorus.__main__ import find_cli

from conftest import BINDING_DIR, REPO_ROOT

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    """A small real eval run on the shipped demo catalogue, with two MMR weights."""
    out = tmp_path_factory.mktemp("eval") / "demo.json"
    run = subprocess.run([find_cli(), "eval", "--data", os.path.join(REPO_ROOT, "examples", "data", "demo"), "--k", "5",
                          "--diversity", "0.3,0.7", "--encoder", "hashing", "--factors", "8", "--iterations", "3",
                          "--bpr-epochs", "5", "--threads", "1", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return str(out)


def test_eval_json_names_agents_weights_and_row_kinds(demo_results):
    data = json.load(open(demo_results))
    assert len(data["agents"]) == len(data["blend_weights"]) >= 3
    assert abs(sum(data["blend_weights"]) - 1) < 1e-3
    kinds = [r["kind"] for r in data["rows"]]
    assert kinds.count("blend") == 1 and kinds.count("mmr") == 2
    assert [r["mmr"] for r in data["rows"] if r["kind"] == "mmr"] == [0.3, 0.7]
    assert {r["name"] for r in data["rows"] if r["kind"] == "agent"} <= set(data["agents"])


def test_python_m_chorus_report_writes_the_png_and_an_html_naming_every_agent(demo_results, tmp_path):
    out = tmp_path / "site" / "report.html"
    env = dict(os.environ, CHORUS_LIBRARY=chorus.library_path(),
               PYTHONPATH=os.pathsep.join(filter(None, [BINDING_DIR, os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, "-m", "chorus", "report", demo_results, "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    png = tmp_path / "site" / "report.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    page = out.read_text(encoding="utf-8")
    data = json.load(open(demo_results))
    for agent in data["agents"]:
        assert f"<td>{agent}</td>" in page, agent
    assert "blend MMR 0.70" in page
    # Self-contained: the PNG is in the page itself, byte for byte.
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert embedded and base64.b64decode(embedded.group(1)) == png.read_bytes()


def test_a_directory_out_receives_report_html_and_png(demo_results, tmp_path):
    html_path, png_path = report.write_report(demo_results, str(tmp_path / "dir"), title="mine")
    assert html_path == str(tmp_path / "dir" / "report.html") and os.path.getsize(png_path) > 10_000
    assert "<h1>mine</h1>" in open(html_path).read()


def test_a_result_without_diversity_or_weights_still_draws(tmp_path):
    # An engine without item vectors has no ILD; an older file has no agents list.
    data = {"k": 10, "rows": [{"name": "popularity", "recall": 0.1, "ndcg": 0.12, "diversity": None},
                              {"name": "blend", "recall": 0.2, "ndcg": 0.21, "diversity": None}]}
    html_path, png_path = report.write_report(data, str(tmp_path / "r.html"))
    assert open(png_path, "rb").read(8) == PNG_MAGIC
    assert "<td>popularity</td>" in open(html_path).read()


@pytest.mark.parametrize("data, message", [
    ([], "expected a JSON object"),
    ({"rows": [{"name": "x", "recall": 0, "ndcg": 0}]}, "no 'k' field"),
    ({"k": 10, "rows": []}, "'rows' must be a non-empty list"),
    ({"k": 10, "rows": [{"name": "x", "recall": 0}]}, r"rows\[0\] has no 'ndcg' field"),
    ({"k": 10, "rows": [{"name": "x", "recall": 0, "ndcg": 0}], "agents": ["a", "b"], "blend_weights": [1]},
     "2 agents but 1 blend_weights"),
])
def test_bad_results_are_refused_naming_the_field(data, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        report.write_report(data, str(tmp_path / "r.html"))
    assert not os.path.exists(tmp_path / "r.html")


def test_the_command_reports_a_file_that_is_not_json(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    assert report.main([str(bad), "--out", str(tmp_path / "x.html")]) == 1
    assert "is not JSON" in capsys.readouterr().err
    assert report.main([str(tmp_path / "missing.json")]) == 1


def _replay(modes=("frozen", "online"), windows=4):
    """A small replay result in `chorus replay --json`'s layout, made here."""
    bounds = [{"start": 100 * i, "end": 100 * (i + 1), "first_timestamp": i, "last_timestamp": i} for i in range(windows)]
    return {"command": "replay", "dataset": "ml-test", "seed": 3, "k": 10, "train_events": 400, "replayed_events": 100 * windows,
            "windows": bounds,
            "modes": [{"mode": m, "hit_rate": 0.1 * (j + 1), "hits": 10 * (j + 1), "scored": 100, "serve_seconds": 0.5,
                       "feed_seconds": 0.25, "refit_seconds": 0.0,
                       "windows": [{"hits": j + i, "scored": 25, "hit_rate": (j + i) / 25} for i in range(windows)]}
                      for j, m in enumerate(modes)]}


def test_a_replay_result_draws_hit_rate_over_time_and_lists_every_mode(tmp_path):
    data = _replay(("frozen", "online", "refit", "random"))
    path = tmp_path / "replay.json"
    path.write_text(json.dumps(data))
    assert report.main([str(path), "--out", str(tmp_path / "out" / "replay.html")]) == 0
    png = tmp_path / "out" / "replay.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    page = (tmp_path / "out" / "replay.html").read_text(encoding="utf-8")
    for m in ("frozen", "online", "refit", "random"):
        assert f"<td>{m}</td>" in page, m
    assert "hit@10 over 400 streamed events" in page and "<td>0.4000</td>" in page
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert embedded and base64.b64decode(embedded.group(1)) == png.read_bytes()
    # An empty window (no event scored) has a null rate: drawn as a gap, not an error.
    data["modes"][0]["windows"][1]["hit_rate"] = None
    assert os.path.getsize(report.write_report(data, str(tmp_path / "gap.html"))[1]) > 10_000


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("modes"), "no 'modes' field"),
    (lambda d: d.update(windows=[]), "'windows' must be a non-empty list"),
    (lambda d: d["modes"][1].pop("hit_rate"), r"modes\[1\] has no 'hit_rate' field"),
    (lambda d: d["modes"][0]["windows"].pop(), r"modes\[0\] \(frozen\) has 3 windows for 4"),
])
def test_bad_replay_results_are_refused_naming_the_field(change, message, tmp_path):
    data = _replay()
    change(data)
    with pytest.raises(ValueError, match=message):
        report.write_report(data, str(tmp_path / "r.html"))
    assert not os.path.exists(tmp_path / "r.html")

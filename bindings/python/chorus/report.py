"""A report of a ``chorus eval`` or ``chorus replay`` run to look at rather than read: a PNG and a
self-contained HTML page.

    chorus eval --data DIR --diversity 0.1,0.3,0.5 --json results.json
    python -m chorus report results.json --out report.html     # also writes report.png beside it
    chorus replay --data DIR --json replay.json
    python -m chorus report replay.json                        # replay.html and replay.png

A replay result (``"command": "replay"``) is drawn as its hit rate over time (one line per mode, over
the windows of the stream) beside each mode's hit rate over the whole stream, above a table of the
modes with their serve, feed and refit seconds.

The PNG has three panels: NDCG@k and Recall@k of each agent alone and of the blend; the
accuracy/diversity curve (NDCG@k against intra-list diversity, the blend re-ranked by maximal marginal
relevance at each ``--diversity`` weight, the agents alone as points); and each agent's share of the
blend (the weights the coordinator fitted). The HTML page embeds that PNG (no file beside it is needed)
above the table of every row. Drawing needs matplotlib (``pip install matplotlib``); reading the
JSON does not.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["load_results", "render_png", "render_html", "render_replay_png", "render_replay_html", "write_report", "main"]

_ROW_KEYS = ("name", "recall", "ndcg")
_METRICS = (("recall", "Recall"), ("ndcg", "NDCG"), ("hit_rate", "HR"), ("mrr", "MRR"),
            ("coverage", "Cov"), ("diversity", "ILD"))


def load_results(path: str) -> Dict[str, Any]:
    """Reads and checks the JSON ``chorus eval --json`` wrote.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not JSON, or lacks a field the report needs (named in the message).
    """
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not JSON ({e}); write it with `chorus eval --json {path}`") from None
    return check_replay(data, path) if is_replay(data) else check_results(data, path)


def is_replay(data: Any) -> bool:
    """Whether a parsed result is a ``chorus replay --json`` one."""
    return isinstance(data, dict) and data.get("command") == "replay"


def check_replay(data: Any, source: str = "the replay") -> Dict[str, Any]:
    """Checks a parsed ``chorus replay --json`` object; returns it. Raises ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    for key in ("k", "windows", "modes"):
        if key not in data:
            raise ValueError(f"{source}: no {key!r} field (is it the output of `chorus replay --json`?)")
    if not isinstance(data["windows"], list) or not data["windows"]:
        raise ValueError(f"{source}: 'windows' must be a non-empty list")
    for i, w in enumerate(data["windows"]):
        if not isinstance(w, dict) or "start" not in w or "end" not in w:
            raise ValueError(f"{source}: windows[{i}] has no 'start' and 'end'")
    if not isinstance(data["modes"], list) or not data["modes"]:
        raise ValueError(f"{source}: 'modes' must be a non-empty list")
    for i, m in enumerate(data["modes"]):
        if not isinstance(m, dict):
            raise ValueError(f"{source}: modes[{i}] is not an object")
        for key in ("mode", "hit_rate", "windows"):
            if key not in m:
                raise ValueError(f"{source}: modes[{i}] has no {key!r} field")
        if not isinstance(m["windows"], list) or len(m["windows"]) != len(data["windows"]):
            raise ValueError(f"{source}: modes[{i}] ({m['mode']}) has {len(m['windows']) if isinstance(m['windows'], list) else 'no'} "
                             f"windows for {len(data['windows'])}")
    return data


def check_results(data: Any, source: str = "the results") -> Dict[str, Any]:
    """Checks a parsed result object; returns it. Raises ValueError naming what is missing."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    for key in ("k", "rows"):
        if key not in data:
            raise ValueError(f"{source}: no {key!r} field (is it the output of `chorus eval --json`?)")
    if not isinstance(data["rows"], list) or not data["rows"]:
        raise ValueError(f"{source}: 'rows' must be a non-empty list")
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict):
            raise ValueError(f"{source}: rows[{i}] is not an object")
        for key in _ROW_KEYS:
            if key not in row:
                raise ValueError(f"{source}: rows[{i}] has no {key!r} field")
    agents = data.get("agents", [])
    weights = data.get("blend_weights", [])
    if len(agents) != len(weights):
        raise ValueError(f"{source}: {len(agents)} agents but {len(weights)} blend_weights")
    return data


def _kind(row: Dict[str, Any], agents: Sequence[str]) -> str:
    # Files written before rows carried their kind: tell them apart by name.
    kind = row.get("kind")
    if isinstance(kind, str):
        return kind
    name = str(row["name"])
    if name in agents:
        return "agent"
    if name.startswith("blend MMR"):
        return "mmr"
    if "(cold items" in name:
        return "cold"
    return "blend" if name == "blend" else "agent"


def _split(data: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]], List[Dict[str, Any]]]:
    """(agent rows, the blend row, MMR rows sorted by weight)."""
    agents = list(data.get("agents", []))
    solo = [r for r in data["rows"] if _kind(r, agents) == "agent"]
    blend = next((r for r in data["rows"] if _kind(r, agents) == "blend"), None)
    mmr = [r for r in data["rows"] if _kind(r, agents) == "mmr"]

    def weight(r: Dict[str, Any]) -> float:
        w = r.get("mmr")
        if isinstance(w, (int, float)):
            return float(w)
        try:
            return float(str(r["name"]).split()[-1])
        except ValueError:
            return math.inf
    return solo, blend, sorted(mmr, key=weight)


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else math.nan


def render_png(data: Dict[str, Any], path: str, title: Optional[str] = None, dpi: int = 100) -> str:
    """Draws the three panels into a PNG at ``path``; returns the path.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: ``data`` is not a result object (see :func:`check_results`).
    """
    data = check_results(data)
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed
    except ImportError as e:
        raise ImportError("chorus.report draws with matplotlib: pip install matplotlib") from e
    k = data["k"]
    solo, blend, mmr = _split(data)
    bars = solo + ([blend] if blend else [])
    fig = Figure(figsize=(13, 4.2), dpi=dpi, layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[1.35, 1.1, 0.8])

    # 1. Accuracy of each agent alone and of the blend.
    names = [str(r["name"]) for r in bars]
    xs = list(range(len(bars)))
    width = 0.4
    ax1.bar([x - width / 2 for x in xs], [_num(r["ndcg"]) for r in bars], width, label=f"NDCG@{k}", color="#3b75af")
    ax1.bar([x + width / 2 for x in xs], [_num(r["recall"]) for r in bars], width, label=f"Recall@{k}", color="#9ec3e6")
    if blend:
        ax1.axvspan(len(bars) - 1.5, len(bars) - 0.5, color="#f3e3c3", zorder=0)
    ax1.set_xticks(xs, names, rotation=30, ha="right")
    ax1.set_title("Accuracy: each agent alone, and the blend")
    ax1.legend(frameon=False)
    ax1.grid(axis="y", alpha=0.3)

    # 2. Accuracy against diversity: the blend re-ranked by MMR, the agents as points.
    for r in solo:
        x, y = _num(r.get("diversity")), _num(r["ndcg"])
        if math.isfinite(x) and math.isfinite(y):
            ax2.scatter([x], [y], color="#999999", s=18, zorder=2)
            ax2.annotate(str(r["name"]), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8, color="#555555")
    curve = ([blend] if blend else []) + mmr
    points = [(_num(r.get("diversity")), _num(r["ndcg"]), r) for r in curve]
    points = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if points:
        ax2.plot([p[0] for p in points], [p[1] for p in points], "-o", color="#c0504d", label="blend, MMR re-ranked", zorder=3)
        # Label the MMR weights, skipping a point too close to the last one labelled (they would overlap).
        xs2 = [p[0] for p in points] + [_num(r.get("diversity")) for r in solo]
        ys2 = [p[1] for p in points] + [_num(r["ndcg"]) for r in solo]
        span_x = (max(v for v in xs2 if math.isfinite(v)) - min(v for v in xs2 if math.isfinite(v))) or 1.0
        span_y = (max(v for v in ys2 if math.isfinite(v)) - min(v for v in ys2 if math.isfinite(v))) or 1.0
        last: Optional[Tuple[float, float]] = None
        for x, y, r in points:
            if last is not None and math.hypot((x - last[0]) / span_x, (y - last[1]) / span_y) < 0.06:
                continue
            w = r.get("mmr")
            label = "λ=0" if r is blend else (f"λ={w:g}" if isinstance(w, (int, float)) else str(r["name"]))
            ax2.annotate(label, (x, y), textcoords="offset points", xytext=(6, 2), fontsize=8, color="#c0504d")
            last = (x, y)
        ax2.legend(frameon=False, loc="best")
    else:
        ax2.text(0.5, 0.5, "no diversity measured\n(the engine has no item vectors)", ha="center", va="center",
                 transform=ax2.transAxes, color="#777777")
    ax2.set_xlabel(f"intra-list diversity ILD@{k}")
    ax2.set_ylabel(f"NDCG@{k}")
    ax2.set_title("Accuracy / diversity")
    ax2.grid(alpha=0.3)

    # 3. Each agent's share of the blend.
    agents = [str(a) for a in data.get("agents", [])]
    weights = [_num(w) for w in data.get("blend_weights", [])]
    if agents:
        total = sum(abs(w) for w in weights if math.isfinite(w)) or 1.0
        shares = [abs(w) / total if math.isfinite(w) else 0.0 for w in weights]
        ys = list(range(len(agents)))[::-1]
        ax3.barh(ys, shares, color="#6a9f58")
        ax3.set_yticks(ys, agents)
        for y, s in zip(ys, shares):
            ax3.text(s, y, f" {100 * s:.0f}%", va="center", fontsize=8)
        ax3.set_xlim(0, max(shares + [0.01]) * 1.25)
    else:
        ax3.text(0.5, 0.5, "no blend weights in this file", ha="center", va="center", transform=ax3.transAxes)
    ax3.set_title("Share of the blend")
    ax3.grid(axis="x", alpha=0.3)

    fig.suptitle(title or _title(data), fontsize=12)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def _title(data: Dict[str, Any]) -> str:
    users = data["rows"][0].get("users")
    parts = [f"chorus eval on {data.get('dataset', '?')}", f"top-{data['k']}"]
    if isinstance(users, int):
        parts.append(f"{users:,} test users")
    if isinstance(data.get("catalogue"), int):
        parts.append(f"{data['catalogue']:,} items")
    return ", ".join(parts)


def render_html(data: Dict[str, Any], png_path: str, title: Optional[str] = None) -> str:
    """The report page as a string: the PNG at ``png_path`` embedded (base64), then a table of every
    row and the blend weights. The page needs no other file."""
    data = check_results(data)
    with open(png_path, "rb") as f:
        png = base64.b64encode(f.read()).decode("ascii")
    k = data["k"]
    heading = html.escape(title or _title(data))
    agents = list(data.get("agents", []))

    def cell(x: Any) -> str:
        v = _num(x)
        return f"{v:.4f}" if math.isfinite(v) else "–"

    head = "".join(f"<th>{label}@{k}</th>" for _, label in _METRICS)
    rows = []
    for r in data["rows"]:
        kind = _kind(r, agents)
        weight = cell(r.get("weight")) if r.get("weight") is not None else "–"
        rows.append(f'<tr class="{html.escape(kind)}"><td>{html.escape(str(r["name"]))}</td><td>{weight}</td>'
                    + "".join(f"<td>{cell(r.get(key))}</td>" for key, _ in _METRICS)
                    + f"<td>{html.escape(str(r.get('users', '')))}</td></tr>")
    weights = "".join(f"<tr><td>{html.escape(str(a))}</td><td>{cell(w)}</td></tr>"
                      for a, w in zip(agents, data.get("blend_weights", [])))
    fit = data.get("fit_seconds")
    facts = [f"dataset <b>{html.escape(str(data.get('dataset', '?')))}</b>", f"top-{k}"]
    if isinstance(data.get("catalogue"), int):
        facts.append(f"{data['catalogue']:,} items in training")
    if isinstance(fit, (int, float)):
        facts.append(f"fitted in {fit:.1f} s")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1320px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ padding: 3px 10px; text-align: right; border-bottom: 1px solid #ddd; }}
th:first-child, td:first-child {{ text-align: left; }}
tr.blend td {{ font-weight: bold; background: #f8efdc; }}
tr.mmr td, tr.cold td {{ color: #555; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{heading}</h1>
<p>{" · ".join(facts)}. Metrics over each test user's held-out items, seen items excluded; ILD is the mean
intra-list diversity (1 − cosine of item vectors over pairs); MMR rows re-rank the blend for diversity.</p>
<img alt="accuracy of each agent and the blend, accuracy against diversity, shares of the blend"
 src="data:image/png;base64,{png}">
<h2>Every row</h2>
<table><tr><th>recommender</th><th>weight</th>{head}<th>users</th></tr>
{chr(10).join(rows)}
</table>
<h2>Blend weights</h2>
<p>Fitted by the coordinator on a validation hold-out of the training data.</p>
<table><tr><th>agent</th><th>weight</th></tr>
{weights}
</table>
</body></html>
"""


def _replay_title(data: Dict[str, Any]) -> str:
    return (f"chorus replay on {data.get('dataset', '?')}: hit@{data['k']} over "
            f"{data.get('replayed_events', '?'):,} streamed events" if isinstance(data.get("replayed_events"), int)
            else f"chorus replay on {data.get('dataset', '?')}: hit@{data['k']}")


def render_replay_png(data: Dict[str, Any], path: str, title: Optional[str] = None, dpi: int = 100) -> str:
    """Draws a replay: hit rate per window of the stream, one line per mode, and each mode's hit rate
    over the whole stream. Returns the path.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: ``data`` is not a replay result (see :func:`check_replay`).
    """
    data = check_replay(data)
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("chorus.report draws with matplotlib: pip install matplotlib") from e
    k = data["k"]
    fig = Figure(figsize=(12, 4.2), dpi=dpi, layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[2.2, 1])
    xs = [(_num(w["start"]) + _num(w["end"])) / 2 for w in data["windows"]]
    for m in data["modes"]:
        ys = [_num(w.get("hit_rate")) if isinstance(w, dict) else math.nan for w in m["windows"]]
        ax1.plot(xs, ys, "-o", markersize=3, label=str(m["mode"]))
    ax1.set_xlabel("streamed events")
    ax1.set_ylabel(f"hit@{k} in the window")
    ax1.set_title("Hit rate over time")
    ax1.grid(alpha=0.3)
    ax1.legend(frameon=False, fontsize=8)
    names = [str(m["mode"]) for m in data["modes"]]
    rates = [_num(m["hit_rate"]) for m in data["modes"]]
    ys2 = list(range(len(names)))[::-1]
    ax2.barh(ys2, [r if math.isfinite(r) else 0 for r in rates], color="#3b75af")
    ax2.set_yticks(ys2, names)
    for y, r in zip(ys2, rates):
        ax2.text(r if math.isfinite(r) else 0, y, f" {r:.3f}" if math.isfinite(r) else " –", va="center", fontsize=8)
    ax2.set_xlim(0, max([r for r in rates if math.isfinite(r)] + [0.01]) * 1.3)
    ax2.set_title(f"hit@{k} over the whole stream")
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(title or _replay_title(data), fontsize=12)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def render_replay_html(data: Dict[str, Any], png_path: str, title: Optional[str] = None) -> str:
    """A replay's page: the PNG embedded, then a table of the modes."""
    data = check_replay(data)
    with open(png_path, "rb") as f:
        png = base64.b64encode(f.read()).decode("ascii")
    heading = html.escape(title or _replay_title(data))

    def cell(x: Any, digits: int = 4) -> str:
        v = _num(x)
        return f"{v:.{digits}f}" if math.isfinite(v) else "–"

    rows = "".join(f"<tr><td>{html.escape(str(m['mode']))}</td><td>{cell(m['hit_rate'])}</td>"
                   f"<td>{html.escape(str(m.get('hits', '')))}</td><td>{html.escape(str(m.get('scored', '')))}</td>"
                   f"<td>{cell(m.get('serve_seconds'), 2)}</td><td>{cell(m.get('feed_seconds'), 2)}</td>"
                   f"<td>{cell(m.get('refit_seconds'), 2)}</td></tr>" for m in data["modes"])
    k = data["k"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1220px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ padding: 3px 10px; text-align: right; border-bottom: 1px solid #ddd; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{heading}</h1>
<p>dataset <b>{html.escape(str(data.get('dataset', '?')))}</b> · seed {html.escape(str(data.get('seed', '?')))} ·
fitted on {html.escape(str(data.get('train_events', '?')))} ratings, then each streamed event served a slate of {k}
(a hit when it holds the user's next positive item) and fed to the modes that learn.</p>
<img alt="hit rate over time per mode, and over the whole stream" src="data:image/png;base64,{png}">
<h2>Modes</h2>
<table><tr><th>mode</th><th>hit@{k}</th><th>hits</th><th>scored</th><th>serve s</th><th>feed s</th><th>refit s</th></tr>
{rows}
</table>
</body></html>
"""


def write_report(results: Any, out: str, title: Optional[str] = None) -> Tuple[str, str]:
    """Writes the PNG and the HTML page of a ``chorus eval --json`` or ``chorus replay --json`` result;
    returns (html, png) paths.

    Args:
        results: the JSON file's path, or its parsed object.
        out: the HTML file to write (its PNG goes beside it, same name with ``.png``), or a directory
            (created if missing) to receive ``report.html`` and ``report.png``.
        title: the heading (default: dataset, k, users, items).

    Raises:
        ValueError: the results lack a field the report needs.
        ImportError: matplotlib is not installed.
        OSError: a file cannot be read or written.
    """
    if isinstance(results, (str, os.PathLike)):
        data = load_results(str(results))
    else:
        data = check_replay(results) if is_replay(results) else check_results(results)
    if out.lower().endswith((".html", ".htm")):
        html_path = out
        png_path = os.path.splitext(out)[0] + ".png"
        parent = os.path.dirname(out)
        if parent:
            os.makedirs(parent, exist_ok=True)
    else:
        os.makedirs(out, exist_ok=True)
        html_path, png_path = os.path.join(out, "report.html"), os.path.join(out, "report.png")
    if is_replay(data):
        render_replay_png(data, png_path, title)
        page = render_replay_html(data, png_path, title)
    else:
        render_png(data, png_path, title)
        page = render_html(data, png_path, title)
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    return html_path, png_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m chorus report RESULTS.json [--out report.html] [--title TEXT]``."""
    parser = argparse.ArgumentParser(prog="python -m chorus report",
                                     description="Draw a chorus eval --json or chorus replay --json result as a PNG and an HTML page.")
    parser.add_argument("results", help="the JSON file `chorus eval --json FILE` or `chorus replay --json FILE` wrote")
    parser.add_argument("--out", help="the HTML file to write (the PNG goes beside it), or a directory for "
                        "report.html and report.png (default: RESULTS with .html)")
    parser.add_argument("--title", help="the page's and the figure's heading")
    args = parser.parse_args(argv)
    out = args.out or os.path.splitext(args.results)[0] + ".html"
    try:
        html_path, png_path = write_report(args.results, out, args.title)
    except (OSError, ValueError, ImportError) as e:
        print(f"chorus report: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {html_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Replay evaluation of online learning from Python: :func:`run` runs ``chorus replay`` (the
command-line tool, see :mod:`chorus.__main__` for where it is looked for) and returns its JSON
result, with a tqdm progress bar per mode in a terminal or notebook (the same ``progress=`` rules as
:meth:`chorus.Engine.fit`).

    result = chorus.replay.run("../shared/data", dataset="ml-100k", modes=["frozen", "online", "linucb"])
    chorus.report.write(result, "replay.html")   # or: python -m chorus report replay.json
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from typing import Any, Dict, List, Optional, Sequence

from . import _progress
from .errors import Cancelled, InvalidArgument

#: The tool prints each stage's progress as "  <stage> 10% 20% ...  (1.2 s)" on stderr.
_TOKEN = re.compile(r"(\d{1,3})%|\(\d[^)]*\)|([A-Za-z][\w-]*)")


def run(data: str, *, dataset: Optional[str] = None, modes: Optional[Sequence[str]] = None, k: int = 10, seed: int = 42,
        extra_args: Sequence[str] = (), progress: _progress.Progress = None) -> Dict[str, Any]:
    """Runs ``chorus replay`` and returns its result (the ``--json`` layout: settings, and per mode
    the hit rate, hits, events scored, seconds and per-window hit rates).

    Args:
        data: a MovieLens directory, or a parent of ``ml-100k/`` / ``ml-latest-small/``.
        dataset: which sub-directory of a parent (default: the tool's choice).
        modes: modes to run (default all: frozen, online, refit, popularity, random, linucb,
            thompson, policy).
        k, seed: slate length and seed.
        extra_args: further ``chorus replay`` flags (``["--limit", "5000"]``, ``["--exploration", "0.03"]``).
        progress: None (a bar per stage when in a terminal or notebook and tqdm is installed),
            False, True, or ``progress(stage, fraction)`` (the stage is a mode or a fit stage;
            returning True stops the replay and raises :class:`chorus.Cancelled`).

    Raises:
        FileNotFoundError: the tool is not found.  InvalidArgument: the tool refused an argument
        (its message).  Cancelled: the progress callable asked to stop.
    """
    from .__main__ import find_cli

    args: List[str] = [find_cli(), "replay", "--data", os.fspath(data), "--k", str(int(k)), "--seed", str(int(seed))]
    if dataset is not None:
        args += ["--dataset", str(dataset)]
    if modes is not None:
        args += ["--modes", ",".join(str(m) for m in modes)]
    args += [str(a) for a in extra_args]
    fn, bar = _progress.callback(progress, "replay")
    with tempfile.TemporaryDirectory(prefix="chorus-replay-") as tmp:
        out = os.path.join(tmp, "replay.json")
        args += ["--json", out]
        if fn is None:
            args.append("--quiet")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1)
        errors: List[str] = []
        stage = ""
        cancelled = False
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                errors.append(line)
                if fn is None:
                    continue
                for m in _TOKEN.finditer(line):
                    if m.group(2):
                        stage = m.group(2)
                    elif m.group(1) and stage:
                        if fn(stage, min(100, int(m.group(1))) / 100.0):
                            cancelled = True
                            proc.kill()
                            break
                if cancelled:
                    break
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if bar is not None:
                bar.__exit__(None, None, None)
        if cancelled:
            raise Cancelled("replay cancelled by the progress callback")
        if proc.returncode != 0:
            lines = [x.strip() for x in "".join(errors).splitlines() if x.strip()]
            reason = next((x for x in lines if x.lower().startswith("error")), lines[-1] if lines else "no message")
            raise InvalidArgument(f"chorus replay failed (exit {proc.returncode}): {reason}")
        with open(out, encoding="utf-8") as f:
            result: Dict[str, Any] = json.load(f)
    return result

"""Progress bars for long calls (fit, knowledge-graph training, text encoding).

``progress=None`` (the default) shows a tqdm bar when tqdm is installed, :data:`ENABLED` is True
and the call runs in a terminal (stderr is a TTY) or a Jupyter notebook; ``progress=False``
never shows one, ``progress=True`` always does (if tqdm is installed), and a callable
``progress(stage, fraction)`` is called instead (returning True cancels).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Union

#: Module-level switch: False silences every automatic bar (``chorus.progress.ENABLED = False``,
#: or ``chorus.set_progress(False)``). An explicit ``progress=True`` still shows one.
ENABLED = True

ProgressFn = Callable[[str, float], Optional[bool]]
Progress = Union[None, bool, ProgressFn]


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _tqdm() -> Any:
    try:
        if _in_notebook():
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm
        return tqdm
    except ImportError:
        return None


def wanted(progress: Progress) -> bool:
    """Whether `progress` asks for a bar here."""
    if progress is True:
        return True
    if progress is None:
        stderr = sys.stderr
        return ENABLED and (_in_notebook() or bool(stderr is not None and hasattr(stderr, "isatty") and stderr.isatty()))
    return False


class Bar:
    """A tqdm bar driven by the library's ``(stage, fraction)`` reports, as a progress callback.
    Use as a context manager; a no-op where tqdm is missing."""

    def __init__(self, description: str, total: float = 100.0, unit: str = "%") -> None:
        tqdm = _tqdm()
        self._bar = None if tqdm is None else tqdm(total=total, desc=description, unit=unit, leave=False,
                                                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        self._total = total
        self._done = 0.0

    def __call__(self, stage: str, fraction: float) -> bool:
        bar = self._bar
        if bar is not None:
            target = max(0.0, min(1.0, float(fraction))) * self._total
            if stage:
                bar.set_postfix_str(stage, refresh=False)
            if target > self._done:
                bar.update(target - self._done)
                self._done = target
        return False

    def advance(self, amount: float) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.close()


def callback(progress: Progress, description: str) -> tuple:
    """``(fn, bar)``: the callable to hand the library (None for none) and the bar to close after
    the call (None when the caller's own callable or nothing is used).

    Raises:
        TypeError: `progress` is neither None, a bool nor callable.
    """
    if progress is None or isinstance(progress, bool):
        if wanted(progress):
            bar = Bar(description)
            return bar, bar
        return None, None
    if not callable(progress):
        raise TypeError("progress must be None, a bool, or callable: progress(stage: str, fraction: float) -> bool | None")
    return progress, None

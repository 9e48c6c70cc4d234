"""The library's log lines into Python's :mod:`logging`, logger ``chorus``.

At import the binding installs a C log callback (``chorus_set_log_callback``) that forwards each
line at its level (CHORUS_LOG_DEBUG/INFO/WARNING to DEBUG/INFO/WARNING). The ctypes callback
object lives in this module for as long as it is installed, nothing it does can raise into C, and
it is removed at interpreter exit (library threads may outlive the interpreter's teardown).
"""

from __future__ import annotations

import atexit
import logging
from typing import Optional

from . import _capi
from .errors import check

logger = logging.getLogger("chorus")

_LEVELS = {_capi.CHORUS_LOG_DEBUG: logging.DEBUG, _capi.CHORUS_LOG_INFO: logging.INFO,
           _capi.CHORUS_LOG_WARNING: logging.WARNING}


def _forward(level: int, message: Optional[bytes], _user_data: Optional[int]) -> None:
    try:
        py_level = _LEVELS.get(level, logging.WARNING)
        if logger.isEnabledFor(py_level):
            logger.log(py_level, "%s", (message or b"").decode("utf-8", "replace"))
    except BaseException:  # noqa: BLE001 -- nothing may propagate into the library
        pass


_callback = _capi.chorus_log_fn(_forward)
_installed = False


def forward_logs(enabled: bool = True) -> None:
    """Installs (or with False removes) the forwarding of library log lines to logger ``chorus``.
    Installed at import; a host that sets its own C log callback replaces it."""
    global _installed
    if enabled:
        check(_capi.chorus_set_log_callback(_callback, None))
    else:
        check(_capi.chorus_set_log_callback(_capi.chorus_log_fn(), None))
    _installed = enabled


def _uninstall() -> None:
    if _installed:
        _capi.chorus_set_log_callback(_capi.chorus_log_fn(), None)


forward_logs(True)
atexit.register(_uninstall)

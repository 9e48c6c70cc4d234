"""``python -m chorus ARGS...`` runs the Chorus command-line tool (``chorus-cli``) with ARGS;
``python -m chorus report RESULTS.json ...`` draws a ``chorus eval --json`` result instead
(:mod:`chorus.report`, in Python: the tool has no ``report`` command).

The tool is looked for, in order: ``$CHORUS_CLI`` (which must then exist), a copy inside this
package, the directory of the loaded libchorus.so (``.build/release`` in a source tree), the
source tree's ``build/chorus`` (``make cli``), then ``chorus-cli`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import List, Optional, Sequence

ENV_VAR = "CHORUS_CLI"
_HERE = os.path.dirname(os.path.abspath(__file__))


def candidates() -> List[str]:
    """The places searched for the tool, in order (``$CHORUS_CLI`` excepted)."""
    from . import library_path
    lib_dir = os.path.dirname(library_path())
    return [os.path.join(_HERE, "chorus-cli"), os.path.join(lib_dir, "chorus-cli"),
            os.path.normpath(os.path.join(_HERE, "..", "..", "..", "build", "chorus"))]


def find_cli() -> str:
    """The path of the chorus command-line tool.

    Raises:
        FileNotFoundError: ``$CHORUS_CLI`` names a missing file, or the tool is nowhere.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise FileNotFoundError(f"${ENV_VAR} is set to {env!r}, which is not an executable file")
        return env
    searched = candidates()
    for path in searched:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    on_path = shutil.which("chorus-cli")
    if on_path:
        return on_path
    raise FileNotFoundError("cannot find the chorus command-line tool; looked in " + ", ".join(searched)
                            + f" and for chorus-cli on PATH. Build it with `make cli` in the Chorus source tree, "
                            f"or set ${ENV_VAR} to its path")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["report"]:
        from . import report
        return report.main(args[1:])
    try:
        cli = find_cli()
    except FileNotFoundError as e:
        print(f"python -m chorus: {e}", file=sys.stderr)
        return 2
    try:
        return subprocess.call([cli, *args])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

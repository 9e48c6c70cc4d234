"""The typed, documented face: py.typed, mypy --strict on the examples, the README's quickstart
being the file the tests run, docstrings on the public API, and ``python -m chorus``."""

import inspect
import os
import re
import stat
import subprocess
import sys

import pytest

import chorus

from conftest import BINDING_DIR, REPO_ROOT

EXAMPLES = os.path.join(REPO_ROOT, "examples", "python")


def test_the_package_is_marked_typed():
    assert os.path.isfile(os.path.join(os.path.dirname(chorus.__file__), "py.typed"))


def test_mypy_strict_passes_on_the_examples():
    pytest.importorskip("mypy")
    files = sorted(os.path.join(EXAMPLES, f) for f in os.listdir(EXAMPLES) if f.endswith(".py"))
    env = dict(os.environ, MYPYPATH=BINDING_DIR)
    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file",
                          os.path.join(BINDING_DIR, "pyproject.toml"), *files],
                         env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_readme_quickstart_is_the_file_the_tests_run():
    readme = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    match = re.search(r"<!-- examples/python/quickstart.py -->\n```python\n(.*?)```", readme, re.S)
    assert match, "README.md has no block marked <!-- examples/python/quickstart.py -->"
    with open(os.path.join(EXAMPLES, "quickstart.py"), encoding="utf-8") as f:
        assert match.group(1) == f.read()


@pytest.mark.parametrize("obj", [chorus.Engine, chorus.Encoder, chorus.KnowledgeGraph])
def test_public_methods_are_annotated_and_documented(obj):
    for name, fn in inspect.getmembers(obj, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert fn.__doc__, f"{obj.__name__}.{name} has no docstring"
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, f"{obj.__name__}.{name} has no return type"
        for p in list(sig.parameters.values())[1:]:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                assert p.annotation is not inspect.Parameter.empty, f"{obj.__name__}.{name}({p.name}) is not annotated"


def run_module(args, **env):
    full = dict(os.environ, CHORUS_LIBRARY=chorus.library_path(),
                PYTHONPATH=os.pathsep.join(filter(None, [BINDING_DIR, os.environ.get("PYTHONPATH")])), **env)
    return subprocess.run([sys.executable, "-m", "chorus", *args], env=full, capture_output=True, text=True, timeout=120)


def test_python_m_chorus_runs_the_cli(tmp_path):
    fake = tmp_path / "chorus-cli"
    fake.write_text("#!/bin/sh\necho \"cli got: $*\"\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    run = run_module(["eval", "--help"], CHORUS_CLI=str(fake))
    assert run.stdout.strip() == "cli got: eval --help" and run.returncode == 3


def test_python_m_chorus_without_a_cli_says_so(tmp_path):
    run = run_module(["--help"], CHORUS_CLI=str(tmp_path / "missing"))
    assert run.returncode == 2 and "CHORUS_CLI" in run.stderr and "not an executable file" in run.stderr
    from chorus import __main__ as cli
    old_candidates, old_path = cli.candidates, os.environ.get("PATH")
    cli.candidates = lambda: [str(tmp_path / "nowhere")]
    os.environ.pop("CHORUS_CLI", None)
    os.environ["PATH"] = str(tmp_path)
    try:
        with pytest.raises(FileNotFoundError, match="make cli"):
            cli.find_cli()
        assert cli.main(["--help"]) == 2
    finally:
        cli.candidates = old_candidates
        os.environ["PATH"] = old_path or ""


def test_the_real_cli_when_built():
    from chorus import __main__ as cli
    try:
        path = cli.find_cli()
    except FileNotFoundError:
        pytest.skip("chorus-cli is not built (make cli)")
    run = run_module(["--help"], CHORUS_CLI=path)
    assert "chorus" in (run.stdout + run.stderr).lower()

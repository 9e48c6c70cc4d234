"""Packaging: `pip install ./bindings/python` puts libchorus.so inside the package, and the
installed package loads its own copy. Also runs the quickstart example.

Set CHORUS_SKIP_PIP_TEST=1 to skip the pip tests (they build the package, which takes seconds
and, with build isolation, needs setuptools from the package index).
"""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

import chorus
from chorus import _version

from conftest import BINDING_DIR, REPO_ROOT

skip_pip = pytest.mark.skipif(bool(os.environ.get("CHORUS_SKIP_PIP_TEST")), reason="CHORUS_SKIP_PIP_TEST is set")


def _setuptools_can_build_wheels_offline() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    has_bdist_wheel = (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None
    return major >= 61 and has_bdist_wheel


def pip(*args, env=None, cwd=None):
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args, "--no-deps"]
    if _setuptools_can_build_wheels_offline():
        cmd.append("--no-build-isolation")
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def build_env():
    env = dict(os.environ)
    env["CHORUS_LIBRARY"] = chorus.library_path()  # the library these tests run against
    return env


def copy_sources(dst):
    """A copy of the binding's sources without any built library or build output."""
    shutil.copytree(BINDING_DIR, dst, ignore=shutil.ignore_patterns(
        "libchorus.so", "build", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    return dst


@skip_pip
def test_pip_install_target_packages_the_library(tmp_path):
    target = tmp_path / "site"
    result = pip("install", "--target", str(target), BINDING_DIR, env=build_env())
    assert result.returncode == 0, result.stdout + result.stderr
    packaged = target / "chorus" / "libchorus.so"
    assert packaged.is_file()
    # The package version is the VERSION file's (pyproject.toml reads it), and the file ships along.
    assert (target / "chorus" / "VERSION").read_text().strip() == _version.VERSION
    assert (target / f"chorus-{_version.VERSION}.dist-info").is_dir()
    # The installed package, imported without CHORUS_LIBRARY and from elsewhere, loads its own copy.
    env = {k: v for k, v in os.environ.items() if k not in ("CHORUS_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = str(target)
    code = (
        "import chorus, numpy as np\n"
        "print(chorus.__file__)\n"
        "print(chorus.library_path())\n"
        "with chorus.Engine() as e:\n"
        "    e.add_interactions([1, 1, 2, 2, 3], [10, 11, 10, 12, 11])\n"
        "    e.fit(factors=4, iterations=3, threads=1)\n"
        "    ids, scores = e.recommend([1, 2], k=1)\n"
        "    assert ids.shape == (1 + 1, 1)\n"
        "print(chorus.__version__)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    module_file, library, version = run.stdout.split()
    assert os.path.samefile(os.path.dirname(module_file), target / "chorus")
    assert os.path.samefile(library, packaged)
    assert version == chorus.__version__


@skip_pip
def test_wheel_is_platform_specific(tmp_path):
    src = copy_sources(tmp_path / "src")
    result = pip("wheel", "--wheel-dir", str(tmp_path / "wheels"), str(src), env=build_env())
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = [p.name for p in (tmp_path / "wheels").iterdir()]
    assert len(wheels) == 1, wheels
    name = wheels[0]
    assert name.startswith("chorus-") and name.endswith(".whl")
    assert "-none-any" not in name and "linux" in name, name
    import zipfile
    with zipfile.ZipFile(tmp_path / "wheels" / name) as z:
        assert "chorus/libchorus.so" in z.namelist()
        assert "chorus/_capi.py" in z.namelist()
        wheel_meta = [n for n in z.namelist() if n.endswith(".dist-info/WHEEL")][0]
        assert "Root-Is-Purelib: false" in z.read(wheel_meta).decode()


@skip_pip
def test_pip_install_without_a_library_says_make_lib(tmp_path):
    src = copy_sources(tmp_path / "src")  # outside the tree: no ../../.build/release
    env = {k: v for k, v in os.environ.items() if k != "CHORUS_LIBRARY"}
    result = pip("install", "--target", str(tmp_path / "site"), str(src), env=env)
    assert result.returncode != 0
    assert "make lib" in result.stdout + result.stderr


def test_quickstart_example_runs():
    example = os.path.join(REPO_ROOT, "examples", "python", "quickstart.py")
    if not os.path.isfile(example):
        pytest.skip("examples/python/quickstart.py not beside the binding")
    env = dict(os.environ, CHORUS_LIBRARY=chorus.library_path(),
               PYTHONPATH=os.pathsep.join(filter(None, [BINDING_DIR, os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, example], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "recommend" in run.stdout.lower()

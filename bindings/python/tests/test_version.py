"""One version source: the top-level VERSION file. Every other place that states the version must
agree with it: include/chorus.h's macros, the binding's chorus/VERSION (a link to it), the package
metadata pyproject.toml derives from it, _capi's constants, _lib's expected major, and the loaded
library's chorus_version() / chorus_version_number().
"""

import os
import re

import pytest

import chorus
from chorus import _capi, _lib, _version

from conftest import BINDING_DIR, REPO_ROOT

VERSION_FILE = os.path.join(REPO_ROOT, "VERSION")
HEADER = os.path.join(REPO_ROOT, "include", "chorus.h")
PYPROJECT = os.path.join(BINDING_DIR, "pyproject.toml")
in_tree = pytest.mark.skipif(not (os.path.isfile(VERSION_FILE) and os.path.isfile(HEADER)),
                             reason="not run from the Chorus source tree")


def source_version():
    with open(VERSION_FILE, encoding="ascii") as f:
        text = f.read()
    assert re.fullmatch(r"\d+\.\d+\.\d+\n?", text), f"VERSION holds {text!r}, not MAJOR.MINOR.PATCH"
    return text.strip()


def numbers(version):
    return tuple(int(p) for p in version.split("."))


@in_tree
def test_header_macros_are_the_version_file():
    with open(HEADER, encoding="utf-8") as f:
        header = f.read()
    macros = tuple(int(re.search(rf"^#define CHORUS_VERSION_{part} (\d+)$", header, re.M).group(1))
                   for part in ("MAJOR", "MINOR", "PATCH"))
    assert macros == numbers(source_version()), "include/chorus.h's CHORUS_VERSION_* differ from VERSION"


@in_tree
def test_binding_reads_the_version_file():
    assert os.path.samefile(_version.PATH, VERSION_FILE) or _version.read()[0] == source_version()
    assert _version.VERSION == source_version()
    assert (_version.MAJOR, _version.MINOR, _version.PATCH) == numbers(source_version())
    assert (_capi.CHORUS_VERSION_MAJOR, _capi.CHORUS_VERSION_MINOR, _capi.CHORUS_VERSION_PATCH) == numbers(source_version())
    assert _lib.EXPECTED_MAJOR == numbers(source_version())[0]


@in_tree
def test_library_reports_the_version_file():
    major, minor, patch = numbers(source_version())
    assert _capi.chorus_version().decode("ascii") == source_version() == chorus.__version__
    assert _capi.chorus_version_number() == major * 10000 + minor * 100 + patch == _capi.CHORUS_VERSION_NUMBER


def test_pyproject_takes_the_version_from_the_file():
    with open(PYPROJECT, encoding="utf-8") as f:
        text = f.read()
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = None
    if tomllib is not None:
        config = tomllib.loads(text)
        assert "version" not in config["project"], "pyproject.toml states a version of its own"
        assert "version" in config["project"]["dynamic"]
        assert config["tool"]["setuptools"]["dynamic"]["version"] == {"file": "chorus/VERSION"}
        assert "VERSION" in config["tool"]["setuptools"]["package-data"]["chorus"]
    else:
        assert not re.search(r"^version\s*=", text, re.M)
        assert 'version = {file = "chorus/VERSION"}' in text


def test_a_malformed_version_file_is_an_import_error(tmp_path):
    bad = tmp_path / "VERSION"
    bad.write_text("0.1\n")
    with pytest.raises(ImportError, match="MAJOR.MINOR.PATCH"):
        _version.read(str(bad))
    with pytest.raises(ImportError, match="cannot read"):
        _version.read(str(tmp_path / "missing"))

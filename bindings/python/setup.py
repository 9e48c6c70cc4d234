"""Build glue for the Chorus Python binding (metadata lives in pyproject.toml).

Two things pyproject.toml alone cannot say:

- the wheel carries libchorus.so inside the package: build_py copies it from $CHORUS_LIBRARY, or
  else from ../../.build/release/libchorus.so (relative to this file: the library `make lib`
  builds in the source tree), and fails with instructions if neither exists;
- the wheel is platform-specific (it holds a native library) but not tied to a Python ABI (the
  binding uses ctypes only), so it is tagged py3-none-<platform>.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
LIB_NAME = "libchorus.so"


def library_source():
    env = os.environ.get("CHORUS_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise SystemExit(
                f"error: CHORUS_LIBRARY is set to {env!r}, which is not a file. "
                "Run `make lib` in the Chorus source tree first, or point CHORUS_LIBRARY at libchorus.so."
            )
        return os.path.abspath(env)
    tree = os.path.normpath(os.path.join(HERE, "..", "..", ".build", "release", LIB_NAME))
    if os.path.isfile(tree):
        return tree
    raise SystemExit(
        f"error: libchorus.so not found: CHORUS_LIBRARY is not set and {tree} does not exist. "
        "Run `make lib` in the Chorus source tree first (or set CHORUS_LIBRARY to a built "
        "libchorus.so), then install the binding again."
    )


class build_py(_build_py):
    """Also copies libchorus.so into the built package."""

    def run(self):
        source = library_source()  # fail before building anything
        super().run()
        target_dir = os.path.join(self.build_lib, "chorus")
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, LIB_NAME)
        self.announce(f"copying {source} -> {target}", level=2)
        shutil.copyfile(source, target)
        os.chmod(target, 0o755)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        return outputs + [os.path.join(self.build_lib, "chorus", LIB_NAME)]


class BinaryDistribution(Distribution):
    """Holds a native library: install into platlib, never a pure wheel."""

    def has_ext_modules(self):
        return True


cmdclass = {"build_py": build_py}

try:  # setuptools >= 70.1 ships bdist_wheel; older ones use the wheel package's.
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # pragma: no cover
    try:
        from wheel.bdist_wheel import bdist_wheel as _bdist_wheel
    except ImportError:
        _bdist_wheel = None

if _bdist_wheel is not None:

    class bdist_wheel(_bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _python, _abi, platform = super().get_tag()
            return "py3", "none", platform

    cmdclass["bdist_wheel"] = bdist_wheel

setup(distclass=BinaryDistribution, cmdclass=cmdclass)

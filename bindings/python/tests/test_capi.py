"""Layers 1 and 2: the loader and the 1:1 ctypes declarations against include/chorus.h."""

import ctypes
import inspect
import os
import re
import subprocess
import sys

import pytest

import chorus
from chorus import _capi, _lib, errors

from conftest import BINDING_DIR, REPO_ROOT, make_clusters

HEADER = os.path.join(REPO_ROOT, "include", "chorus.h")
needs_header = pytest.mark.skipif(not os.path.isfile(HEADER), reason="include/chorus.h not beside the binding")


def header_text() -> str:
    with open(HEADER, encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def header_functions():
    return sorted(set(re.findall(r"\b(chorus_[a-z0-9_]+)\s*\(", header_text())))


def header_structs():
    return sorted(set(re.findall(r"typedef\s+struct\s+(chorus_[a-z0-9_]+)\s*\{", header_text())))


# ---- version ------------------------------------------------------------------------------------


def test_version_strings():
    assert chorus.__version__ == chorus.library_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", chorus.__version__)
    number = _capi.chorus_version_number()
    major, minor, patch = (int(p) for p in chorus.__version__.split("."))
    assert number == major * 10000 + minor * 100 + patch
    assert major == _lib.EXPECTED_MAJOR == _capi.CHORUS_VERSION_MAJOR


@needs_header
def test_header_version_macros_match_capi():
    text = header_text()
    for name in ("MAJOR", "MINOR", "PATCH"):
        value = int(re.search(rf"#define CHORUS_VERSION_{name} (\d+)", text).group(1))
        assert getattr(_capi, f"CHORUS_VERSION_{name}") == value


def test_major_mismatch_is_refused():
    with pytest.raises(ImportError, match="major version 1"):
        _lib.check_version(_lib.lib, expected_major=1, path=_lib.LIBRARY_PATH)
    with pytest.raises(ImportError):
        _lib.load_library(_lib.LIBRARY_PATH, expected_major=_lib.EXPECTED_MAJOR + 1)
    assert _lib.check_version(_lib.lib) == _capi.chorus_version_number()


def test_library_path():
    assert os.path.isfile(chorus.library_path())
    if os.environ.get("CHORUS_LIBRARY"):
        assert os.path.samefile(chorus.library_path(), os.environ["CHORUS_LIBRARY"])


def _import_in_subprocess(env_library):
    env = dict(os.environ, PYTHONPATH=BINDING_DIR, CHORUS_LIBRARY=env_library)
    return subprocess.run([sys.executable, "-c", "import chorus"], env=env, capture_output=True, text=True)


def test_missing_env_library_is_an_import_error(tmp_path):
    result = _import_in_subprocess(str(tmp_path / "nope.so"))
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "CHORUS_LIBRARY" in result.stderr


def test_non_library_is_an_import_error(tmp_path):
    fake = tmp_path / "libchorus.so"
    fake.write_bytes(b"not an ELF file")
    result = _import_in_subprocess(str(fake))
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "cannot load" in result.stderr


# ---- declarations ---------------------------------------------------------------------------------


@needs_header
def test_every_header_function_is_declared():
    functions = header_functions()
    assert len(functions) >= 21
    source = inspect.getsource(_capi)
    comments = "\n".join(line for line in source.splitlines() if line.lstrip().startswith("#"))
    for name in functions:
        fn = getattr(_capi, name, None)
        assert fn is not None, f"{name} is not declared in chorus/_capi.py"
        assert fn.argtypes is not None, f"{name} has no argtypes"
        assert f"{name}(" in comments, f"{name}'s C prototype is not pasted above its declaration"


@needs_header
def test_every_header_struct_is_mirrored_and_checked():
    structs = header_structs()
    assert set(structs) == set(_capi.STRUCTS)
    for name in structs:
        assert ctypes.sizeof(_capi.STRUCTS[name]) == _capi.chorus_struct_size(name.encode())


@needs_header
def test_status_macros_match_header():
    text = header_text()
    for name, value in re.findall(r"#define (CHORUS_(?:OK|ERR_[A-Z_]+))\s+\(?(-?\d+)\)?", text):
        assert getattr(_capi, name) == int(value), name
        if name != "CHORUS_OK":
            assert errors.STATUS_CLASSES[int(value)].status == int(value)
    for name in ("CHORUS_RECOMMEND_INCLUDE_SEEN", "CHORUS_USER_KNOWN", "CHORUS_USER_COLD_FALLBACK",
                 "CHORUS_LOG_DEBUG", "CHORUS_LOG_INFO", "CHORUS_LOG_WARNING"):
        value = int(re.search(rf"#define {name} (\d+)u?", text).group(1))
        assert getattr(_capi, name) == value, name


def test_struct_size_unknown_name_is_zero():
    assert _capi.chorus_struct_size(b"no_such_struct") == 0


def test_struct_size_drift_is_refused(monkeypatch):
    class Grown(ctypes.Structure):
        _fields_ = _capi.chorus_fit_params._fields_ + [("new_field", ctypes.c_uint64)]

    monkeypatch.setitem(_capi.STRUCTS, "chorus_fit_params", Grown)
    with pytest.raises(ImportError, match="chorus_fit_params"):
        _capi.check_struct_sizes()


def test_status_names():
    assert _capi.chorus_status_name(0) == b"CHORUS_OK"
    assert _capi.chorus_status_name(-2) == b"CHORUS_ERR_NOT_FOUND"
    assert _capi.chorus_status_name(-10) == b"CHORUS_ERR_INTERNAL"
    assert _capi.chorus_status_name(-12345) == b"CHORUS_UNKNOWN_STATUS"
    assert _capi.chorus_status_name(7) == b"CHORUS_UNKNOWN_STATUS"


def test_params_init_fill_struct_size():
    for struct, init in ((_capi.chorus_engine_params, _capi.chorus_engine_params_init),
                         (_capi.chorus_engine_stats, _capi.chorus_engine_stats_init)):
        p = struct()
        assert init(ctypes.byref(p)) == _capi.CHORUS_OK
        assert p.struct_size == ctypes.sizeof(struct)
    # Grown in 0.3.0: the one-argument function writes the 0.2.0 layout, the sized one all of it.
    p = _capi.chorus_fit_params()
    assert _capi.chorus_fit_params_init(ctypes.byref(p)) == _capi.CHORUS_OK
    assert p.struct_size == _capi.chorus_fit_params.agents.offset
    assert _capi.chorus_fit_params_init_sized(ctypes.byref(p), ctypes.sizeof(p)) == _capi.CHORUS_OK
    assert p.struct_size == ctypes.sizeof(p) and p.agents is None and p.bpr_epochs == 0
    # chorus_recommend_params grew in 0.3.0 (request_ids) the same way.
    r = _capi.chorus_recommend_params()
    assert _capi.chorus_recommend_params_init(ctypes.byref(r)) == _capi.CHORUS_OK
    assert r.struct_size == _capi.chorus_recommend_params.request_ids.offset
    assert _capi.chorus_recommend_params_init_sized(ctypes.byref(r), ctypes.sizeof(r)) == _capi.CHORUS_OK
    assert r.struct_size == ctypes.sizeof(r) and not r.request_ids
    learning = _capi.chorus_learning_params()
    assert _capi.chorus_learning_params_init(ctypes.byref(learning)) == _capi.CHORUS_OK
    # chorus_learning_params grew its privacy fields: the function writes the layout before them.
    assert learning.struct_size == _capi.chorus_learning_params.noise_multiplier.offset
    assert learning.mode == _capi.CHORUS_LEARNING_OFF and learning.seed == 42
    assert _capi.chorus_learning_params_init_sized(ctypes.byref(learning), ctypes.sizeof(learning)) == _capi.CHORUS_OK
    assert learning.struct_size == ctypes.sizeof(learning) and learning.clip_norm == 0 and learning.release_slates == 0


def test_null_arguments_are_invalid_argument():
    assert _capi.chorus_engine_params_init(None) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_create(None, None) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_engine_get_stats(None, None) == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert _capi.chorus_last_error() != b""
    _capi.chorus_engine_free(None)  # a no-op


def test_create_with_null_params_and_bad_struct_size():
    handle = _capi.chorus_engine_p()
    assert _capi.chorus_engine_create(None, ctypes.byref(handle)) == _capi.CHORUS_OK
    assert handle
    _capi.chorus_engine_free(handle)
    params = _capi.chorus_engine_params()
    _capi.chorus_engine_params_init(ctypes.byref(params))
    params.struct_size = 3
    handle = _capi.chorus_engine_p()
    status = _capi.chorus_engine_create(ctypes.byref(params), ctypes.byref(handle))
    assert status == _capi.CHORUS_ERR_INVALID_ARGUMENT
    assert not handle  # *out is NULL on failure


def test_last_error_text_reaches_the_exception():
    with pytest.raises(chorus.NotFound) as info:
        chorus.Engine.load("/nonexistent/chorus/snapshot.bin")
    assert str(info.value)
    assert str(info.value) == info.value.message


def test_log_callback():
    lines = []

    @_capi.chorus_log_fn
    def on_log(level, message, _user_data):
        lines.append((level, message.decode("utf-8", "replace")))

    assert _capi.chorus_set_log_callback(on_log, None) == _capi.CHORUS_OK
    try:
        data = make_clusters()
        with chorus.Engine() as engine:
            engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
            engine.fit(factors=4, iterations=2, threads=1)
    finally:
        assert _capi.chorus_set_log_callback(_capi.chorus_log_fn(), None) == _capi.CHORUS_OK
        chorus.forward_logs(True)  # the binding's own forwarding, replaced above
    assert lines  # fit logs its blend weights at INFO
    for level, message in lines:
        assert level in (_capi.CHORUS_LOG_DEBUG, _capi.CHORUS_LOG_INFO, _capi.CHORUS_LOG_WARNING)
        assert isinstance(message, str)


def test_agent_info_out_of_range_is_not_found():
    with chorus.Engine() as engine:
        count = ctypes.c_size_t()
        assert _capi.chorus_engine_agent_count(engine._handle, ctypes.byref(count)) == _capi.CHORUS_OK
        name = ctypes.c_char_p()
        status = _capi.chorus_engine_agent_info(engine._handle, count.value, ctypes.byref(name), None)
        assert status == _capi.CHORUS_ERR_NOT_FOUND


def test_recommend_buffer_too_small():
    data = make_clusters()
    with chorus.Engine() as engine:
        engine.add_interactions(data.users, data.items, data.weights, data.timestamps)
        engine.fit(factors=4, iterations=2, threads=1)
        users = (ctypes.c_int64 * 2)(*data.users[:2])
        ids = (ctypes.c_int64 * 5)()
        scores = (ctypes.c_float * 5)()
        status = _capi.chorus_engine_recommend(engine._handle, users, 2, 3, None, ids, scores, 5, None, 0, None)
        assert status == _capi.CHORUS_ERR_BUFFER_TOO_SMALL
        with pytest.raises(chorus.BufferTooSmall):
            errors.check(status)
        shares = (ctypes.c_float * 6)()
        status = _capi.chorus_engine_recommend(engine._handle, users, 2, 3, None, (ctypes.c_int64 * 6)(),
                                               (ctypes.c_float * 6)(), 6, shares, 6, None)
        assert status == _capi.CHORUS_ERR_BUFFER_TOO_SMALL
        status = _capi.chorus_engine_similar_items(engine._handle, (ctypes.c_int64 * 1)(int(data.items[0])), 1, 3,
                                                   None, ids, scores, 2)
        assert status == _capi.CHORUS_ERR_BUFFER_TOO_SMALL

"""The installed package: where it came from, its version against the library's, and how it
finds libsat."""
import importlib.metadata
import os
import re
import subprocess
import sys

import pytest

import libsat
from libsat import _ffi

SOURCE_PACKAGE = os.path.realpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))


def test_imported_from_an_installed_package():
    here = os.path.realpath(os.path.dirname(libsat.__file__))
    assert not here.startswith(SOURCE_PACKAGE + os.sep), here
    assert os.path.isfile(os.path.join(here, "py.typed"))
    assert importlib.metadata.version("libsat") == libsat.__version__


def test_version_is_the_library_and_header_version(lib, include_dir):
    with open(os.path.join(include_dir, "sat.h"), encoding="utf-8") as f:
        header = re.search(r'#define SAT_VERSION_STRING "([^"]+)"', f.read()).group(1)
    assert libsat.__version__ == header == lib.version
    assert lib.version_info == tuple(int(v) for v in header.split("."))


def test_loads_the_expected_library(lib, lib_path):
    assert os.path.realpath(lib.path) == os.path.realpath(lib_path)


def test_refuses_a_library_of_another_version(stub_library):
    with pytest.raises(libsat.LibraryVersionError) as e:
        libsat.load(stub_library)
    msg = str(e.value)
    assert stub_library in msg and "9.0.0" in msg and libsat.__version__ in msg
    assert "LIBSAT_LIBRARY" in msg


def _import_with(library):
    env = dict(os.environ, LIBSAT_LIBRARY=library)
    return subprocess.run([sys.executable, "-c", "import libsat"], env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_fails_clearly_on_a_version_mismatch(stub_library):
    out = _import_with(stub_library)
    assert out.returncode != 0
    assert "LibraryVersionError" in out.stderr and "is libsat 9.0.0" in out.stderr


def test_import_fails_clearly_without_a_library(tmp_path):
    out = _import_with(str(tmp_path / "libsat.so.0"))
    assert out.returncode != 0
    assert "ImportError: the libsat Python package cannot load the libsat C library" in out.stderr


def test_finds_the_library_through_pkg_config(tmp_path, monkeypatch):
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "libsat.so.0").write_bytes(b"")
    (tmp_path / "libsat.pc").write_text(
        f"libdir={libdir}\nName: libsat\nDescription: d\nVersion: 0.1.0\nLibs: -L{libdir} -lsat\n")
    monkeypatch.delenv("LIBSAT_LIBRARY", raising=False)
    monkeypatch.delenv("PKG_CONFIG_LIBDIR", raising=False)
    monkeypatch.setenv("PKG_CONFIG_PATH", str(tmp_path))
    assert _ffi.find_library() == str(libdir / "libsat.so.0")
    monkeypatch.setenv("LIBSAT_LIBRARY", "/elsewhere/libsat.so.0")
    assert _ffi.find_library() == "/elsewhere/libsat.so.0"
    assert _ffi.find_library("/given/libsat.so") == "/given/libsat.so"

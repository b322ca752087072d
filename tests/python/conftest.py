"""pytest setup for the Python bindings: the installed package, the libsat it must load, and
the C programs the tests compare with.

The libsat package is imported as installed (tests/python/CMakeLists.txt installs it into a
virtual environment with pip); it finds the C library itself ($LIBSAT_LIBRARY, pkg-config,
the system's search).

    --expect-library=PATH  the libsat.so the package must have found
    --reference=PATH       the sat-py-reference program
    --cc=PATH              C compiler for the struct layout test
    --include-dir=DIR      directory of the sat.h the package is checked against
    --stub-library=PATH    a libsat.so that reports another version (sat-py-version-stub)
"""
import sys

import pytest

import libsat


def pytest_addoption(parser):
    parser.addoption("--expect-library", default=None, help="libsat.so the package must load")
    parser.addoption("--reference", default=None, help="path of the sat-py-reference program")
    parser.addoption("--cc", default=None, help="C compiler for the layout test")
    parser.addoption("--include-dir", default=None, help="directory holding sat.h")
    parser.addoption("--stub-library", default=None,
                     help="a libsat.so reporting a foreign version")


def _required(pytestconfig, name):
    value = pytestconfig.getoption(name)
    if not value:
        raise pytest.UsageError(f"{name}=... is required (tests/python/CMakeLists.txt passes it)")
    return value


@pytest.fixture(scope="session")
def lib_path(pytestconfig):
    return _required(pytestconfig, "--expect-library")


@pytest.fixture(scope="session")
def lib():
    return libsat.load()


@pytest.fixture(scope="session")
def cc(pytestconfig):
    return _required(pytestconfig, "--cc")


@pytest.fixture(scope="session")
def include_dir(pytestconfig):
    return _required(pytestconfig, "--include-dir")


@pytest.fixture(scope="session")
def stub_library(pytestconfig):
    return _required(pytestconfig, "--stub-library")


@pytest.fixture
def ctx(lib):
    with libsat.Context(num_threads=1, seed=1, library=lib) as c:
        yield c


@pytest.fixture(scope="module")
def torch_threads():
    """PyTorch on one thread during a module's parity tests (PyTorch itself is imported by
    the tests that use it, so that the other tests run without it)."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def reference(pytestconfig):
    return _required(pytestconfig, "--reference")


@pytest.fixture
def need(lib):
    """need('attack', 'evaluate'): skips unless the loaded library exports them."""
    def check(*names):
        missing = [n for n in names if not lib.has(n)]
        if missing:
            pytest.skip("not exported by this libsat build yet: " +
                        ", ".join("sat_" + n for n in missing))
    return check


def _as_failure(report, what):
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{what} skipped, and this suite fails on a skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test is a failure here: a suite that passes by leaving tests out says
    nothing. (Expected failures, xfail, keep their meaning.)"""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        _as_failure(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a module or class skipped while it is collected."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        _as_failure(report, collector.nodeid)


def pytest_terminal_summary(terminalreporter):
    parity = sys.modules.get("test_torch_parity")
    results = getattr(parity, "RESULTS", None)
    if results:
        terminalreporter.write_sep("-", "max abs difference libsat vs PyTorch (madry-cnn, batch 4)")
        for act, (d_logits, d_grad) in results.items():
            terminalreporter.write_line(f"{act:<11} logits {d_logits:.3e}   input gradient {d_grad:.3e}")

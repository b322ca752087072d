"""pytest setup for the Python bindings: which libsat to load and the C reference host.

    --libsat=PATH          the shared library to test (else $LIBSAT_LIBRARY, else the system's)
    --libsat-prefix=DIR    an install prefix: DIR/lib[/<multiarch>]/libsat.so.0 is loaded
    --reference=PATH       the sat-py-reference program (tests that need it skip without it)
"""
import glob
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))

import libsat  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--libsat", default=None, help="path of libsat.so to test")
    parser.addoption("--libsat-prefix", default=None, help="install prefix holding libsat")
    parser.addoption("--reference", default=None, help="path of the sat-py-reference program")


def _from_prefix(prefix):
    for pattern in ("lib/*/libsat.so.0", "lib64/libsat.so.0", "lib/libsat.so.0",
                    "lib/*/libsat.so", "lib64/libsat.so", "lib/libsat.so"):
        hits = sorted(glob.glob(os.path.join(prefix, pattern)))
        if hits:
            return hits[0]
    raise pytest.UsageError(f"no libsat.so.0 under {prefix}/lib*: is the install staged?")


@pytest.fixture(scope="session")
def lib_path(pytestconfig):
    path = pytestconfig.getoption("--libsat")
    prefix = pytestconfig.getoption("--libsat-prefix")
    if prefix:
        path = _from_prefix(prefix)
    return path  # None: $LIBSAT_LIBRARY or the system search


@pytest.fixture(scope="session")
def lib(lib_path):
    return libsat.load(lib_path)


@pytest.fixture
def ctx(lib):
    with libsat.Context(num_threads=1, seed=1, library=lib) as c:
        yield c


@pytest.fixture(scope="session")
def reference(pytestconfig):
    path = pytestconfig.getoption("--reference")
    if not path or not os.path.exists(path):
        pytest.skip("sat-py-reference not given (--reference=PATH)")
    return path


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

"""Fixtures for Berth's integration tests: real `berth serve` processes on 127.0.0.1.

* `berth_bin`      the server binary ($BERTH_BIN, else <repo>/.build/debug/berth); missing => FAIL.
* `shared_server`  one server per test module (tests use unique repository names).
* `reg`            a `Client` on the module's shared server; after each test it checks that the
                   server is still alive and that no request got a 5xx (either fails the test).
* `fresh_server`   a server of the test's own, on its own empty data directory, with
                   `.restart()`, `.restart(hard=True)` (kill -9 + start) and `.kill9()`.
* `client_for`     builds extra `Client`s (e.g. one per thread).
* `fixtures_dir`   ../shared/fixtures; missing => skip with a clear message.

Every server started by the run is stopped at the end, whatever happens (fixture teardown,
a session-finish hook, atexit, and PR_SET_PDEATHSIG if pytest itself is killed).
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import berth_helpers as bh  # noqa: E402
import two_nodes  # noqa: E402

atexit.register(bh.stop_all_servers)


def pytest_configure(config):
    config.addinivalue_line("markers", "one_node(reason): the test needs one process's data directory; "
                                       "skipped with BERTH_TEST_TOPOLOGY=two-nodes")


def pytest_collection_modifyitems(config, items):
    if not two_nodes.TWO_NODES:
        return
    for item in items:
        mark = item.get_closest_marker("one_node")
        if mark is not None:
            why = mark.args[0] if mark.args else mark.kwargs.get("reason", "needs one node")
            item.add_marker(pytest.mark.skip(reason=f"one node only: {why}"))


def pytest_report_header(config):
    return f"berth topology: {two_nodes.TOPOLOGY}"


def pytest_sessionfinish(session, exitstatus):
    bh.stop_all_servers()
    two_nodes.stop_shared()


@pytest.fixture(scope="session")
def berth_bin() -> Path:
    path = bh.berth_binary()
    if not path.exists():
        pytest.fail(f"berth binary not found at {path}: build it (`swift build`) or set BERTH_BIN",
                    pytrace=False)
    if not os.access(path, os.X_OK):
        pytest.fail(f"berth binary at {path} is not executable", pytrace=False)
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    d = bh.FIXTURES_DIR
    if not (d / "images").is_dir():
        pytest.skip(f"test fixtures not found at {d} (expected ../shared/fixtures next to the repo; "
                    f"set BERTH_FIXTURES to override)")
    return d


def _new_server(berth_bin, base: Path) -> bh.BerthServer:
    if two_nodes.TWO_NODES:  # BERTH_TEST_TOPOLOGY=two-nodes: PostgreSQL + S3, two nodes behind a proxy
        from ecr_helpers import default_env
        srv = two_nodes.make_server(berth_bin, base, env=default_env())
    else:
        srv = bh.BerthServer(berth_bin, data_dir=base / "data", log_dir=base / "logs")
    srv.start()
    return srv


@pytest.fixture(scope="module")
def shared_server(berth_bin, tmp_path_factory):
    srv = _new_server(berth_bin, tmp_path_factory.mktemp("berth-shared"))
    try:
        yield srv
    finally:
        srv.dispose()


def _check_client_after_test(srv: bh.BerthServer, clients, was_alive_before=True):
    problems = []
    if not srv.alive():
        rc = srv.proc.returncode if srv.proc is not None else srv.last_returncode
        problems.append(f"the berth process died during this test (exit code {rc})\n{srv.log_tail(4000)}")
    errors = [e for c in clients for e in c.server_errors]
    if errors:
        problems.append("server answered 5xx (never allowed):\n  " + "\n  ".join(errors[:20]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def client_for():
    made = []

    def make(server):
        c = bh.Client(server)
        made.append(c)
        return c

    make.made = made
    return make


@pytest.fixture
def reg(shared_server, client_for):
    if not shared_server.alive():  # a previous test killed it: give this test a working server
        shared_server.start()
    c = client_for(shared_server)
    yield c
    _check_client_after_test(shared_server, client_for.made)


@pytest.fixture
def fresh_server(berth_bin, tmp_path, client_for):
    srv = _new_server(berth_bin, tmp_path / "berth")
    try:
        yield srv
        # A test that kills the server on purpose leaves it stopped; only check the 5xx record.
        errors = [e for c in client_for.made for e in c.server_errors]
        if errors:
            pytest.fail("server answered 5xx (never allowed):\n  " + "\n  ".join(errors[:20]),
                        pytrace=False)
    finally:
        srv.dispose()


@pytest.fixture
def fresh(fresh_server, client_for):
    """A Client on a fresh server of the test's own."""
    return client_for(fresh_server)

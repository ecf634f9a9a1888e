from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_timeout

from hyperpod_local.mock import HyperPodMock
from tests import postgresql
from tests.support import ServerProcess, kill_live_servers

_names = itertools.count()


# pytest-timeout's default (a SIGALRM that raises in the test) can be swallowed when it lands
# in a gc callback, and the test then runs on. A timer thread instead kills the test's
# servers, prints every thread's stack and ends the worker process: the test fails, always.
@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool:
    def expire() -> None:
        kill_live_servers()
        pytest_timeout.timeout_timer(item, settings)

    timer = threading.Timer(settings.timeout, expire)
    timer.name = f"timeout {item.nodeid}"
    timer.daemon = True
    timer.start()
    item.stash[_TIMER] = timer
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool:
    timer = item.stash.get(_TIMER, None)
    if timer is not None:
        timer.cancel()
        timer.join()
    return True


_TIMER = pytest.StashKey[threading.Timer]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    postgresql.drop_all()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server per test process, shared by tests that use unique cluster names. Its
    clock is manual: time moves when a test calls `server.advance()` or `server.settle()`."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), "--clock", "manual").start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, on an empty data dir, with a manual clock."""
    proc = ServerProcess(tmp_path / "data", "--clock", "manual").start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


# id(client) -> (settle, advance) of the world that client talks to.
_TIME: dict[int, tuple[Callable[[], float], Callable[[float], float]]] = {}


@pytest.fixture(params=["server", "mock"])
def sm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A boto3 SageMaker client, against the real server over HTTP or against the mock."""
    if request.param == "server":
        server = request.getfixturevalue("server")
        client = server.client()
        _TIME[id(client)] = (server.settle, server.advance)
        yield client
    else:
        store = {"database_url": postgresql.fresh_database()} if postgresql.ON_POSTGRESQL else {}
        with HyperPodMock(tmp_path_factory.mktemp("mock"), **store) as hp:
            client = hp.client()
            _TIME[id(client)] = (hp.settle, hp.advance)
            yield client
    _TIME.pop(id(client), None)


@pytest.fixture
def settle(sm: Any) -> Callable[[], float]:
    """Run the world of `sm` until no operation is in flight."""
    return _TIME[id(sm)][0]


@pytest.fixture
def advance(sm: Any) -> Callable[[float], float]:
    """Move the world of `sm` forward by some HyperPod seconds."""
    return _TIME[id(sm)][1]


@pytest.fixture
def name() -> str:
    """A cluster name no other test of this run uses."""
    return f"c{os.getpid()}-{next(_names)}"

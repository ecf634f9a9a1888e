from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperpod_local.mock import HyperPodMock
from tests.support import ServerProcess

_names = itertools.count()


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
        with HyperPodMock(tmp_path_factory.mktemp("mock")) as hp:
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

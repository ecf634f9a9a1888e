from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperpod_local.mock import HyperPodMock
from tests.support import ServerProcess

_names = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server per test process, shared by tests that use unique cluster names."""
    proc = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, on an empty data dir."""
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


@pytest.fixture(params=["server", "mock"])
def sm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A boto3 SageMaker client, against the real server over HTTP or against the mock."""
    if request.param == "server":
        yield request.getfixturevalue("server").client()
    else:
        with HyperPodMock(tmp_path_factory.mktemp("mock")) as hp:
            yield hp.client()


@pytest.fixture
def name() -> str:
    """A cluster name no other test of this run uses."""
    return f"c{os.getpid()}-{next(_names)}"

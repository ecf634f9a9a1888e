"""The pytest plugin: the `hyperpod` fixture is an open hyperpod_local.mock()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hyperpod_local.mock import HyperPodMock


@pytest.fixture
def hyperpod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HyperPodMock]:
    with HyperPodMock(tmp_path_factory.mktemp("hyperpod")) as hp:
        yield hp

"""hyperpod-local: a self-hosted, wire-compatible SageMaker HyperPod cluster API."""

from hyperpod_local.mock import HyperPodMock, mock
from hyperpod_local.version import __version__

__all__ = ["HyperPodMock", "__version__", "mock"]

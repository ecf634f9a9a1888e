"""hyperpod-local: a self-hosted, wire-compatible SageMaker HyperPod cluster API."""

from hyperpod_local.mock import HyperPodMock, mock

__all__ = ["HyperPodMock", "__version__", "mock"]
__version__ = "0.1.0"

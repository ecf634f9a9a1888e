"""The installed botocore SageMaker model, with validators and serializers compiled from it."""

from __future__ import annotations

import functools
import os

import botocore.loaders
from botocore.model import OperationModel, ServiceModel

from hyperpod_local.wire.serialize import Serializer, compile_serializer, primary_lists
from hyperpod_local.wire.validate import Validator, compile_validator


class ServiceSpec:
    """What the model says of each operation, compiled once and kept.

    Each of the 400-odd operations is compiled on its first call, so a cold start compiles
    none. The compiled functions depend only on the immutable model, so one ServiceSpec serves
    every backend of the process.
    """

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.target_prefix: str = model.metadata["targetPrefix"]
        self.operation_names = frozenset(model.operation_names)
        self._validators: dict[str, Validator] = {}
        self._serializers: dict[str, Serializer] = {}

    def operation(self, name: str) -> OperationModel:
        return self.model.operation_model(name)

    def validator(self, name: str) -> Validator:
        found = self._validators.get(name)
        if found is None:
            found = compile_validator(self.operation(name).input_shape)
            self._validators[name] = found
        return found

    def serializer(self, name: str) -> Serializer:
        found = self._serializers.get(name)
        if found is None:
            shape = self.operation(name).output_shape
            found = compile_serializer(shape, primary_lists(name, shape))
            self._serializers[name] = found
        return found


@functools.cache
def sagemaker_spec() -> ServiceSpec:
    # Cached: the model is immutable, and loading it costs 50 ms that a test suite making
    # a mock per test should pay once.
    # The loader alone, as botocore's session uses it: the session's own imports would add
    # about 50 ms to a cold start.
    loader = botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))
    model = ServiceModel(loader.load_service_model("sagemaker", "service-2"), "sagemaker")
    return ServiceSpec(model)

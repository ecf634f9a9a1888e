"""The installed botocore SageMaker model, with validators and serializers compiled from it."""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel

from hyperpod_local.wire.serialize import Serializer, compile_serializer
from hyperpod_local.wire.validate import Validator, compile_validator


class ServiceSpec:
    """What the model says of each operation, compiled once per operation and kept.

    The compiled functions only depend on the (immutable) model, so one ServiceSpec is
    shared by every backend of the process.
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
            found = compile_serializer(self.operation(name).output_shape)
            self._serializers[name] = found
        return found

    def warm(self, names: Any) -> None:
        for name in names:
            self.validator(name)
            self.serializer(name)


@functools.cache
def sagemaker_spec() -> ServiceSpec:
    return ServiceSpec(botocore.session.get_session().get_service_model("sagemaker"))

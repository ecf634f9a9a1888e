"""What a fault spec may hold, checked before anything is looked up or stored: a field a kind
does not take, a value of the wrong JSON type, out of range, or text that is not valid Unicode
is refused (ValidationError naming the field), so nothing is kept that cannot be shown again.

Where the data API has a shape for the same thing, its limits apply as the SageMaker model
gives them (length, pattern, enum): Cluster (ClusterNameOrArn), InstanceId (ClusterNodeId),
InstanceGroupName (ClusterInstanceGroupName), InstanceType (ClusterInstanceType), AlarmName
(AlarmName), Account (AccountId), ExtensionName (ExtensionName), Code
(ExtensionHealthIssueCode); Operations are the model's operation names.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.faults import (
    EXTENSION_ACTIONS,
    FAULT_FIELDS,
    GOVERNANCE_RESOURCES,
    FaultKind,
    a_fault,
    check_hardware_type,
)
from hyperpod_local.wire.model import sagemaker_spec
from hyperpod_local.wire.validate import compile_pattern

# The documented limits (docs/fidelity.md) of the fields that have no model shape.
MAX_LATENCY_SECONDS = 30.0
# A day of HyperPod time: longer than any real health agent takes, and finite.
MAX_DETECTION_DELAY = 86400.0
# Times a counted fault strikes: far past any test, and inside SQLite's integers.
MAX_COUNT = 1_000_000
# Operations one throttling or latency fault names.
MAX_OPERATIONS = 64
MAX_TYPE_LENGTH = 64
# A random_hardware fault: a node's mean time between failures, in HyperPod hours (at least
# 36 seconds; at most over a thousand years), a type's weight in its mix, and its seed (an
# integer any JSON reader keeps exactly).
MIN_MTBF_HOURS, MAX_MTBF_HOURS = 0.01, 10_000_000.0
MAX_WEIGHT = 1_000_000.0
MAX_SEED = 2**53 - 1
# Regions are not checked in open auth; this keeps one a short, plain name.
_REGION = re.compile(r"[a-z0-9](-?[a-z0-9])*")
MAX_REGION_LENGTH = 32

Check = Callable[[str, Any], Any]


def checked(spec: dict[str, Any]) -> tuple[FaultKind, dict[str, Any]]:
    """The spec's kind and its fields, nulls dropped (as the data API drops them), each
    checked; raises ValidationError for the first field at fault."""
    kind = spec.get("Kind")
    if not isinstance(kind, str) or kind not in set(FaultKind):
        shown = kind if isinstance(kind, str) and _is_text(kind) and len(kind) <= 64 else "?"
        raise ValidationError(
            f"Kind must be one of {', '.join(FaultKind)}; got {shown!r}."
            if isinstance(kind, str)
            else f"Kind must be one of {', '.join(FaultKind)}; got {type(kind).__name__}."
        )
    allowed = FAULT_FIELDS[FaultKind(kind)]
    fields: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "Kind" or value is None:
            continue
        if key not in allowed:
            shown_key = key if _is_text(key) and len(key) <= 64 else "?"
            raise ValidationError(
                f"{a_fault(kind).capitalize()} takes no field {shown_key!r}; it takes "
                f"{', '.join(sorted(allowed))}."
            )
        fields[key] = _checks()[key](key, value)
    return FaultKind(kind), fields


def _is_text(value: str) -> bool:
    """Valid Unicode: no lone surrogates, which no UTF-8 answer can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(key: str, value: Any, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be a string.")
    if not _is_text(value):
        raise ValidationError(f"{key} must be valid Unicode text (it holds a lone surrogate).")
    if not low <= len(value) <= high:
        raise ValidationError(f"{key} must be {low} to {high} characters long.")
    return value


def _model_string(shape_name: str) -> Check:
    """A check with the limits of the model's string shape `shape_name`."""
    metadata = sagemaker_spec().model.shape_for(shape_name).metadata
    low, high = int(metadata.get("min", 0)), int(metadata.get("max", 256))
    enum = frozenset(metadata.get("enum") or ())
    pattern = metadata.get("pattern")
    matcher = compile_pattern(pattern) if pattern else None

    def check(key: str, value: Any) -> str:
        text = _text(key, value, low, high)
        if enum and text not in enum:
            raise ValidationError(f"{key} must be one of the model's {shape_name} values.")
        if matcher is not None and matcher(text) is None:
            raise ValidationError(f"{key} must satisfy the model's {shape_name} pattern: {pattern}")
        return text

    return check


def _number(low: float, high: float, *, low_open: bool = False) -> Check:
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def check(key: str, value: Any) -> float:
        # bool is an int to Python, not to JSON; nan and inf fail every comparison below.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{key} must be a number in {shown}.")
        above_low = value > low if low_open else value >= low
        if not (above_low and value <= high and math.isfinite(value)):
            raise ValidationError(f"{key} must be a number in {shown}.")
        return float(value)

    return check


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise ValidationError(f"{key} must be an integer from 1 to {MAX_COUNT}.")
    return value


def _type(key: str, value: Any) -> str:
    text = _text(key, value, 1, MAX_TYPE_LENGTH)
    check_hardware_type(text)
    return text


def _mix(key: str, value: Any) -> dict[str, float]:
    """A mix of hardware fault types: each type's weight, a positive number."""
    if not isinstance(value, dict) or not value:
        raise ValidationError(f"{key} must be an object of hardware fault types and weights.")
    weight = _number(0, MAX_WEIGHT, low_open=True)
    return {_type(key, name): weight(f"{key}.{name}", share) for name, share in value.items()}


def _seed(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValidationError(f"{key} must be an integer from 0 to {MAX_SEED}.")
    return value


def _region(key: str, value: Any) -> str:
    text = _text(key, value, 1, MAX_REGION_LENGTH)
    if _REGION.fullmatch(text) is None:
        raise ValidationError(f"{key} must be a region name such as us-east-1.")
    return text


def _operations(key: str, value: Any) -> list[str]:
    names = sagemaker_spec().operation_names
    if not isinstance(value, list) or len(value) > MAX_OPERATIONS:
        raise ValidationError(f"{key} must be a list of at most {MAX_OPERATIONS} operation names.")
    for item in value:
        if not isinstance(item, str) or not _is_text(item) or item not in names:
            raise ValidationError(f"{key} must hold SageMaker operation names, e.g. ListClusters.")
    return list(value)


def _action(key: str, value: Any) -> str:
    if value not in EXTENSION_ACTIONS:
        raise ValidationError(f"{key} must be one of {', '.join(EXTENSION_ACTIONS)}.")
    return str(value)


def _resource(key: str, value: Any) -> str:
    if value not in GOVERNANCE_RESOURCES:
        raise ValidationError(f"{key} must be one of {', '.join(GOVERNANCE_RESOURCES)}.")
    return str(value)


@functools.cache
def _checks() -> dict[str, Check]:
    # Built on first use: the model is loaded once, and not at import.
    return {
        "Cluster": _model_string("ClusterNameOrArn"),
        "Account": _model_string("AccountId"),
        "Region": _region,
        "InstanceId": _model_string("ClusterNodeId"),
        "InstanceGroupName": _model_string("ClusterInstanceGroupName"),
        "InstanceType": _model_string("ClusterInstanceType"),
        "AlarmName": _model_string("AlarmName"),
        "ExtensionName": _model_string("ExtensionName"),
        "Code": _model_string("ExtensionHealthIssueCode"),
        "Action": _action,
        "Resource": _resource,
        "Type": _type,
        "DetectionDelaySeconds": _number(0, MAX_DETECTION_DELAY),
        "Count": _count,
        "Operations": _operations,
        "Rate": _number(0, 1, low_open=True),
        "Seconds": _number(0, MAX_LATENCY_SECONDS, low_open=True),
        "MtbfHours": _number(MIN_MTBF_HOURS, MAX_MTBF_HOURS),
        "Types": _mix,
        "Seed": _seed,
    }

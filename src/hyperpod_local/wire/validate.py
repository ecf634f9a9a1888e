"""Input validation compiled from the model, with Coral's wording (spec 2.3).

botocore checks almost nothing on the client (not max, pattern or enum), so this is the only
guard. Every violation of one request is gathered into one ValidationException; a member of
the wrong JSON type is a SerializationException, as Coral's deserializer raises it first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import regex
from botocore.model import Shape

from hyperpod_local.domain.errors import SerializationError

# check(value, path, violations) -> the value in canonical form (nulls and unknown members
# dropped, integral floats as ints, timestamps as epoch floats); appends violation messages and
# raises SerializationError on a wrong JSON type.
Check = Callable[[Any, str, list[str]], Any]
# validator(params) -> (canonical params, violation messages)
Validator = Callable[[Any], tuple[dict[str, Any], list[str]]]
_MIN_EPOCH = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_MAX_EPOCH = datetime(9999, 12, 31, tzinfo=UTC).timestamp()
_JAVA_SUPPLEMENTARY = re.compile(r"\\uD800\\uDC00-\\uDBFF\\uDFFF", re.IGNORECASE)
_QUANTIFIED_END = re.compile(r"\$\{\d+,\d+\}")


def compile_validator(shape: Shape | None) -> Validator:
    if shape is None:
        return _no_input
    check = _Compiler().compile(shape)

    def validate(params: Any) -> tuple[dict[str, Any], list[str]]:
        violations: list[str] = []
        canonical = check(params, "", violations)
        return canonical, violations

    return validate


def _no_input(params: Any) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(params, dict):
        raise SerializationError("The request body must be a JSON object.")
    return {}, []


def summary(violations: list[str]) -> str:
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(violations)


def render(value: Any) -> str:
    """A value as Coral prints it inside the quotes of a violation."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={render(item)}" for key, item in value.items()) + "}"
    return str(value)


def _violation(value: Any, path: str, constraint: str) -> str:
    return f"Value '{render(value)}' at '{path}' failed to satisfy constraint: {constraint}"


def _null(path: str) -> str:
    return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"


def _wrong_type(path: str, expected: str, value: Any) -> SerializationError:
    where = f"'{path}'" if path else "the request body"
    got = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), "number")
    return SerializationError(f"Expected {expected} at {where} but found {got}.")


def _check_length(value: Any, path: str, out: list[str], low: Any, high: Any) -> None:
    """Coral words length limits alike for strings, lists and maps."""
    if low is not None and len(value) < low:
        out.append(
            _violation(value, path, f"Member must have length greater than or equal to {low}")
        )
    if high is not None and len(value) > high:
        out.append(_violation(value, path, f"Member must have length less than or equal to {high}"))


def _member_path(parent: str, name: str) -> str:
    lowered = name[:1].lower() + name[1:]
    return f"{parent}.{lowered}" if parent else lowered


def compile_pattern(pattern: str) -> Callable[[str], Any] | None:
    """The model's (Java) pattern as an anchored matcher; None if it cannot be compiled."""
    # ASCII: Java's \d, \w and \s, which the model's patterns are written for, are ASCII.
    try:
        return re.compile(pattern, re.ASCII).fullmatch
    except re.error:
        pass
    translated = _JAVA_SUPPLEMENTARY.sub(r"\\U00010000-\\U0010FFFF", pattern)
    translated = _QUANTIFIED_END.sub("$", translated)
    try:
        return regex.compile(translated, regex.ASCII).fullmatch
    except regex.error:
        return None


class _Compiler:
    def __init__(self) -> None:
        self._done: dict[str, Check] = {}

    def compile(self, shape: Shape) -> Check:
        key = f"{shape.type_name}:{shape.name}"
        found = self._done.get(key)
        if found is not None:
            return found
        if shape.type_name == "structure":
            # Recursive shapes refer back to themselves: hand out a forwarder first.
            cell: list[Check] = []

            def forward(value: Any, path: str, out: list[str]) -> Any:
                return cell[0](value, path, out)

            self._done[key] = forward
            check = self._structure(shape)
            cell.append(check)
            self._done[key] = check
            return check
        check = self._leaf(shape)
        self._done[key] = check
        return check

    def _leaf(self, shape: Shape) -> Check:
        kind = shape.type_name
        if kind == "list":
            return self._list(shape)
        if kind == "map":
            return self._map(shape)
        if kind == "string":
            return _string(shape)
        if kind in ("integer", "long"):
            return _number(shape, integral=True)
        if kind in ("float", "double"):
            return _number(shape, integral=False)
        if kind == "boolean":
            return _boolean
        if kind == "timestamp":
            return _timestamp
        return _blob

    def _structure(self, shape: Shape) -> Check:
        required = set(shape.required_members)
        members = [
            (name, name in required, self.compile(member)) for name, member in shape.members.items()
        ]

        def check(value: Any, path: str, out: list[str]) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _wrong_type(path, "an object", value)
            # Only model members that are set go on: unknown members and nulls stay behind.
            canonical: dict[str, Any] = {}
            for name, is_required, member_check in members:
                item = value.get(name)
                if item is None:
                    if is_required:
                        out.append(_null(_member_path(path, name)))
                else:
                    canonical[name] = member_check(item, _member_path(path, name), out)
            return canonical

        return check

    def _list(self, shape: Shape) -> Check:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        member_check = self.compile(shape.member)

        def check(value: Any, path: str, out: list[str]) -> list[Any]:
            if not isinstance(value, list):
                raise _wrong_type(path, "an array", value)
            _check_length(value, path, out, low, high)
            canonical = []
            for index, item in enumerate(value, start=1):
                item_path = f"{path}.{index}.member"
                if item is None:
                    out.append(_null(item_path))
                else:
                    canonical.append(member_check(item, item_path, out))
            return canonical

        return check

    def _map(self, shape: Shape) -> Check:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        key_check = self.compile(shape.key)
        value_check = self.compile(shape.value)

        def check(value: Any, path: str, out: list[str]) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _wrong_type(path, "an object", value)
            _check_length(value, path, out, low, high)
            canonical = {}
            for key, item in value.items():
                key_check(key, f"{path}.key", out)
                if item is None:
                    out.append(_null(f"{path}.{key}"))
                else:
                    canonical[key] = value_check(item, f"{path}.{key}", out)
            return canonical

        return check


def _string(shape: Shape) -> Check:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    enum = shape.metadata.get("enum")
    enum_set = frozenset(enum) if enum else None
    enum_text = f"Member must satisfy enum value set: [{', '.join(enum)}]" if enum else ""
    pattern = shape.metadata.get("pattern")
    matcher = compile_pattern(pattern) if pattern else None
    shown = pattern if pattern is None or pattern.startswith("^") else "^" + pattern
    pattern_text = f"Member must satisfy regular expression pattern: {shown}"

    def check(value: Any, path: str, out: list[str]) -> str:
        if not isinstance(value, str):
            raise _wrong_type(path, "a string", value)
        _check_length(value, path, out, low, high)
        if enum_set is not None and value not in enum_set:
            out.append(_violation(value, path, enum_text))
        if matcher is not None and matcher(value) is None:
            out.append(_violation(value, path, pattern_text))
        return value

    return check


def _number(shape: Shape, *, integral: bool) -> Check:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    expected = "an integer" if integral else "a number"

    def check(value: Any, path: str, out: list[str]) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(path, expected, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise _wrong_type(path, expected, value)
        if integral and isinstance(value, float):
            if not value.is_integer():
                raise _wrong_type(path, expected, value)
            value = int(value)
        if low is not None and value < low:
            out.append(
                _violation(value, path, f"Member must have value greater than or equal to {low}")
            )
        if high is not None and value > high:
            out.append(
                _violation(value, path, f"Member must have value less than or equal to {high}")
            )
        return value

    return check


def _boolean(value: Any, path: str, out: list[str]) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(path, "a boolean", value)
    return value


def _timestamp(value: Any, path: str, out: list[str]) -> float:
    """Epoch seconds (as botocore sends them) or ISO 8601, as a float epoch that every
    client can print back: between years 1 and 9999."""
    epoch: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        epoch = float(value) if abs(value) < _MAX_EPOCH else None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            epoch = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError):
            epoch = None
    if epoch is None or not _MIN_EPOCH <= epoch <= _MAX_EPOCH:
        raise _wrong_type(path, "a timestamp (epoch seconds between years 1 and 9999)", value)
    return epoch


def _blob(value: Any, path: str, out: list[str]) -> str:
    if not isinstance(value, str):
        raise _wrong_type(path, "a base64 string", value)
    return value

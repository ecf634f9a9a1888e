"""Output serialization compiled from the model: only members of the output shape, timestamps
as epoch seconds, and None or empty optional lists and maps left out, but for the members
named to be sent even when empty (a List operation's primary list, which scripts written
against AWS index directly)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.model import Shape

Serializer = Callable[[Any], Any]


def compile_serializer(shape: Shape | None, keep_empty: frozenset[str] = frozenset()) -> Serializer:
    """The output shape's serializer; top-level members in `keep_empty` go out even empty."""
    if shape is None:
        return lambda _value: {}
    if keep_empty:
        assert shape.type_name == "structure"
        return _Compiler().structure(shape, keep_empty)
    return _Compiler().compile(shape) or _identity


def primary_lists(operation_name: str, shape: Shape | None) -> frozenset[str]:
    """The list members a List operation answers even when empty ("Events": [], "Tags": []):
    every top-level list member of a List* operation's output."""
    if shape is None or not operation_name.startswith("List"):
        return frozenset()
    return frozenset(name for name, member in shape.members.items() if member.type_name == "list")


def _identity(value: Any) -> Any:
    return value


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


class _Compiler:
    def __init__(self) -> None:
        self._done: dict[str, Serializer | None] = {}

    def compile(self, shape: Shape) -> Serializer | None:
        """A converter for the shape, or None where the JSON value goes out as it is."""
        key = f"{shape.type_name}:{shape.name}"
        if key in self._done:
            return self._done[key]
        if shape.type_name == "structure":
            cell: list[Serializer] = []
            self._done[key] = lambda value: cell[0](value)
            result = self.structure(shape)
            cell.append(result)
        elif shape.type_name == "list":
            result = self._list(shape)
        elif shape.type_name == "map":
            result = self._map(shape)
        elif shape.type_name == "timestamp":
            result = _timestamp
        else:
            result = None
        self._done[key] = result
        return result

    def structure(self, shape: Shape, keep_empty: frozenset[str] = frozenset()) -> Serializer:
        required = set(shape.required_members) | keep_empty
        members = [
            (
                name,
                self.compile(member),
                name not in required and member.type_name in ("list", "map"),
            )
            for name, member in shape.members.items()
        ]

        def serialize(value: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, convert, drop_empty in members:
                item = value.get(name)
                if item is None or (drop_empty and not item):
                    continue
                out[name] = item if convert is None else convert(item)
            return out

        return serialize

    def _list(self, shape: Shape) -> Serializer | None:
        convert = self.compile(shape.member)
        if convert is None:
            return None
        return lambda value: [convert(item) for item in value]

    def _map(self, shape: Shape) -> Serializer | None:
        convert = self.compile(shape.value)
        if convert is None:
            return None
        return lambda value: {key: convert(item) for key, item in value.items()}

"""Small conversions of validated input members."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def epoch(value: Any) -> float | None:
    """A timestamp member (epoch seconds, or ISO 8601 from other SDKs) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()

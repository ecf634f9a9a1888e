"""Numeric option types that take only finite numbers: click's FloatRange lets nan through
(every comparison with nan is false) and inf through an open end."""

from __future__ import annotations

import math
from typing import Any

import click

from hyperpod_local.engine.clock import MAX_SPEED

__all__ = ["MAX_BODY_BYTES", "MAX_CLIENT_TIMEOUT", "MAX_SPEED", "Finite"]

# A request body is held in memory whole: 64 MiB is far past any SageMaker request.
MAX_BODY_BYTES = 64 * 1024 * 1024
# An hour: a client slower than that to send a request has gone.
MAX_CLIENT_TIMEOUT = 3600.0


class Finite(click.FloatRange):
    """A finite float, within [min, max] when they are given."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        # click would show an unbounded range as "x<=None".
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()


class Weighted(click.ParamType):
    """TYPE=WEIGHT, as a random_hardware fault's --mix takes each type of its mix."""

    name = "TYPE=WEIGHT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        name, sep, weight = str(value).partition("=")
        try:
            share = float(weight)
        except ValueError:
            share = math.nan
        if not sep or not name or not math.isfinite(share):
            self.fail(f"{value!r} is not TYPE=WEIGHT, e.g. GpuXid79=3", param, ctx)
        return (name, share)

"""Providers: where instances come from. The engine knows only `base.Provider`."""

from __future__ import annotations

from collections.abc import Callable

from hyperpod_local.domain.ids import IdSource
from hyperpod_local.providers.base import LaunchError, Provider

__all__ = ["PROVIDERS", "LaunchError", "Provider", "build_provider"]


def _sim(ids: IdSource) -> Provider:
    from hyperpod_local.providers.sim import SimProvider

    return SimProvider(ids)


# A new provider is one more entry here and a module beside sim.py.
PROVIDERS: dict[str, Callable[[IdSource], Provider]] = {"sim": _sim}


def build_provider(name: str, ids: IdSource) -> Provider:
    try:
        return PROVIDERS[name](ids)
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ValueError(f"unknown provider {name!r}; known providers: {known}") from None

"""Providers: where instances come from. The engine knows only `base.Provider`."""

from __future__ import annotations

from collections.abc import Callable

from hyperpod_local.domain.ids import IdSource
from hyperpod_local.providers.base import LaunchError, Provider, ProviderContext

__all__ = ["PROVIDERS", "LaunchError", "Provider", "ProviderContext", "build_provider"]


def _sim(ids: IdSource, context: ProviderContext | None) -> Provider:
    from hyperpod_local.providers.sim import SimProvider

    return SimProvider(ids)


def _process(ids: IdSource, context: ProviderContext | None) -> Provider:
    from hyperpod_local.providers.process.provider import ProcessProvider

    if context is None:
        raise ValueError("the process provider needs a data dir and a store")
    return ProcessProvider(ids, context)


# A new provider is one more entry here and a module beside sim.py: a factory of the ids and
# the server's ProviderContext.
PROVIDERS: dict[str, Callable[[IdSource, ProviderContext | None], Provider]] = {
    "sim": _sim,
    "process": _process,
}


def build_provider(name: str, ids: IdSource, context: ProviderContext | None = None) -> Provider:
    try:
        factory = PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ValueError(f"unknown provider {name!r}; known providers: {known}") from None
    return factory(ids, context)

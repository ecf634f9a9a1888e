"""Faults on the request path: throttling and added latency, per operation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hyperpod_local.domain.errors import ThrottlingError
from hyperpod_local.domain.faults import Fault, FaultKind
from hyperpod_local.store.database import Store


class RequestFaults:
    """The throttling and latency faults in force, kept in memory (every request consults
    them) and reloaded whenever faults change."""

    def __init__(self, store: Store, chance: Callable[[float], bool]) -> None:
        self._store = store
        self._chance = chance
        self._lock = threading.Lock()
        self._faults: tuple[Fault, ...] = ()
        self.reload()

    def reload(self) -> None:
        with self._store.read() as tx:
            found = tuple(
                fault
                for fault in tx.faults.all()
                if fault.kind in (FaultKind.THROTTLING, FaultKind.LATENCY)
            )
        with self._lock:
            self._faults = found

    @property
    def active(self) -> bool:
        """Whether any is in force: then every request must reach its handler."""
        return bool(self._faults)

    def before(self, operation: str) -> None:
        """Delay or refuse a request as the faults say."""
        for fault in self._faults:
            operations = fault.params.get("Operations") or []
            if operations and operation not in operations:
                continue
            if fault.kind == FaultKind.LATENCY:
                time.sleep(float(fault.params["Seconds"]))
            elif self._chance(float(fault.params["Rate"])):
                raise ThrottlingError("Rate exceeded")

"""What the server notices of its nodes outside the engine's steps: an agent that died (a
SIGKILL by hand) or stopped heartbeating for the health agent's detection delay (at least five
heartbeats) is a NodeUnresponsive
fault, and a fault a script reports from inside its node (`hyperpod-local report-fault
TYPE`) is a hardware fault of that type. Each is recorded as an injected fault is, with a
detection by the health agent, which then answers it as it answers every hardware fault."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

from hyperpod_local.domain.faults import HARDWARE_FAULTS, Fault, FaultKind
from hyperpod_local.domain.model import Task
from hyperpod_local.providers.process.agent import read_status
from hyperpod_local.providers.process.layout import NodeDirs
from hyperpod_local.providers.process.processes import exited

if TYPE_CHECKING:
    from hyperpod_local.providers.process.provider import AgentHandle, ProcessProvider

log = logging.getLogger(__name__)

# The engine's task kind for the health agent's detection (engine.operations.DETECTION):
# providers do not import the engine, so the name is spelled here too.
DETECTION = "health_check"
UNRESPONSIVE = "NodeUnresponsive"
NOT_BACK = "NodeUnresponsiveAfterReboot"
# Reported hardware faults are noticed after the health agent's usual delay (HyperPod s).
REPORTED_DETECTION = 15.0
_EVERY = 0.25
# Orphaned agents are looked for every 40 looks (10 s), and are older than a minute.
_REAP_EVERY = 40
_ORPHAN_AGE = 60.0
# A report file still empty this long after it appeared is taken as it is.
_WRITING = 5.0


class Monitor:
    def __init__(self, provider: ProcessProvider) -> None:
        self.provider = provider
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        """Under a real clock, a thread looks every quarter second; under a manual one the
        engine's catch_up looks before time moves."""
        if self.provider.context.clock_mode != "real" or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="hyperpod-nodes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        looks = 0
        while not self._stop.wait(_EVERY):
            looks += 1
            try:
                self.check()
                if looks % _REAP_EVERY == 0:
                    self.reap_orphans()
            except Exception:
                log.exception("the node monitor failed; looking again")

    def reap_orphans(self) -> list[str]:
        """Agents of instances the store does not hold (a launch whose step was rolled back
        after it started the agent) are stopped and their directories removed; a young one
        is left alone, its launch may not have committed yet."""
        agents = [
            handle
            for handle in self.provider.agents()
            if time.monotonic() - handle.started > _ORPHAN_AGE
        ]
        if not agents:
            return []
        with self.provider.context.store.read() as tx:
            known = set(tx.instances.all_ids())
        orphans = [handle.instance_id for handle in agents if handle.instance_id not in known]
        for instance_id in orphans:
            log.warning("node %s has no instance in the store: stopping it", instance_id)
            self.provider.discard(instance_id)
        return orphans

    def check(self) -> int:
        """Look at every node once; how many faults were recorded."""
        with self._lock:
            found: list[tuple[AgentHandle, str, float]] = []
            for handle in self.provider.agents():
                silent = self._silence(handle)
                if silent is not None:
                    found.append((handle, silent, 0.0))
                for kind in self._reports(handle):
                    found.append((handle, kind, REPORTED_DETECTION))
            if found:
                self._record(found)
            return len(found)

    def _silence(self, handle: AgentHandle) -> str | None:
        """The fault type of an agent that no longer answers (once), or None."""
        if handle.reported is not None:
            return None
        dirs = NodeDirs.of(self.provider.data_dir, handle.instance_id)
        if read_status(dirs).get("State") != "Succeeded":
            return None  # not up yet: a script that cannot end fails the provisioning
        # A killed agent's main thread is a zombie before its other threads have gone, and
        # only then can it be waited for: /proc says it is dead first.
        dead = not handle.alive() or exited(handle.proc.pid)
        if not dead:
            try:
                beat = dirs.heartbeat_file.stat().st_mtime
            except OSError:
                beat = 0.0
            if time.time() - beat <= self.provider.heartbeat_timeout:
                return None
        context = self.provider.context
        window = float(self.provider.options["stable_after"]) / context.speed
        soon = context.now() - handle.started_at < window
        handle.reported = NOT_BACK if handle.after_unresponsive and soon else UNRESPONSIVE
        return handle.reported

    def _reports(self, handle: AgentHandle) -> list[str]:
        """Fault types scripts in the node have reported (each report is taken once)."""
        folder = NodeDirs.of(self.provider.data_dir, handle.instance_id).faults
        kinds = []
        try:
            reports = sorted(folder.glob("*.fault"))
        except OSError:
            return []
        for report in reports:
            try:
                kind = report.read_text().strip()
                if not kind and time.time() - report.stat().st_mtime < _WRITING:
                    continue  # still being written
                report.unlink()
            except OSError:
                continue
            if kind in HARDWARE_FAULTS:
                kinds.append(kind)
            else:
                log.warning("node %s reported an unknown fault type %r", handle.instance_id, kind)
        return kinds

    def _record(self, found: list[tuple[AgentHandle, str, float]]) -> None:
        context = self.provider.context
        now = context.now()
        with context.store.write() as tx:
            for handle, kind, delay in found:
                node = tx.nodes.by_instance_id(handle.cluster_id, handle.instance_id)
                if node is None:
                    continue
                fault = Fault(
                    fault_id=str(uuid.uuid4()),
                    kind=FaultKind.HARDWARE,
                    created_at=now,
                    cluster_id=handle.cluster_id,
                    group_name=node.group_name,
                    instance_id=handle.instance_id,
                    params={"Type": kind, "DetectionDelaySeconds": delay},
                )
                tx.faults.add(fault)
                tx.tasks.add(
                    Task(
                        cluster_id=handle.cluster_id,
                        node_id=node.row_id,
                        kind=DETECTION,
                        step="detect",
                        due_at=round(now + delay / context.speed, 3),
                        data={"instance_id": handle.instance_id, "fault_id": fault.fault_id},
                    )
                )
                log.warning("node %s: %s", handle.instance_id, HARDWARE_FAULTS[kind].message)

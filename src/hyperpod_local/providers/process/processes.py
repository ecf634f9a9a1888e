"""Finding and ending a node's processes. Every process of a node (its agent, its scripts and
whatever they start, even a daemon that left the agent's session) carries the variable
HYPERPOD_LOCAL_NODE=<instance id> in its environment; /proc tells which do."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

MARKER = "HYPERPOD_LOCAL_NODE"
_PROC = Path("/proc")


def node_of(pid: int) -> str | None:
    """The instance id a process belongs to, if it is a node's."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = f"{MARKER}=".encode()
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def _pids() -> Iterable[int]:
    for entry in os.scandir(_PROC):
        if entry.name.isdigit():
            yield int(entry.name)


def pids_of(instance_ids: Iterable[str]) -> dict[str, list[int]]:
    """The live processes of each of the nodes (a node with none is left out)."""
    wanted = set(instance_ids)
    found: dict[str, list[int]] = {}
    if not wanted:
        return found
    me = os.getpid()
    for pid in _pids():
        if pid == me:
            continue
        node = node_of(pid)
        if node in wanted and not _zombie(pid):
            found.setdefault(node, []).append(pid)
    return found


def exited(pid: int) -> bool:
    """Whether the process has ended (gone, or a zombie), whatever its threads still do."""
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def kill_nodes(
    instance_ids: Iterable[str], timeout: float = 10.0, *, spare: int | None = None
) -> list[int]:
    """SIGKILL every process of the nodes (but `spare`) until none is left (a fork racing
    the kill is caught on the next pass); the pids still alive after `timeout` (none,
    normally)."""
    wanted = list(instance_ids)
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pids in pids_of(wanted).values() for pid in pids if pid != spare]
        if not left or time.monotonic() > deadline:
            return left
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def count_user_processes(uid: int) -> int:
    count = 0
    for pid in _pids():
        try:
            if (_PROC / str(pid)).stat().st_uid == uid:
                count += 1
        except OSError:
            pass
    return count

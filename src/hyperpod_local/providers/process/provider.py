"""The process provider: the engine's instances are node agents on this machine.

Instances and volumes are also rows of the store, as the simulated provider keeps them (so
ListClusterNodes, capacity, hardware and lifecycle-script faults work as they do there); the
provider adds the real part: the node's directories, its agent and its lifecycle script.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hyperpod_local.domain.ids import IdSource
from hyperpod_local.domain.model import Cluster, InstanceGroup, Node
from hyperpod_local.providers.base import LaunchError, ProviderContext
from hyperpod_local.providers.process import confinement
from hyperpod_local.providers.process.agent import FINAL, read_status, write_json
from hyperpod_local.providers.process.layout import NodeDirs, nodes_dir, tail
from hyperpod_local.providers.process.monitor import Monitor
from hyperpod_local.providers.process.node_files import provisioning_parameters, resource_config
from hyperpod_local.providers.process.processes import MARKER, exited, kill_nodes
from hyperpod_local.providers.sim import SimProvider
from hyperpod_local.store.unit_of_work import Tx

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "max_nodes": 32,
    "max_processes_per_node": 256,
    "script_timeout": 600.0,
    "heartbeat_interval": 1.0,
    # Wall seconds without a heartbeat before a node is unresponsive: the health agent's
    # detection delay (as the clock counts it), and never under five heartbeats (a busy
    # machine may delay one).
    "detection_delay": 15.0,
    # A node whose agent stops again this soon (HyperPod seconds: 10 s at --speed 60) after
    # a reboot that was to bring it back has not come back: it is replaced.
    "stable_after": 600.0,
    "confinement": "auto",
    "scripts_from": {},
}
# A script whose agent is past its timeout by this much without an outcome has hung with it.
_GRACE = 30.0
LOG_TAIL = 20


@dataclass(slots=True)
class AgentHandle:
    instance_id: str
    cluster_id: str
    proc: subprocess.Popen[bytes]
    # HyperPod time it started at.
    started_at: float
    started: float = field(default_factory=time.monotonic)
    # What the monitor reported of it (a fault type), once; None while it answers.
    reported: str | None = None
    # Started by a reboot that answered its node's silence.
    after_unresponsive: bool = False

    def alive(self) -> bool:
        return self.proc.poll() is None


class ProcessProvider(SimProvider):
    name = "process"

    def __init__(self, ids: IdSource, context: ProviderContext) -> None:
        super().__init__(ids)
        self.context = context
        self.options = {**DEFAULTS, **(context.options or {})}
        self.data_dir = context.data_dir.resolve()
        self.max_nodes = int(self.options["max_nodes"])
        interval = float(self.options["heartbeat_interval"])
        self.heartbeat_timeout = max(5 * interval, float(self.options["detection_delay"]))
        self.confinement = confinement.choose(str(self.options["confinement"]), self.data_dir)
        self._lock = threading.RLock()
        self._agents: dict[str, AgentHandle] = {}
        self.monitor = Monitor(self)

    # What the server shows ------------------------------------------------------------

    def banner(self) -> list[str]:
        return [
            f"  nodes: process provider, {nodes_dir(self.data_dir)} (at most "
            f"{self.max_nodes} nodes, {self.options['max_processes_per_node']} processes each)",
            f"  confinement: {confinement.describe(self.confinement)}",
        ]

    # Instances --------------------------------------------------------------------------

    def check_capacity(self, tx: Tx, cluster: Cluster, group: InstanceGroup) -> None:
        super().check_capacity(tx, cluster, group)
        self._check_room()

    def _check_room(self, count: int = 1) -> None:
        with self._lock:
            if len(self._agents) + count > self.max_nodes:
                raise LaunchError(
                    f"This hyperpod-local server runs at most {self.max_nodes} process nodes "
                    f"(serve --max-nodes), and {len(self._agents)} are running."
                )

    def launch(
        self,
        tx: Tx,
        cluster: Cluster,
        group: InstanceGroup,
        now: float,
        *,
        image_id: str | None = None,
        checked: bool = False,
    ) -> str:
        self._check_room()
        instance_id = super().launch(tx, cluster, group, now, image_id=image_id, checked=checked)
        self._make_node(instance_id, cluster, group)
        self._start_agent(instance_id, cluster.id)
        return instance_id

    def launch_many(
        self,
        tx: Tx,
        cluster: Cluster,
        group: InstanceGroup,
        now: float,
        count: int,
        *,
        image_id: str | None = None,
    ) -> list[str]:
        """`count` nodes, each with its directories and agent; LaunchError if they would take
        the server past --max-nodes (check_capacity has seen room for one more only)."""
        self._check_room(count)
        launched = super().launch_many(tx, cluster, group, now, count, image_id=image_id)
        for instance_id in launched:
            self._make_node(instance_id, cluster, group)
            self._start_agent(instance_id, cluster.id)
        return launched

    def _make_node(self, instance_id: str, cluster: Cluster, group: InstanceGroup) -> None:
        """Empty volume directories for the instance in `group`, and the agent's node file."""
        dirs = NodeDirs.of(self.data_dir, instance_id)
        dirs.make()
        uid = self._uid(instance_id)
        confinement.chown_tree(dirs.root, uid)
        confinement.chown_tree(dirs.secondary, uid)
        write_json(
            dirs.node_file,
            {
                "InstanceId": instance_id,
                "ClusterId": cluster.id,
                "ClusterName": cluster.name,
                "ClusterArn": cluster.arn,
                "InstanceGroupName": group.name,
                "InstanceType": group.instance_types[0],
                "LifeCycleConfig": group.spec.get("LifeCycleConfig"),
                "ScriptTimeout": float(self.options["script_timeout"]),
                "HeartbeatInterval": float(self.options["heartbeat_interval"]),
                "MaxProcesses": int(self.options["max_processes_per_node"]),
                "Confinement": self.confinement,
                "Uid": uid,
                "ScriptsFrom": dict(self.options["scripts_from"]),
            },
        )

    def terminate(self, tx: Tx, instance_ids: list[str]) -> None:
        super().terminate(tx, instance_ids)
        self.discard(*instance_ids)

    def discard(self, *instance_ids: str) -> None:
        """Nothing of the nodes is left: no process, no directory."""
        self._stop_agents(list(instance_ids))
        for instance_id in instance_ids:
            shutil.rmtree(NodeDirs.of(self.data_dir, instance_id).base, ignore_errors=True)

    def reboot(self, tx: Tx, instance_id: str) -> None:
        """The agent stops (its whole tree) and a new one starts on the same directories;
        the lifecycle script that ran is not run again."""
        super().reboot(tx, instance_id)
        with self._lock:
            old = self._agents.get(instance_id)
        cluster_id = old.cluster_id if old else self._cluster_of(tx, instance_id)
        answering = bool(old and old.reported and old.reported.startswith("NodeUnresponsive"))
        self._stop_agent(instance_id)
        if cluster_id is not None:
            self._start_agent(instance_id, cluster_id, after_unresponsive=answering)

    def reimage(self, tx: Tx, instance_ids: list[str], image_id: str) -> None:
        """A new root volume (an empty directory) and a new agent, which runs the lifecycle
        script again; the secondary volume stays."""
        super().reimage(tx, instance_ids, image_id)
        for instance_id in instance_ids:
            with self._lock:
                old = self._agents.get(instance_id)
            cluster_id = old.cluster_id if old else self._cluster_of(tx, instance_id)
            self._stop_agent(instance_id)
            dirs = NodeDirs.of(self.data_dir, instance_id)
            shutil.rmtree(dirs.root, ignore_errors=True)
            dirs.make_root()
            confinement.chown_tree(dirs.root, self._uid(instance_id))
            for stale in (dirs.status_file, dirs.go_file):
                stale.unlink(missing_ok=True)
            if cluster_id is not None:
                self._start_agent(instance_id, cluster_id)

    def rejoin(
        self, tx: Tx, instance_id: str, cluster: Cluster, group: InstanceGroup, image_id: str
    ) -> None:
        """A move: the same instance in another group (or cluster), with new, empty volume
        directories and a new agent, which runs the target group's script when told go."""
        super().rejoin(tx, instance_id, cluster, group, image_id)
        self._stop_agent(instance_id)
        shutil.rmtree(NodeDirs.of(self.data_dir, instance_id).base, ignore_errors=True)
        self._make_node(instance_id, cluster, group)
        self._start_agent(instance_id, cluster.id)

    def _uid(self, instance_id: str) -> int | None:
        """The user a node's scripts run as (None: the server's)."""
        return None if self.confinement == "none" else confinement.node_uid(instance_id)

    def _cluster_of(self, tx: Tx, instance_id: str) -> str | None:
        row = tx.instances.get(instance_id)
        return None if row is None else str(row["cluster_id"])

    # Lifecycle scripts ------------------------------------------------------------------

    def lifecycle_scripts_running(
        self, tx: Tx, cluster: Cluster, group: InstanceGroup, nodes: list[Node]
    ) -> set[int]:
        """Say go to each node whose script has not started (its hostname and IP are known
        by now, and the files HyperPod writes go in first); the nodes still running one."""
        running: set[int] = set()
        members: dict[str, list[Node]] | None = None
        for node in nodes:
            if node.instance_id is None:
                continue
            dirs = NodeDirs.of(self.data_dir, node.instance_id)
            if not dirs.control.is_dir() or read_status(dirs).get("State") in FINAL:
                continue
            if not dirs.go_file.exists():
                if members is None:
                    members = {
                        each.name: tx.nodes.in_group(cluster.id, each.name)
                        for each in cluster.groups
                    }
                self._write_node_files(cluster, group, node, dirs, members)
                running.add(node.row_id or -1)
            elif self._still_running(node.instance_id, dirs):
                running.add(node.row_id or -1)
        return running

    def _write_node_files(
        self,
        cluster: Cluster,
        group: InstanceGroup,
        node: Node,
        dirs: NodeDirs,
        members: dict[str, list[Node]],
    ) -> None:
        dirs.config.mkdir(parents=True, exist_ok=True)
        write_json(dirs.config / "resource_config.json", resource_config(cluster, members))
        params = provisioning_parameters(cluster, members)
        if params is not None:
            write_json(dirs.config / "provisioning_parameters.json", params)
        confinement.chown_tree(dirs.config, self._uid(dirs.instance_id))
        # The group's LifeCycleConfig as it is now: an UpdateCluster since the launch counts.
        write_json(
            dirs.go_file,
            {
                "Hostname": node.hostname,
                "PrivateIp": node.private_ip,
                "LifeCycleConfig": group.spec.get("LifeCycleConfig"),
            },
        )

    def _still_running(self, instance_id: str, dirs: NodeDirs) -> bool:
        """Whether a script told to go has yet to end: its agent lives and it is not past its
        timeout by more than the grace (an agent that hung with it)."""
        if read_status(dirs).get("State") in FINAL or not dirs.go_file.exists():
            return False
        with self._lock:
            handle = self._agents.get(instance_id)
        if handle is None or not handle.alive() or exited(handle.proc.pid):
            return False
        try:
            told = dirs.go_file.stat().st_mtime
        except OSError:
            return False
        return time.time() - told < float(self.options["script_timeout"]) + _GRACE

    def run_lifecycle_scripts(
        self, tx: Tx, cluster: Cluster, group: InstanceGroup, nodes: list[Node]
    ) -> dict[int, str]:
        """The outcome of each node's script, as its agent wrote it; an injected
        lifecycle-script fault still strikes a node whose script succeeded."""
        script = (group.spec.get("LifeCycleConfig") or {}).get("OnCreate", "on_create.sh")
        failed: dict[int, str] = {}
        succeeded: list[Node] = []
        for node in nodes:
            if node.instance_id is None:
                continue
            status = read_status(NodeDirs.of(self.data_dir, node.instance_id))
            if status.get("State") == "Succeeded":
                succeeded.append(node)
                continue
            where = (
                f"Lifecycle script {script} failed on instance {node.instance_id} "
                f"in InstanceGroup {group.name}"
            )
            failed[node.row_id or -1] = _failure(where, status)
        failed.update(super().run_lifecycle_scripts(tx, cluster, group, succeeded))
        return failed

    # What the admin API shows -----------------------------------------------------------

    def inside_view(self, tx: Tx, node: Node) -> dict[str, Any] | None:
        view = super().inside_view(tx, node)
        if view is None or node.instance_id is None:
            return view
        dirs = NodeDirs.of(self.data_dir, node.instance_id)
        with self._lock:
            handle = self._agents.get(node.instance_id)
        status = read_status(dirs)
        view["Process"] = {
            "AgentPid": handle.proc.pid if handle else None,
            "AgentAlive": bool(handle and handle.alive()),
            "Confinement": self.confinement,
            "RootVolumeDir": str(dirs.root),
            "SecondaryVolumeDir": str(dirs.secondary),
            "LogFile": str(dirs.log_file),
            "LifecycleScript": {
                key: status[key] for key in ("State", "ExitCode", "Message") if key in status
            },
            "LogTail": tail(dirs.log_file, LOG_TAIL),
        }
        return view

    # The agents -------------------------------------------------------------------------

    def _start_agent(
        self, instance_id: str, cluster_id: str, *, after_unresponsive: bool = False
    ) -> None:
        dirs = NodeDirs.of(self.data_dir, instance_id)
        with (dirs.control / "agent.err").open("ab") as errors:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hyperpod_local.cli", "agent", str(dirs.control)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
                env={**os.environ, MARKER: instance_id},
            )
        handle = AgentHandle(
            instance_id, cluster_id, proc, self.context.now(), after_unresponsive=after_unresponsive
        )
        with self._lock:
            self._agents[instance_id] = handle
        self.monitor.ensure_running()

    def _stop_agent(self, instance_id: str) -> None:
        self._stop_agents([instance_id])

    def _stop_agents(self, instance_ids: list[str]) -> None:
        """Each node's whole process tree goes (its agent, its scripts, what they started),
        in one sweep of the machine's processes."""
        if not instance_ids:
            return
        with self._lock:
            handles = [self._agents.pop(i) for i in instance_ids if i in self._agents]
        left = kill_nodes(instance_ids)
        if left:
            log.warning("processes %s of nodes %s outlived SIGKILL", left, instance_ids)
        for handle in handles:
            try:
                handle.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("agent %s of %s did not end", handle.proc.pid, handle.instance_id)

    def agents(self) -> list[AgentHandle]:
        with self._lock:
            return list(self._agents.values())

    # The server's start and end, and a manual clock's wait ------------------------------

    def start(self) -> None:
        """Nodes of a data dir served before come back (as after a power cut: their agents
        start again, their scripts do not rerun); directories of no known instance go."""
        with self.context.store.read() as tx:
            known = {
                instance_id: tx.instances.get(instance_id) for instance_id in tx.instances.all_ids()
            }
        root = nodes_dir(self.data_dir)
        if root.is_dir():
            for entry in root.iterdir():
                if entry.name not in known:
                    shutil.rmtree(entry, ignore_errors=True)
        for instance_id, row in known.items():
            dirs = NodeDirs.of(self.data_dir, instance_id)
            with self._lock:
                running = instance_id in self._agents
            if row is not None and not running and dirs.node_file.exists():
                self._start_agent(instance_id, str(row["cluster_id"]))
        self.monitor.ensure_running()

    def close(self) -> None:
        self.monitor.stop()
        self._stop_agents([handle.instance_id for handle in self.agents()])

    def catch_up(self) -> None:
        """Wait for every lifecycle script told to go, then record what the monitor sees."""
        deadline = time.monotonic() + float(self.options["script_timeout"]) + _GRACE
        while time.monotonic() < deadline:
            busy = [
                handle
                for handle in self.agents()
                if self._still_running(
                    handle.instance_id, NodeDirs.of(self.data_dir, handle.instance_id)
                )
            ]
            if not busy:
                break
            time.sleep(0.02)
        self.monitor.check()


def _failure(where: str, status: dict[str, Any]) -> str:
    """HyperPod's failure message, with the script's last lines (the reason a user looks)."""
    state = status.get("State")
    if state == "Failed" and status.get("ExitCode") is not None:
        reason = f"exit code {status['ExitCode']}"
    elif state == "Failed":
        reason = str(status.get("Message") or "it failed")
    else:
        reason = "the node's agent stopped before the script ended"
    lines = [line[-200:] for line in status.get("Tail") or []]
    message = f"{where}: {reason}."
    if lines:
        message += " Last lines of its output: " + " | ".join(lines)
    return message[:1000]

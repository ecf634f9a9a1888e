"""What the engine asks of a provider, the place instances come from.

The engine depends on this module only; `sim` is one implementation (instances and volumes
that live in the store), and another (real processes, a cloud) plugs in beside it without the
engine changing. Every method runs inside the engine's unit of work `tx`, so what a provider
records about its instances commits, or rolls back, with the step that asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hyperpod_local.domain.faults import Fault
from hyperpod_local.domain.model import Cluster, InstanceGroup, Node
from hyperpod_local.store.unit_of_work import Tx

if TYPE_CHECKING:
    from hyperpod_local.store.database import Store


class LaunchError(Exception):
    """No instance could be had; the message is the one HyperPod reports."""


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What a provider may need of the server that builds it, beyond ids: where its data dir
    is, the store (for what it notices outside a step, such as a node that stopped
    answering), HyperPod time, and its own settings (`provider_options`)."""

    data_dir: Path
    store: Store
    now: Callable[[], float]
    # "real" or "manual": under a manual clock a provider's own work (a lifecycle script
    # run) takes its real time while HyperPod time waits for it (catch_up).
    clock_mode: str = "real"
    # HyperPod seconds per wall-clock second under the real clock (1 under a manual one).
    speed: float = 1.0
    options: dict[str, Any] | None = None


class Provider(Protocol):
    name: str

    def check_capacity(self, tx: Tx, cluster: Cluster, group: InstanceGroup) -> None:
        """LaunchError when no instance of the group's type can be had now."""

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
        """A fresh instance of the group's configuration, on `image_id` (default: the
        group's image), with new empty volumes; its instance id. LaunchError when there is
        no capacity (`checked`: the caller has just called check_capacity, for a whole batch
        of launches)."""

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
        """`count` fresh instances of the group's configuration, on `image_id` (default: the
        group's image), once check_capacity has passed (a group's creation or scale-up, the
        replacements due at one instant); their instance ids."""

    def instances(self, tx: Tx, cluster_id: str) -> list[str]:
        """Every instance the provider holds for the cluster."""

    def terminate(self, tx: Tx, instance_ids: list[str]) -> None:
        """The instances and their own volumes are gone for good; volumes and interfaces a
        customer attached are detached."""

    def reboot(self, tx: Tx, instance_id: str) -> None:
        """The same instance starts again; its volumes stay."""

    def reimage(self, tx: Tx, instance_ids: list[str], image_id: str) -> None:
        """A software update: new root volumes from the image; secondary volumes stay."""

    def lifecycle_scripts_running(
        self, tx: Tx, cluster: Cluster, group: InstanceGroup, nodes: list[Node]
    ) -> set[int]:
        """Start the group's lifecycle script on each node whose script has not started yet;
        the nodes (by row id) whose script is still running. A step that gets any back asks
        again a little later (Durations.script_poll) before it reads the outcome with
        run_lifecycle_scripts. A provider whose scripts end at once returns an empty set."""

    def rejoin(
        self, tx: Tx, instance_id: str, cluster: Cluster, group: InstanceGroup, image_id: str
    ) -> None:
        """MoveClusterNodes: the same instance joins `group` of `cluster` (its own or
        another), on `image_id`, with new root and secondary volumes (data gone)."""

    def run_lifecycle_scripts(
        self, tx: Tx, cluster: Cluster, group: InstanceGroup, nodes: list[Node]
    ) -> dict[int, str]:
        """Run the group's lifecycle script (OnCreate) on each node's instance; the nodes
        whose script failed, by row id, with the failure message HyperPod shows."""

    def health(self, tx: Tx, instance_ids: list[str]) -> dict[str, list[Fault]]:
        """The hardware faults each instance has, oldest first (instances without any are
        left out): what the health agent reports and a deep health check finds."""

    def inside_view(self, tx: Tx, node: Node) -> dict[str, Any] | None:
        """What a node looks like from inside (instance, image, boots, volumes), for the
        admin API; None when it has no instance."""

    def catch_up(self) -> None:
        """Before a manual clock moves: wait for the provider's own work in flight (lifecycle
        scripts that take their real time) and record what it has noticed (a node that
        stopped answering), so HyperPod time never runs past it."""

    def start(self) -> None:
        """The server starts: bring back what the provider runs for the instances it holds."""

    def close(self) -> None:
        """The server stops: stop whatever the provider runs on this machine."""

    def banner(self) -> list[str]:
        """Lines the server's banner shows about the provider (none for the simulated one)."""

"""The simulated provider: instances and EBS volumes that exist only in the store.

Each instance has a root volume and one secondary volume per EbsVolumeConfig of its group
(the /opt/sagemaker volume HyperPod mounts). A test can write a marker onto a volume through
the admin API and see a replace destroy it and a reboot keep it.
"""

from __future__ import annotations

from typing import Any

from hyperpod_local.domain.faults import CAPACITY_MESSAGE, Fault, FaultKind
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.domain.model import Cluster, InstanceGroup, Node
from hyperpod_local.providers.base import LaunchError
from hyperpod_local.store.unit_of_work import Tx

ROOT_VOLUME_GB = 100


class SimProvider:
    """Instances and volumes as rows of the store; capacity, lifecycle scripts and hardware
    health as the faults injected through the admin API say."""

    name = "sim"

    def __init__(self, ids: IdSource) -> None:
        self.ids = ids

    def check_capacity(self, tx: Tx, cluster: Cluster, group: InstanceGroup) -> None:
        """LaunchError when an injected capacity shortage covers the group's instance type."""
        if tx.faults.capacity_short(group.instance_types[0], cluster.id) is not None:
            raise LaunchError(CAPACITY_MESSAGE)

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
        """A fresh instance of the group's configuration and image, with new empty volumes;
        LaunchError when there is no capacity for it (`checked`: the caller has just asked
        check_capacity, for a whole batch of launches)."""
        if not checked:
            self.check_capacity(tx, cluster, group)
        instance_id = self.ids.instance_id()
        tx.instances.add(
            {instance_id: [self._root(), *self._secondaries(group)]},
            cluster.id,
            now,
            image_id or group.spec.get("ImageId", "default"),
        )
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
        """Like launch, for a whole batch in two statements."""
        launched = {
            self.ids.instance_id(): [self._root(), *self._secondaries(group)] for _ in range(count)
        }
        image = image_id or group.spec.get("ImageId", "default")
        tx.instances.add(launched, cluster.id, now, image)
        return list(launched)

    def instances(self, tx: Tx, cluster_id: str) -> list[str]:
        return tx.instances.ids_for_cluster(cluster_id)

    def terminate(self, tx: Tx, instance_ids: list[str]) -> None:
        """The instances and their own volumes are gone for good, and so are the hardware
        faults they had; what the customer attached (EBS volumes, network interfaces) is
        detached and outlives them."""
        tx.instances.remove(instance_ids)
        tx.faults.forget_instances(instance_ids)
        tx.attachments.release(instance_ids)

    def reboot(self, tx: Tx, instance_id: str) -> None:
        tx.instances.count_boot(instance_id)

    def reimage(self, tx: Tx, instance_ids: list[str], image_id: str) -> None:
        """A software update: new root volumes from the image; secondary volumes stay."""
        tx.instances.replace_roots(
            {instance_id: self._root() for instance_id in instance_ids}, image_id
        )

    def lifecycle_scripts_running(
        self, tx: Tx, cluster: Cluster, group: InstanceGroup, nodes: list[Node]
    ) -> set[int]:
        """Simulated scripts take no time of their own: their run is the provision duration."""
        return set()

    def rejoin(
        self, tx: Tx, instance_id: str, cluster: Cluster, group: InstanceGroup, image_id: str
    ) -> None:
        """A move: the instance now serves `group` of `cluster`, on new root and secondary
        volumes made for that group (the old ones and their data are gone)."""
        tx.instances.hand_over(
            instance_id, cluster.id, image_id, [self._root(), *self._secondaries(group)]
        )

    def run_lifecycle_scripts(
        self, tx: Tx, cluster: Cluster, group: InstanceGroup, nodes: list[Node]
    ) -> dict[int, str]:
        """A script fails where an injected lifecycle-script fault strikes, one node a strike."""
        failed: dict[int, str] = {}
        if not nodes or not tx.faults.aimed_at(FaultKind.LIFECYCLE_SCRIPT, cluster.id, group.name):
            return failed
        script = (group.spec.get("LifeCycleConfig") or {}).get("OnCreate", "on_create.sh")
        for node in nodes:
            strike = tx.faults.take(FaultKind.LIFECYCLE_SCRIPT, cluster.id, group_name=group.name)
            if strike is None:
                break  # no strike left
            failed[node.row_id or -1] = (
                f"Lifecycle script {script} failed on instance {node.instance_id} "
                f"in InstanceGroup {group.name}: exit code 1."
            )
        return failed

    def health(self, tx: Tx, instance_ids: list[str]) -> dict[str, list[Fault]]:
        return tx.faults.on_instances(instance_ids)

    def inside_view(self, tx: Tx, node: Node) -> dict[str, Any] | None:
        """What a node looks like from inside: its instance, hostname and volumes."""
        if node.instance_id is None:
            return None
        instance = tx.instances.get(node.instance_id)
        if instance is None:
            return None
        return {
            "InstanceId": node.instance_id,
            "NodeLogicalId": node.logical_id,
            "Status": node.status,
            "Hostname": node.hostname,
            "PrivateIp": node.private_ip,
            "InstanceGroupName": node.group_name,
            "InstanceType": node.instance_type,
            "ImageId": instance["image_id"],
            "BootCount": instance["boot_count"],
            "LaunchedAt": instance["launched_at"],
            "Volumes": [
                {
                    "VolumeId": volume["volume_id"],
                    "Kind": volume["kind"],
                    "SizeInGB": volume["size_gb"],
                    "Marker": volume["marker"],
                }
                for volume in tx.instances.volumes(node.instance_id)
            ],
        }

    def catch_up(self) -> None:
        """Nothing of a simulated instance runs outside the engine's steps."""

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def banner(self) -> list[str]:
        return []

    def _root(self) -> dict[str, Any]:
        return {
            "volume_id": self.ids.volume_id(),
            "position": 0,
            "kind": "root",
            "size_gb": ROOT_VOLUME_GB,
        }

    def _secondaries(self, group: InstanceGroup) -> list[dict[str, Any]]:
        volumes = []
        for storage in group.spec.get("InstanceStorageConfigs") or []:
            ebs = storage.get("EbsVolumeConfig")
            if ebs and not ebs.get("RootVolume"):
                volumes.append(
                    {
                        "volume_id": self.ids.volume_id(),
                        "position": len(volumes) + 1,
                        "kind": "secondary",
                        "size_gb": ebs.get("VolumeSizeInGB", 500),
                    }
                )
        return volumes

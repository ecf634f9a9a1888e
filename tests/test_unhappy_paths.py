"""Lifecycles that must end when things go wrong (issue 12): an operation whose node had to
retry is still settled, simultaneous faults are judged together by the circuit breaker, and
a fault's detection leaves nothing behind once its node is gone. Through boto3 against the
real server, under the manual clock."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import ServerProcess, error_of, group
from tests.test_faults import (
    events_of,
    fault_in_force,
    faults,
    hardware,
    inject,
    paused_events,
    recovery_events,
    remove,
)
from tests.test_scaling import add, eks_cluster, groups_of, operations, shape

GPU = "ml.g5.xlarge"


def scaling_statuses(sm: Any, cluster: str) -> list[str]:
    return [op["Status"] for op in operations(sm, cluster) if "ScalingDetails" in op]


def test_a_classic_update_whose_node_retried_after_a_shortage_still_finishes(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1)])
    server.settle()
    spec = {"Kind": "capacity", "InstanceType": GPU, "Cluster": name}
    with fault_in_force(server, spec):
        sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1), group("g", 1, GPU)])
        server.advance(600)  # the launch fails and waits for its retry
    server.settle()
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] == "InService"
    assert shape(sm, name)["g"] == ("InService", 1, 1, None)
    assert "Done" in scaling_statuses(sm, name)
    assert "InProgress" not in scaling_statuses(sm, name)
    # The cluster takes another update: nothing is left holding it.
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 1), group("g", 2, GPU)])
    server.settle()
    assert shape(sm, name)["g"] == ("InService", 2, 2, None)


def test_a_continuous_batch_add_whose_script_failed_once_still_finishes(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1)])
    server.settle()
    inject(
        server,
        {"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "w", "Count": 1},
    )
    sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
    server.settle()
    assert shape(sm, name)["w"] == ("InService", 2, 2, None)
    assert scaling_statuses(sm, name) == ["Done"]
    # A later scale-in is an operation of its own, and it ends too.
    nodes = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    sm.batch_delete_cluster_nodes(ClusterName=name, NodeIds=[nodes[0]["InstanceId"]])
    server.settle()
    assert shape(sm, name)["w"][:3] == ("InService", 1, 1)
    assert "InProgress" not in scaling_statuses(sm, name)


def test_faults_on_every_node_of_a_group_at_once_start_no_recovery(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 5)])
    server.settle()
    nodes = [
        n["InstanceId"] for n in sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    ]
    for node in nodes:
        hardware(server, name, node, "GpuXid79")
    server.settle()
    listed = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert sorted(n["InstanceId"] for n in listed) == sorted(nodes)
    assert {n["InstanceStatus"]["Status"] for n in listed} == {"Failure"}
    assert recovery_events(sm, name) == []
    [paused] = paused_events(sm, name, "w")
    assert paused["EventLevel"] == "Warn"
    assert "5 of 5 nodes are unhealthy, more than the 1 allowed (20%)" in paused["Description"]
    # Manual calls still work.
    replaced = sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=nodes[:1])
    assert replaced["Successful"] == nodes[:1]


def test_a_replaced_node_leaves_no_detection_of_its_old_fault_behind(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 2)])
    server.settle()
    node = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"][0]["InstanceId"]
    # Detected only a day from now, but a deep health check finds it first.
    hardware(server, name, node, "GpuXid79", DetectionDelaySeconds=86400)
    sm.start_cluster_health_check(
        ClusterName=name,
        DeepHealthCheckConfigurations=[
            {
                "InstanceGroupName": "w",
                "InstanceIds": [node],
                "DeepHealthChecks": ["InstanceStress"],
            }
        ],
    )
    passed = server.settle()
    # The check, the replacement and nothing after: settle does not run on to the old
    # detection time, a day away.
    assert passed < 86400 / 2
    listed = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert node not in {n["InstanceId"] for n in listed}
    assert {n["InstanceStatus"]["Status"] for n in listed} == {"Running"}


# Classic UpdateCluster rollback (spec 4.1) -----------------------------------------------------


def watch_statuses(
    server: ServerProcess, sm: Any, name: str, steps: int, every: float
) -> list[str]:
    """The cluster's status after each of `steps` advances of `every` HyperPod seconds."""
    seen = []
    for _ in range(steps):
        server.advance(every)
        seen.append(sm.describe_cluster(ClusterName=name)["ClusterStatus"])
    return seen


def test_a_classic_update_that_cannot_get_its_nodes_rolls_back(
    fresh_server: ServerProcess, name: str
) -> None:
    server = fresh_server
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1), group("g", 1, GPU)])
    server.settle()
    before = {
        n["InstanceId"] for n in sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    }
    spec = {"Kind": "capacity", "InstanceType": GPU, "Cluster": name}
    with fault_in_force(server, spec):
        sm.update_cluster(
            ClusterName=name,
            InstanceGroups=[group("w", 1), group("g", 3, GPU), group("new", 2, GPU)],
        )
        seen = watch_statuses(server, sm, name, 40, 60)
        server.settle()
        described = sm.describe_cluster(ClusterName=name)
    assert seen[0] == "Updating"
    assert "RollingBack" not in seen[:10]  # a failed launch is tried again first
    assert "RollingBack" in seen
    assert described["ClusterStatus"] == "InService"
    assert "capacity" in described["FailureMessage"]
    # Each group is back at its last good values; the group the update added is at 0.
    assert shape(sm, name) == {
        "w": ("InService", 1, 1, None),
        "g": ("InService", 1, 1, None),
        "new": ("InService", 0, 0, None),
    }
    nodes = sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
    assert {n["InstanceId"] for n in nodes} == before
    assert {n["InstanceStatus"]["Status"] for n in nodes} == {"Running"}
    assert scaling_statuses(sm, name) == ["Done"]
    status, inventory = server.admin("GET", "/_hyperpod/instances")
    assert status == 200
    assert {i["InstanceId"] for i in inventory["Instances"]} == before
    assert inventory["OrphanVolumes"] == 0
    # The cluster takes the next update, and the reason of the rollback is history.
    sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])
    server.settle()
    assert shape(sm, name)["w"] == ("InService", 2, 2, None)
    assert "FailureMessage" not in sm.describe_cluster(ClusterName=name)


def test_a_classic_update_whose_scripts_keep_failing_rolls_back_without_failing_the_cluster(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 2)])
    server.settle()
    inject(
        server,
        {"Kind": "lifecycle_script", "Cluster": name, "InstanceGroupName": "w", "Count": 100},
    )
    try:
        sm.update_cluster(ClusterName=name, InstanceGroups=[group("w", 4)])
        server.settle()
    finally:
        for fault_id, fault in faults(server).items():
            if fault.get("Cluster") == name:
                remove(server, fault_id)
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] == "InService"
    assert described["FailureMessage"]
    assert shape(sm, name)["w"] == ("InService", 2, 2, None)
    assert len(sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]) == 2


# Instance group status (spec 4.2) --------------------------------------------------------------


def group_status(sm: Any, cluster: str, group_name: str) -> str:
    return shape(sm, cluster)[group_name][0]


def test_a_group_with_failed_nodes_is_degraded_then_failed_when_none_is_left(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 2), group("other", 1)], NodeRecovery="None")
    server.settle()
    nodes = sorted(
        n["InstanceId"]
        for n in sm.list_cluster_nodes(ClusterName=name)["ClusterNodeSummaries"]
        if n["InstanceGroupName"] == "w"
    )
    hardware(server, name, nodes[0], "GpuXid79")
    server.settle()
    assert group_status(sm, name, "w") == "Degraded"
    assert group_status(sm, name, "other") == "InService"
    hardware(server, name, nodes[1], "GpuXid79")
    server.settle()
    # No healthy instance left, and with NodeRecovery None nothing gets one.
    assert shape(sm, name)["w"][:3] == ("Failed", 0, 2)
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[nodes[0]])
    assert group_status(sm, name, "w") == "Degraded"  # a replacement is under way
    server.settle()
    assert group_status(sm, name, "w") == "Degraded"
    sm.batch_replace_cluster_nodes(ClusterName=name, NodeIds=[nodes[1]])
    server.settle()
    assert group_status(sm, name, "w") == "InService"


def test_a_group_waiting_out_a_capacity_shortage_is_degraded(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("g", 1, GPU)])
    server.settle()
    with fault_in_force(server, {"Kind": "capacity", "InstanceType": GPU, "Cluster": name}):
        sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("g", 1)])
        server.advance(120)
        assert shape(sm, name)["g"] == ("Degraded", 1, 2, {"Scaling": 1})
    server.settle()
    assert shape(sm, name)["g"] == ("InService", 2, 2, None)
    # The failed launch, its pair, and a start of its own for the retry that got capacity.
    descriptions = [e["Description"] for e in events_of(sm, name)]
    starts = [d for d in descriptions if d.startswith("Instance creation started")]
    assert len(starts) == 3, descriptions  # the first node, the added one, and its retry
    assert sum(d.startswith("Failed to provision EC2 Instance") for d in descriptions) == 1
    assert sum(d.endswith("and InstanceGroup g failed") for d in descriptions) == 1


def test_the_groups_of_a_cluster_being_deleted_are_deleting(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    sm.create_cluster(ClusterName=name, InstanceGroups=[group("w", 1), group("v", 1)])
    server.settle()
    sm.delete_cluster(ClusterName=name)
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] == "Deleting"
    assert [g["Status"] for g in described["InstanceGroups"]] == ["Deleting", "Deleting"]
    server.settle()


# MinInstanceCount (spec 4.2, 8) -----------------------------------------------------------------

HOUR = 3600.0


def by_logical_id(sm: Any, cluster: str) -> list[dict[str, Any]]:
    return sm.list_cluster_nodes(ClusterName=cluster, IncludeNodeLogicalIds=True)[
        "ClusterNodeSummaries"
    ]


def test_a_new_group_short_of_its_min_count_waits_creating_then_rolls_back_after_3_hours(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1), group("g", 3, GPU, MinInstanceCount=2)])
    # In force before the launches, which come after cluster-level setup.
    with fault_in_force(server, {"Kind": "capacity", "InstanceType": GPU, "Cluster": name}):
        server.advance(HOUR)
        assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"
        described = groups_of(sm, name)["g"]
        assert (described["Status"], described["CurrentCount"], described["MinCount"]) == (
            "Creating",
            0,
            2,
        )
        # Mutating calls on a group in that phase are refused.
        added = sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("g", 1)])
        assert [f["ErrorCode"] for f in added["Failed"]] == ["InvalidInstanceGroupStatus"]
        waiting = [
            n["NodeLogicalId"] for n in by_logical_id(sm, name) if n["InstanceGroupName"] == "g"
        ]
        with pytest.raises(ClientError) as excinfo:
            sm.batch_delete_cluster_nodes(ClusterName=name, NodeLogicalIds=waiting[:1])
        code, message = error_of(excinfo)
        assert code == "ValidationException"
        assert "(InvalidNodeStatus)" in message and "MinCount" in message
        with pytest.raises(ClientError) as excinfo:
            sm.update_cluster_software(
                ClusterName=name, InstanceGroups=[{"InstanceGroupName": "g"}]
            )
        assert error_of(excinfo)[0] == "ConflictException"
        server.advance(2 * HOUR + 1)
        described = groups_of(sm, name)["g"]
    # Three hours on: back to 0 instances and MinCount 0, InService, with an event saying why.
    assert (
        described["Status"],
        described["CurrentCount"],
        described["TargetCount"],
        described["MinCount"],
    ) == ("InService", 0, 0, 0)
    assert [n["InstanceGroupName"] for n in by_logical_id(sm, name)] == ["w"]
    [missed] = [e for e in events_of(sm, name) if "did not reach its MinCount" in e["Description"]]
    assert missed["EventLevel"] == "Error"
    assert missed["InstanceGroupName"] == "g"
    server.settle()


def test_a_new_group_is_in_service_once_its_min_count_of_nodes_run(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("g", 3, GPU, MinInstanceCount=2)])
    [shortage] = inject(server, {"Kind": "capacity", "InstanceType": GPU, "Cluster": name})
    server.advance(HOUR)
    assert groups_of(sm, name)["g"]["Status"] == "Creating"
    remove(server, shortage["FaultId"])
    # A retry comes every 300 s and provisioning takes 600: an hour is plenty.
    for _ in range(120):
        if groups_of(sm, name)["g"]["Status"] != "Creating":
            break
        server.advance(30)
    described = groups_of(sm, name)["g"]
    assert described["Status"] == "InService"
    assert described["CurrentCount"] >= 2
    server.settle()
    assert shape(sm, name)["g"] == ("InService", 3, 3, None)
    assert groups_of(sm, name)["g"]["MinCount"] == 2
    # Its deadline went with the phase: nothing rolls it back later.
    server.advance(3 * HOUR)
    assert shape(sm, name)["g"] == ("InService", 3, 3, None)


def test_an_existing_group_raised_above_its_nodes_goes_back_to_its_last_in_service_values(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("g", 1, GPU)])
    server.settle()
    [kept] = [n["InstanceId"] for n in by_logical_id(sm, name)]
    with fault_in_force(server, {"Kind": "capacity", "InstanceType": GPU, "Cluster": name}):
        sm.update_cluster(ClusterName=name, InstanceGroups=[group("g", 4, GPU, MinInstanceCount=3)])
        assert groups_of(sm, name)["g"]["Status"] == "Updating"
        server.advance(3 * HOUR + 1)
        described = groups_of(sm, name)["g"]
    assert (described["Status"], described["TargetCount"], described.get("MinCount")) == (
        "InService",
        1,
        None,
    )
    assert [n["InstanceId"] for n in by_logical_id(sm, name)] == [kept]
    server.settle()
    assert scaling_statuses(sm, name) == ["Done"]


# A Continuous Slurm cluster's creation (spec 4.1, 8) ------------------------------------------


def slurm_cluster(sm: Any, name: str, *, login: bool = False, workers_type: str = GPU) -> None:
    groups = [
        group("controller", 1, SlurmConfig={"NodeType": "Controller"}),
        group("workers", 2, workers_type, SlurmConfig={"NodeType": "Compute"}),
    ]
    if login:
        groups.append(group("login", 1, SlurmConfig={"NodeType": "Login"}))
    sm.create_cluster(
        ClusterName=name,
        InstanceGroups=groups,
        NodeProvisioningMode="Continuous",
        Orchestrator={"Slurm": {"SlurmConfigStrategy": "Managed"}},
    )


def statuses_by_group(sm: Any, name: str) -> dict[str, list[str]]:
    """Each group's node statuses, a node still without an instance marked "(none)"."""
    found: dict[str, list[str]] = {}
    for node in by_logical_id(sm, name):
        status = node["InstanceStatus"]["Status"] + ("" if node.get("InstanceId") else " (none)")
        found.setdefault(node["InstanceGroupName"], []).append(status)
    return found


def test_a_continuous_slurm_cluster_is_in_service_once_its_controller_and_login_run(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    slurm_cluster(sm, name, login=True)
    seen: list[tuple[str, dict[str, list[str]]]] = []
    for _ in range(30):
        server.advance(60)
        seen.append(
            (sm.describe_cluster(ClusterName=name)["ClusterStatus"], statuses_by_group(sm, name))
        )
        if seen[-1][0] == "InService":
            break
    status, nodes = seen[-1]
    assert status == "InService"
    assert nodes["controller"] == ["Running"] and nodes["login"] == ["Running"]
    # Until then the cluster was Creating, and the workers had not started: controller first.
    assert all(s == "Creating" for s, _ in seen[:-1])
    for _, before in seen[:-1]:
        assert "Running" not in before["controller"] or "Running" not in before["login"]
    assert all(before["workers"] == ["Pending (none)"] * 2 for _, before in seen[:-1])
    server.settle()
    assert statuses_by_group(sm, name)["workers"] == ["Running", "Running"]
    events = [e["Description"] for e in events_of(sm, name)]
    completed = events.index(f"Cluster {name} creation completed successfully")
    workers_started = events.index(
        f"InstanceGroup workers creation started successfully in Cluster {name}"
    )
    assert completed < workers_started


def test_a_continuous_slurm_cluster_whose_controller_cannot_launch_waits_then_fails(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    slurm_cluster(sm, name)
    with fault_in_force(
        server, {"Kind": "capacity", "InstanceType": "ml.c5.xlarge", "Cluster": name}
    ):
        server.advance(HOUR)
        assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "Creating"
        server.advance(2 * HOUR + 1)
        described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] == "Failed"
    assert "controller" in described["FailureMessage"]
    assert "capacity" in described["FailureMessage"]
    server.settle()
    sm.delete_cluster(ClusterName=name)
    server.settle()


# Software updates that really patch (spec 6.6, 10) ---------------------------------------------

AMI = "ami-0123456789abcdef0"


def inside(server: ServerProcess, cluster: str, instance_id: str) -> dict[str, Any]:
    status, view = server.admin("GET", f"/_hyperpod/clusters/{cluster}/nodes/{instance_id}")
    assert status == 200, view
    return view


def test_update_cluster_software_with_an_image_id_re_images_every_node(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(
        sm,
        name,
        [group("w", 2, InstanceStorageConfigs=[{"EbsVolumeConfig": {"VolumeSizeInGB": 50}}])],
    )
    server.settle()
    nodes = [n["InstanceId"] for n in by_logical_id(sm, name)]
    roots = {}
    for instance_id in nodes:
        view = inside(server, name, instance_id)
        roots[instance_id] = {v["VolumeId"] for v in view["Volumes"] if v["Kind"] == "root"}
    sm.update_cluster_software(ClusterName=name, ImageId=AMI)
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "SystemUpdating"
    assert {n["InstanceStatus"]["Status"] for n in by_logical_id(sm, name)} == {"SystemUpdating"}
    server.settle()
    described = groups_of(sm, name)["w"]
    assert described["SoftwareUpdateStatus"] == "Succeeded"
    assert described["CurrentImageId"] == described["DesiredImageId"] == AMI
    for instance_id in nodes:
        detail = sm.describe_cluster_node(ClusterName=name, NodeId=instance_id)["NodeDetails"]
        assert detail["CurrentImageId"] == AMI
        assert detail["InstanceStatus"]["Status"] == "Running"
        assert "LastSoftwareUpdateTime" in detail
        view = inside(server, name, instance_id)
        assert view["ImageId"] == AMI
        new_roots = {v["VolumeId"] for v in view["Volumes"] if v["Kind"] == "root"}
        assert new_roots and not new_roots & roots[instance_id]  # the root volume is new
    # The same update again: everything is on it already, so nothing happens.
    sm.update_cluster_software(ClusterName=name, ImageId=AMI)
    assert sm.describe_cluster(ClusterName=name)["ClusterStatus"] == "InService"


def test_an_up_to_date_clusters_software_update_does_nothing(
    server: ServerProcess, name: str
) -> None:
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1)])
    server.settle()
    before = events_of(sm, name)
    sm.update_cluster_software(ClusterName=name)
    described = sm.describe_cluster(ClusterName=name)
    assert described["ClusterStatus"] == "InService"
    assert "SoftwareUpdateStatus" not in described["InstanceGroups"][0]
    assert events_of(sm, name) == before
    assert {n["InstanceStatus"]["Status"] for n in by_logical_id(sm, name)} == {"Running"}


def test_a_published_platform_release_makes_clusters_out_of_date_until_they_update(
    fresh_server: ServerProcess, name: str
) -> None:
    server = fresh_server
    sm = server.client()
    eks_cluster(sm, name, [group("w", 2)])
    server.settle()
    status, platform = server.admin("GET", "/_hyperpod/platform")
    assert status == 200
    first = platform["LatestImageReleaseVersion"]
    status, body = server.admin(
        "POST", "/_hyperpod/platform/releases", {"ImageReleaseVersion": "2026.1.15"}
    )
    assert status == 201, body
    assert body == {"LatestImageReleaseVersion": "2026.1.15"}
    # Bad and older versions are refused, in JSON.
    for version, expected in ((None, 400), ("latest", 400), (first, 409), ("2026.1.15", 409)):
        status, refusal = server.admin(
            "POST", "/_hyperpod/platform/releases", {"ImageReleaseVersion": version}
        )
        assert status == expected, (version, refusal)
        assert refusal["error"] in ("InvalidRelease", "ReleaseNotNewer")
    # The cluster is out of date everywhere a client looks.
    described = groups_of(sm, name)["w"]
    assert (described["CurrentImageReleaseVersion"], described["ImageVersionStatus"]) == (
        first,
        "UpdateAvailable",
    )
    [summary] = [c for c in sm.list_clusters()["ClusterSummaries"] if c["ClusterName"] == name]
    assert summary["ImageVersionStatus"] == "UpdateAvailable"
    assert {n["ImageVersionStatus"] for n in by_logical_id(sm, name)} == {"UpdateAvailable"}
    # A cluster created now is on the new release.
    eks_cluster(sm, f"{name}-new", [group("w", 1)])
    server.settle()
    assert groups_of(sm, f"{name}-new")["w"]["CurrentImageReleaseVersion"] == "2026.1.15"
    # The patching flow brings the old one up to date.
    sm.update_cluster_software(ClusterName=name)
    assert groups_of(sm, name)["w"]["DesiredImageReleaseVersion"] == "2026.1.15"
    server.settle()
    described = groups_of(sm, name)["w"]
    assert described["SoftwareUpdateStatus"] == "Succeeded"
    assert (described["CurrentImageReleaseVersion"], described["ImageVersionStatus"]) == (
        "2026.1.15",
        "UpToDate",
    )
    assert {n["CurrentImageReleaseVersion"] for n in by_logical_id(sm, name)} == {"2026.1.15"}
    # The release outlives a restart.
    server.stop()
    server.start()
    status, platform = server.admin("GET", "/_hyperpod/platform")
    assert platform["LatestImageReleaseVersion"] == "2026.1.15"


# Event retention (spec 4.6, 6.14) --------------------------------------------------------------

DAY = 86400.0


def test_events_and_operations_age_out_after_14_days(
    fresh_server: ServerProcess, name: str
) -> None:
    server = fresh_server
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1)])
    server.settle()
    sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
    server.settle()
    assert events_of(sm, name)  # (and the answer is cached now)
    assert operations(sm, name)
    server.advance(13 * DAY)
    assert events_of(sm, name) and operations(sm, name)
    sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
    server.settle()
    server.advance(1 * DAY + 3600)
    # The first fortnight's records are gone; the last scaling's are still there.
    events = events_of(sm, name)
    assert events
    cutoff = events[0]["EventTime"]
    assert all(e["EventTime"] >= cutoff for e in events)
    assert not [
        e
        for e in events
        if "creation started" in e["Description"] and e["ResourceType"] == "Cluster"
    ]
    assert len(operations(sm, name)) == 1
    server.advance(15 * DAY)
    assert events_of(sm, name) == []
    assert sm.list_cluster_operations(ClusterName=name)["ClusterOperationSummaries"] == []


def test_a_cluster_keeps_its_newest_events_up_to_the_cap(tmp_path: Any, name: str) -> None:
    server = ServerProcess(tmp_path / "data", "--clock", "manual", "--events-per-cluster", "20")
    server.start()
    try:
        sm = server.client()
        # Five events a node and more: well over the cap, in less than an hour.
        eks_cluster(sm, name, [group("w", 30)])
        server.settle()
        # Trimmed as the engine wrote them, not only at the hourly prune: never a fifth of a
        # cap over it, and what is kept is the newest.
        every = events_of(sm, name)
        assert 20 <= len(every) < 24
        assert every[-1]["Description"].startswith("Instance Group w creation in Cluster")
        server.advance(3600)
        kept = events_of(sm, name)
        assert [e["EventId"] for e in kept] == [e["EventId"] for e in every[-20:]]
    finally:
        server.stop()


# Time that matches the wall clock ---------------------------------------------------------------


def times_in(answer: Any) -> list[float]:
    """Every timestamp in a boto3 answer, as epoch seconds."""
    if isinstance(answer, dict):
        return [t for value in answer.values() for t in times_in(value)]
    if isinstance(answer, list):
        return [t for value in answer for t in times_in(value)]
    return [answer.timestamp()] if hasattr(answer, "timestamp") else []


def test_under_the_real_clock_no_answer_carries_a_time_later_than_the_wall_clock(
    tmp_path: Any, name: str
) -> None:
    server = ServerProcess(tmp_path / "data", "--speed", "600").start()
    try:
        sm = server.client()
        started = time.time()
        eks_cluster(sm, name, [group("w", 2)])
        latest = 0.0
        # Creation takes 540 HyperPod seconds: under a second of wall time at speed 600.
        deadline = time.monotonic() + 60
        while sm.describe_cluster(ClusterName=name)["InstanceGroups"][0]["CurrentCount"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sm.batch_add_cluster_nodes(ClusterName=name, NodesToAdd=[add("w", 1)])
        for _ in range(20):
            answers = [
                sm.describe_cluster(ClusterName=name),
                sm.list_clusters(),
                sm.list_cluster_nodes(ClusterName=name),
                sm.list_cluster_events(ClusterName=name),
                sm.list_cluster_operations(ClusterName=name),
            ]
            now = time.time()
            stamps = times_in(answers)
            assert stamps and max(stamps) <= now + 0.002, max(stamps) - now
            latest = max(latest, *stamps)
            time.sleep(0.05)
        # The times are the wall clock's: the cluster was created when the client asked.
        created = sm.describe_cluster(ClusterName=name)["CreationTime"].timestamp()
        assert started - 0.5 <= created <= started + 5
        status, clock = server.admin("GET", "/_hyperpod/clock")
        assert status == 200 and abs(clock["Now"] - time.time()) < 5
    finally:
        server.stop()


def test_work_that_fell_due_while_the_server_was_down_runs_when_it_starts(
    tmp_path: Any, name: str
) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--speed", "60").start()
    sm = server.client()
    eks_cluster(sm, name, [group("w", 1)])  # 540 HyperPod s: 9 wall seconds at speed 60
    server.stop()
    time.sleep(6)  # past the launch, due 5 s after the request (300 HyperPod s)
    # Started again faster: what was due while it was down, and what is due since, runs.
    server = ServerProcess(data, "--speed", "600").start()
    try:
        sm = server.client()
        deadline = time.monotonic() + 5
        while shape(sm, name)["w"][1] < 1:
            assert time.monotonic() < deadline, "the overdue work did not run at start"
            time.sleep(0.05)
        node = by_logical_id(sm, name)[0]
        assert node["LaunchTime"].timestamp() <= time.time()
    finally:
        server.stop()

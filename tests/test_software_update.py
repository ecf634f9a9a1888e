"""UpdateClusterSoftware rolling through a group in batches, and rolling back."""

from __future__ import annotations

from typing import Any

from hyperpod_local.mock import HyperPodMock
from tests.support import group

OLD, NEW = "2025.10.1", "2025.11.20"


def releases(sm: Any, cluster: str) -> dict[str, tuple[str, str]]:
    nodes = sm.list_cluster_nodes(ClusterName=cluster, MaxResults=100)["ClusterNodeSummaries"]
    return {
        n["InstanceId"]: (n["InstanceStatus"]["Status"], n["CurrentImageReleaseVersion"])
        for n in nodes
    }


def workers(sm: Any, cluster: str) -> dict[str, Any]:
    return sm.describe_cluster(ClusterName=cluster)["InstanceGroups"][0]


def rolling(batch: int, wait: int = 600, alarms: list[str] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": batch}},
        "WaitIntervalInSeconds": wait,
    }
    if alarms:
        config["AutoRollbackConfiguration"] = [{"AlarmName": name} for name in alarms]
    return config


def make(hp: HyperPodMock, name: str, count: int = 6, **cluster: Any) -> Any:
    sm = hp.client()
    sm.create_cluster(
        ClusterName=name, InstanceGroups=[group("w", count, ImageReleaseVersion=OLD)], **cluster
    )
    hp.settle()
    return sm


def test_a_rolling_update_goes_in_batches_with_a_wait_between(hyperpod: HyperPodMock) -> None:
    sm = make(hyperpod, "roll")
    before = workers(sm, "roll")
    assert before["CurrentImageReleaseVersion"] == OLD
    assert before["ImageVersionStatus"] == "UpdateAvailable"
    sm.update_cluster_software(ClusterName="roll", DeploymentConfig=rolling(2))
    group_now = workers(sm, "roll")
    assert sm.describe_cluster(ClusterName="roll")["ClusterStatus"] == "SystemUpdating"
    assert group_now["SoftwareUpdateStatus"] == "InProgress"
    assert group_now["DesiredImageReleaseVersion"] == NEW
    assert group_now["CurrentImageReleaseVersion"] == OLD
    assert group_now["ActiveSoftwareUpdateConfig"]["WaitIntervalInSeconds"] == 600
    seen = []
    for _ in range(3):
        states = releases(sm, "roll")
        updating = [i for i, (status, _) in states.items() if status == "SystemUpdating"]
        assert len(updating) == 2  # one batch of 2 at a time
        seen.append(set(updating))
        hyperpod.advance(600)  # the re-image (software_update_cpu)
        assert sum(release == NEW for _, release in releases(sm, "roll").values()) == 2 * len(seen)
        assert workers(sm, "roll")["TargetStateCount"] == 2 * len(seen)
        hyperpod.advance(600)  # the wait between batches
    assert len(set().union(*seen)) == 6
    hyperpod.settle()
    done = workers(sm, "roll")
    assert sm.describe_cluster(ClusterName="roll")["ClusterStatus"] == "InService"
    assert done["SoftwareUpdateStatus"] == "Succeeded"
    assert done["CurrentImageReleaseVersion"] == done["DesiredImageReleaseVersion"] == NEW
    assert done["ImageVersionStatus"] == "UpToDate"
    assert "ActiveSoftwareUpdateConfig" not in done
    assert set(releases(sm, "roll").values()) == {("Running", NEW)}


def test_an_alarm_rolls_the_update_back(hyperpod: HyperPodMock) -> None:
    # Continuous, for its events.
    sm = make(
        hyperpod,
        "alarm",
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/a"}},
    )
    sm.update_cluster_software(ClusterName="alarm", DeploymentConfig=rolling(2, alarms=["loss"]))
    hyperpod.advance(600 + 600)  # first batch done, waited
    hyperpod.inject("alarm", alarm_name="loss")
    hyperpod.advance(600)  # second batch re-imaged; the alarm is seen
    group_now = workers(sm, "alarm")
    assert group_now["SoftwareUpdateStatus"] == "RollbackInProgress"
    # On rollback the current and desired images swap.
    assert group_now["CurrentImageReleaseVersion"] == NEW
    assert group_now["DesiredImageReleaseVersion"] == OLD
    hyperpod.settle()
    done = workers(sm, "alarm")
    assert done["SoftwareUpdateStatus"] == "RollbackComplete"
    assert done["CurrentImageReleaseVersion"] == OLD
    assert set(releases(sm, "alarm").values()) == {("Running", OLD)}
    assert sm.describe_cluster(ClusterName="alarm")["ClusterStatus"] == "InService"
    events = [e["Description"] for e in sm.list_cluster_events(ClusterName="alarm")["Events"]]
    assert any("rolling back: alarm loss is in ALARM" in d for d in events)


def test_a_failing_lifecycle_script_rolls_the_update_back(hyperpod: HyperPodMock) -> None:
    sm = make(hyperpod, "lcs", 4)
    hyperpod.inject("lifecycle_script", cluster="lcs", instance_group="w")
    sm.update_cluster_software(ClusterName="lcs", DeploymentConfig=rolling(1, wait=0))
    hyperpod.settle()
    assert workers(sm, "lcs")["SoftwareUpdateStatus"] == "RollbackComplete"
    assert set(releases(sm, "lcs").values()) == {("Running", OLD)}


def test_without_a_deployment_config_every_node_updates_at_once(hyperpod: HyperPodMock) -> None:
    sm = make(hyperpod, "once", 5)
    sm.update_cluster_software(ClusterName="once")
    assert {status for status, _ in releases(sm, "once").values()} == {"SystemUpdating"}
    hyperpod.settle()
    assert set(releases(sm, "once").values()) == {("Running", NEW)}


def test_a_percentage_batch_rounds_up(hyperpod: HyperPodMock) -> None:
    sm = make(hyperpod, "pct", 5)
    config = {
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENTAGE", "Value": 30}}
    }
    sm.update_cluster_software(ClusterName="pct", DeploymentConfig=config)
    updating = [s for s, _ in releases(sm, "pct").values() if s == "SystemUpdating"]
    assert len(updating) == 2  # 30% of 5, rounded up

"""The files HyperPod writes on a node for its lifecycle scripts, with the cluster's real
values: /opt/ml/config/resource_config.json (every group's instances: names, ids, IPs, as
`SAGEMAKER_RESOURCE_CONFIG_PATH` names it) and, for a Slurm cluster configured through the
API (SlurmConfig), /opt/ml/config/provisioning_parameters.json (the controller, login and
worker groups, with the controller's and login nodes' hosts)."""

from __future__ import annotations

from typing import Any

from hyperpod_local.domain.model import Cluster, Node


def resource_config(cluster: Cluster, nodes: dict[str, list[Node]]) -> dict[str, Any]:
    groups = []
    for group in cluster.groups:
        members = [node for node in nodes.get(group.name, []) if node.instance_id]
        groups.append(
            {
                "Name": group.name,
                "InstanceType": group.instance_types[0],
                "Instances": [
                    {
                        "InstanceName": f"{group.name}-{index}",
                        "InstanceId": node.instance_id,
                        "AgentIp": node.private_ip,
                        "CustomerIpAddress": node.private_ip,
                        "Hostname": node.hostname,
                        "NodeLogicalId": node.logical_id,
                    }
                    for index, node in enumerate(members, start=1)
                ],
            }
        )
    return {
        "ClusterConfig": {"ClusterArn": cluster.arn, "ClusterName": cluster.name},
        "InstanceGroups": groups,
    }


def provisioning_parameters(
    cluster: Cluster, nodes: dict[str, list[Node]]
) -> dict[str, Any] | None:
    """None for an EKS cluster and for a legacy Slurm one (its own provisioning_parameters.json
    comes with its scripts)."""
    if cluster.is_eks:
        return None
    types = {group.name: (group.spec.get("SlurmConfig") or {}) for group in cluster.groups}
    if not any(types.values()):
        return None
    params: dict[str, Any] = {"version": "1.0.0", "workload_manager": "slurm"}
    workers = []
    for group in cluster.groups:
        config = types[group.name]
        kind = config.get("NodeType", "Compute")
        hosts = [node.private_ip for node in nodes.get(group.name, []) if node.private_ip]
        if kind == "Controller":
            params["controller_group"] = group.name
            params["controller_hosts"] = hosts
        elif kind == "Login":
            params["login_group"] = group.name
            params["login_hosts"] = hosts
        else:
            partitions = config.get("PartitionNames") or [group.name]
            workers.append({"instance_group_name": group.name, "partition_name": partitions[0]})
    params["worker_groups"] = workers
    return params

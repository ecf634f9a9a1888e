"""CreateClusterExtension, DescribeClusterExtension, UpdateClusterExtension,
DeleteClusterExtension, ListClusterExtensions and ListClusterExtensionVersions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hyperpod_local.api.resolve import find_cluster
from hyperpod_local.api.services import Services
from hyperpod_local.domain.errors import (
    ConflictError,
    ResourceInUse,
    ResourceNotFound,
    ValidationError,
)
from hyperpod_local.domain.extensions import (
    TOKEN_LIFETIME,
    Extension,
    ExtensionStatus,
    check_delete,
    check_update,
    configure,
    extension_arn,
    find_version,
    parse_configuration,
    versions_highest_first,
)
from hyperpod_local.domain.model import Cluster, ClusterStatus, Task
from hyperpod_local.domain.scope import Scope
from hyperpod_local.store.unit_of_work import Tx

DEFAULT_MAX_RESULTS = 100
TASK_KIND = "extension"
# The cluster statuses in which HyperPod installs, changes or removes an extension.
_WORKING = (ClusterStatus.IN_SERVICE, ClusterStatus.UPDATING)


def _digest(params: dict[str, Any], keys: tuple[str, ...]) -> str:
    given = {key: params.get(key) for key in keys}
    return hashlib.sha256(json.dumps(given, sort_keys=True).encode()).hexdigest()


def _check_cluster(cluster: Cluster) -> None:
    if cluster.is_eks:
        raise ValidationError(
            f"Extensions are supported only on clusters orchestrated by Slurm; cluster "
            f"{cluster.name} is orchestrated by Amazon EKS."
        )
    if not cluster.continuous:
        raise ValidationError(
            f"Extensions are supported only on clusters with NodeProvisioningMode set to "
            f"Continuous; cluster {cluster.name} is not."
        )


def _check_working(cluster: Cluster) -> None:
    if cluster.status not in _WORKING:
        raise ValidationError(
            f"Cluster {cluster.name} is in {cluster.status} status; extensions can be changed "
            "only on an InService cluster."
        )


def _find(tx: Tx, scope: Scope, params: dict[str, Any]) -> tuple[Cluster, Extension]:
    cluster = find_cluster(tx, scope, params["ClusterArn"], with_groups=False)
    arn = params["ExtensionArn"]
    extension = tx.extensions.get(arn)
    if extension is None or extension.cluster_id != cluster.id:
        raise ResourceNotFound(f"Could not find extension '{arn}'.")
    return cluster, extension


def _schedule(services: Services, tx: Tx, extension: Extension, step: str, after: float) -> None:
    tx.tasks.add(
        Task(
            cluster_id=extension.cluster_id,
            kind=TASK_KIND,
            step=step,
            due_at=round(services.clock.now() + after, 3),
            data={"ExtensionArn": extension.arn},
        )
    )


def create_cluster_extension(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    token = params.get("ClientToken")
    digest = _digest(
        params, ("ClusterArn", "ExtensionName", "ExtensionVersion", "ConfigurationValues", "Tags")
    )
    name = params["ExtensionName"]
    with services.store.write() as tx:
        now = services.clock.now()
        cluster = find_cluster(tx, scope, params["ClusterArn"], with_groups=False)
        _check_cluster(cluster)
        existing = tx.extensions.by_name(cluster.id, name)
        if token:
            replayed = next(
                (
                    ext
                    for ext in tx.extensions.of_cluster(cluster.id)
                    if ext.create_token == token and ext.creation_time >= now - TOKEN_LIFETIME
                ),
                None,
            )
            if replayed is not None:
                if replayed.create_digest != digest:
                    raise ConflictError(
                        f"The ClientToken {token} was already used with different parameters."
                    )
                return {"ExtensionArn": replayed.arn}
        if existing is not None:
            raise ResourceInUse(
                f"The cluster {cluster.name} already has an extension named {name} "
                f"({existing.arn}). A cluster can have only one extension with a given name."
            )
        version = find_version(name, params.get("ExtensionVersion"))
        configuration = configure(
            version, {}, parse_configuration(params.get("ConfigurationValues"))
        )
        _check_working(cluster)
        extension = Extension(
            arn=extension_arn(scope, name, cluster.id, services.ids.cluster_id()),
            cluster_id=cluster.id,
            cluster_arn=cluster.arn,
            name=name,
            version=version.version,
            status=ExtensionStatus.CREATING,
            configuration=configuration,
            creation_time=now,
            last_modified_time=now,
            create_token=token,
            create_digest=digest if token else None,
        )
        tx.extensions.add(extension)
        tx.tags.put(extension.arn, params.get("Tags", []))
        _schedule(services, tx, extension, "install", services.durations.extension_install)
    services.engine.notify()
    return {"ExtensionArn": extension.arn}


def describe_cluster_extension(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    with services.store.read() as tx:
        cluster, extension = _find(tx, scope, params)
        running = tx.extensions.running_among(cluster.id)
        failed_running = (
            tx.extensions.running_among(cluster.id, extension.failed_nodes)
            if extension.failed_nodes
            else 0
        )
    details: dict[str, Any] = {
        "ClusterArn": extension.cluster_arn,
        "ExtensionArn": extension.arn,
        "ExtensionName": extension.name,
        "ExtensionVersion": extension.version,
        "Status": extension.status,
        "ConfigurationValues": json.dumps(extension.configuration, separators=(",", ":")),
        "CreationTime": extension.creation_time,
        "LastModifiedTime": extension.last_modified_time,
    }
    answer: dict[str, Any] = {
        "ExtensionDetails": details,
        "NodeSummary": extension.node_summary(running, failed_running),
    }
    health = extension.health(running, failed_running)
    if health is not None:
        answer["Health"] = health
    return answer


def update_cluster_extension(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    token = params.get("ClientToken")
    digest = _digest(params, ("ExtensionVersion", "ConfigurationValues"))
    with services.store.write() as tx:
        now = services.clock.now()
        cluster, extension = _find(tx, scope, params)
        if token and extension.update_token == token:
            if extension.update_digest != digest:
                raise ConflictError(
                    f"The ClientToken {token} was already used with different parameters."
                )
            return {"ExtensionArn": extension.arn}
        check_update(extension, params.get("ExtensionVersion"))
        version = find_version(extension.name, params.get("ExtensionVersion", extension.version))
        extension.configuration = configure(
            version, extension.configuration, parse_configuration(params.get("ConfigurationValues"))
        )
        _check_working(cluster)
        extension.version = version.version
        extension.status = ExtensionStatus.UPDATING
        extension.last_modified_time = now
        extension.update_token, extension.update_digest = token, digest if token else None
        tx.extensions.save(extension)
        _schedule(services, tx, extension, "update", services.durations.extension_update)
    services.engine.notify()
    return {"ExtensionArn": extension.arn}


def delete_cluster_extension(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    with services.store.write() as tx:
        _cluster, extension = _find(tx, scope, params)
        check_delete(extension)
        extension.status = ExtensionStatus.DELETING
        extension.last_modified_time = services.clock.now()
        tx.extensions.save(extension)
        _schedule(services, tx, extension, "remove", services.durations.extension_remove)
    services.engine.notify()
    return {"ExtensionArn": extension.arn}


def list_cluster_extensions(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    """Oldest first; the time filters apply within the page, as the documentation allows."""
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    context = {
        "op": "ListClusterExtensions",
        "cluster": params["ClusterArn"],
        "after": params.get("CreationTimeAfter"),
        "before": params.get("CreationTimeBefore"),
    }
    position = services.tokens.decode(params.get("NextToken"), context)
    with services.store.read() as tx:
        cluster = find_cluster(tx, scope, params["ClusterArn"], with_groups=False)
        found = tx.extensions.page(
            cluster.id,
            (float(position[0]), int(position[1])) if position else None,
            limit + 1,
            params.get("CreationTimeAfter"),
            params.get("CreationTimeBefore"),
        )
    page = found[:limit]
    result: dict[str, Any] = {
        "Extensions": [
            {
                "ExtensionArn": ext.arn,
                "ExtensionName": ext.name,
                "ExtensionVersion": ext.version,
                "Status": ext.status,
                "CreationTime": ext.creation_time,
            }
            for ext in page
        ]
    }
    if len(found) > limit:
        last = page[-1]
        result["NextToken"] = services.tokens.encode(context, [last.creation_time, last.seq])
    return result


def list_cluster_extension_versions(
    services: Services, scope: Scope, params: dict[str, Any]
) -> dict[str, Any]:
    limit = params.get("MaxResults", DEFAULT_MAX_RESULTS)
    context = {"op": "ListClusterExtensionVersions", "name": params["ExtensionName"]}
    position = services.tokens.decode(params.get("NextToken"), context)
    start = int(position[0]) if position else 0
    versions = versions_highest_first(params["ExtensionName"])
    result: dict[str, Any] = {
        "ExtensionVersions": [{"ExtensionVersion": v} for v in versions[start : start + limit]]
    }
    if start + limit < len(versions):
        result["NextToken"] = services.tokens.encode(context, [start + limit])
    return result

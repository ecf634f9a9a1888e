"""Cluster extensions: software HyperPod installs and manages on every node of a Continuous
Slurm cluster (CreateClusterExtension and its family).

What HyperPod offers (the catalogue), what each version's configuration accepts, the statuses
an extension moves through, and how its node summary and health read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hyperpod_local.domain.errors import ConflictError, ValidationError
from hyperpod_local.domain.faults import Fault
from hyperpod_local.domain.scope import Scope

# A ClientToken answers the same within this long (the API reference: 8 hours).
TOKEN_LIFETIME = 8 * 3600.0


class ExtensionStatus(StrEnum):
    CREATING = "Creating"
    ACTIVE = "Active"
    CREATE_FAILED = "CreateFailed"
    UPDATING = "Updating"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"
    DEGRADED = "Degraded"
    UPDATE_FAILED = "UpdateFailed"


# While one of these is in progress the extension takes no other change.
IN_PROGRESS = frozenset(
    {ExtensionStatus.CREATING, ExtensionStatus.UPDATING, ExtensionStatus.DELETING}
)
# Statuses in which the extension runs its current version on the nodes it did not fail on.
RUNNING = frozenset(
    {ExtensionStatus.ACTIVE, ExtensionStatus.DEGRADED, ExtensionStatus.DELETE_FAILED}
)


# One setting of an extension version: its default and the values it may take (None: any
# JSON value of the default's type).
@dataclass(frozen=True, slots=True)
class Setting:
    default: Any
    choices: tuple[Any, ...] | None = None


# The settings of sagemaker-observability, by their path in the configuration object.
_OBSERVABILITY_1_0: dict[str, Setting] = {
    "metricsProvider.nodeMetrics.level": Setting("BASIC", ("BASIC", "ADVANCED")),
    "metricsProvider.scrapeIntervalSeconds": Setting(60),
    "logsProvider.enabled": Setting(False, (True, False)),
}
_OBSERVABILITY_1_1: dict[str, Setting] = {
    **_OBSERVABILITY_1_0,
    "metricsProvider.slurmMetrics.enabled": Setting(True, (True, False)),
}


@dataclass(frozen=True, slots=True)
class ExtensionVersion:
    version: str
    settings: dict[str, Setting]


# What HyperPod offers for new installations, each extension's versions lowest first.
CATALOGUE: dict[str, tuple[ExtensionVersion, ...]] = {
    "sagemaker-observability": (
        ExtensionVersion("1.0.0", _OBSERVABILITY_1_0),
        ExtensionVersion("1.1.0", _OBSERVABILITY_1_1),
        ExtensionVersion("1.2.0", _OBSERVABILITY_1_1),
    ),
}

# The text of each health issue code, the same on every node that has it.
ISSUE_MESSAGES: dict[str, str] = {
    "InvalidConfiguration": "The extension's configuration is not valid on the node.",
    "ConfigurationConflict": "A setting conflicts with the node's existing configuration.",
    "AccessDenied": "The cluster's execution role is not allowed to call a service the "
    "extension needs.",
    "ResourceNotFound": "A resource the extension needs was not found.",
    "DependencyUnreachable": "A service the extension needs cannot be reached from the node.",
    "ExtensionUnhealthy": "The extension's agent on the node reports that it is unhealthy.",
    "InternalFailure": "SageMaker HyperPod had an internal error on the node.",
    "Other": "The extension has other problems on the node.",
}
DEFAULT_ISSUE = "ExtensionUnhealthy"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def versions_highest_first(name: str) -> list[str]:
    """The versions of `name` that can be installed; none for a name HyperPod does not offer."""
    offered = CATALOGUE.get(name, ())
    return sorted((v.version for v in offered), key=version_key, reverse=True)


def find_version(name: str, version: str | None) -> ExtensionVersion:
    """The version asked for (the latest when None), or a ValidationException."""
    offered = CATALOGUE.get(name)
    if not offered:
        raise ValidationError(
            f"The extension '{name}' is not available. Available extensions: "
            f"{', '.join(sorted(CATALOGUE))}."
        )
    if version is None:
        return max(offered, key=lambda v: version_key(v.version))
    for candidate in offered:
        if candidate.version == version:
            return candidate
    raise ValidationError(
        f"Version {version} of extension '{name}' is not available. Available versions: "
        f"{', '.join(versions_highest_first(name))}."
    )


def _paths(settings: dict[str, Setting]) -> dict[tuple[str, ...], Setting]:
    return {tuple(path.split(".")): setting for path, setting in settings.items()}


def defaults(version: ExtensionVersion) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, setting in _paths(version.settings).items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = setting.default
    return tree


def parse_configuration(text: str | None) -> dict[str, Any]:
    """ConfigurationValues as the object it must be."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError(
            "ConfigurationValues must be a JSON object serialized as a string."
        ) from None
    if not isinstance(value, dict):
        raise ValidationError("ConfigurationValues must be a JSON object serialized as a string.")
    return value


def configure(
    version: ExtensionVersion, current: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """The whole configuration after `changes`: settings given are set, `null` returns one to
    its default, settings left out keep their values in `current` (or their defaults), and
    settings the version does not know are dropped when it is a new version's."""
    known = _paths(version.settings)
    result: dict[tuple[str, ...], Any] = {}
    flat_current = _flatten(current)
    for path, setting in known.items():
        result[path] = flat_current.get(path, setting.default)
    for path, value in _flatten(changes, keep_null=True).items():
        setting = known.get(path)
        shown = ".".join(path)
        if setting is None:
            raise ValidationError(
                f"ConfigurationValues has an unknown setting '{shown}' for version "
                f"{version.version}."
            )
        if value is None:
            result[path] = setting.default
            continue
        if not _same_type(value, setting.default) or (
            setting.choices is not None and value not in setting.choices
        ):
            allowed = (
                ", ".join(json.dumps(c) for c in setting.choices)
                if setting.choices
                else f"a {type(setting.default).__name__}"
            )
            raise ValidationError(
                f"ConfigurationValues has an invalid value {json.dumps(value)} for setting "
                f"'{shown}': it must be {allowed}."
            )
        result[path] = value
    tree: dict[str, Any] = {}
    for path, value in sorted(result.items()):
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _flatten(
    tree: dict[str, Any], prefix: tuple[str, ...] = (), *, keep_null: bool = False
) -> dict[tuple[str, ...], Any]:
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, path, keep_null=keep_null))
        elif value is not None or keep_null:
            flat[path] = value
    return flat


def extension_arn(scope: Scope, name: str, cluster_id: str, extension_id: str) -> str:
    return (
        f"arn:aws:sagemaker:{scope.region}:{scope.account_id}:extension/"
        f"{name}/{cluster_id}/{extension_id}"
    )


@dataclass(slots=True)
class Extension:
    arn: str
    cluster_id: str
    cluster_arn: str
    name: str
    version: str
    status: str
    configuration: dict[str, Any]
    creation_time: float
    last_modified_time: float
    # Where the last install or update failed: on every node, or on these (instance ids);
    # and the health issue's code.
    failed_all: bool = False
    failed_nodes: list[str] = field(default_factory=list)
    issue_code: str | None = None
    # The create request's ClientToken, the digest of its parameters, and when.
    create_token: str | None = None
    create_digest: str | None = None
    # The last update's ClientToken and digest: the same update sent again is applied once.
    update_token: str | None = None
    update_digest: str | None = None
    seq: int = 0

    def node_summary(self, running: int, failed_running: int) -> dict[str, int]:
        """TotalCount: the cluster's `running` nodes (HyperPod targets every one, those added
        later too); ActiveCount: those running the current version and configuration, all
        but the `failed_running` ones it failed on, while it runs at all."""
        if self.status not in RUNNING or self.failed_all:
            return {"TotalCount": running, "ActiveCount": 0}
        return {"TotalCount": running, "ActiveCount": running - failed_running}

    def health(self, running: int, failed_running: int) -> dict[str, Any] | None:
        """The issues, or None when no node has one (HyperPod then leaves Health out)."""
        if self.issue_code is None or not (self.failed_all or self.failed_nodes):
            return None
        count = running if self.failed_all else failed_running
        code = self.issue_code
        return {"Issues": [{"Code": code, "Message": ISSUE_MESSAGES[code], "NodeCount": count}]}


def check_update(extension: Extension, version: str | None) -> None:
    if extension.status == ExtensionStatus.DELETING:
        raise ConflictError(
            f"The extension {extension.arn} is being deleted; it cannot be updated."
        )
    if extension.status in IN_PROGRESS:
        raise ConflictError(
            f"The extension {extension.arn} is {extension.status}; wait until it is done before "
            "updating it."
        )
    if version is not None and version_key(version) < version_key(extension.version):
        raise ValidationError(
            f"You can't update the extension {extension.name} from version {extension.version} "
            f"to the earlier version {version}. To use an earlier version, delete the extension "
            "and create it again with that version."
        )


def check_delete(extension: Extension) -> None:
    if extension.status == ExtensionStatus.DELETING:
        raise ConflictError(f"The extension {extension.arn} is already being deleted.")
    if extension.status in IN_PROGRESS:
        raise ConflictError(
            f"The extension {extension.arn} is {extension.status}; wait until it is done before "
            "deleting it."
        )


def installed(
    action: str, fault: Fault | None, node_running: bool
) -> tuple[ExtensionStatus, bool, list[str]]:
    """How an install ("Create") or an update ends, whether it failed on every node, and the
    nodes it failed on: everywhere for a fault without an instance, on its node for one with
    (none if that node is not running)."""
    if fault is not None and fault.instance_id is None:
        if action == "Create":
            return ExtensionStatus.CREATE_FAILED, True, []
        return ExtensionStatus.UPDATE_FAILED, True, []
    if fault is not None and fault.instance_id is not None and node_running:
        return ExtensionStatus.DEGRADED, False, [fault.instance_id]
    return ExtensionStatus.ACTIVE, False, []

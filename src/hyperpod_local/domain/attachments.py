"""EBS volumes and network interfaces a customer attaches to a node, and the rules of it.

HyperPod passes EC2's refusals on as a ValidationException whose message carries EC2's code,
`HyperPod - Ec2ErrCode: <code> : Ec2ErrMsg: <message>` (the form the EBS CSI driver matches,
kubernetes-sigs/aws-ebs-csi-driver pkg/cloud/cloud.go); the EC2 messages are EC2's.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from hyperpod_local.domain.errors import ValidationError
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.domain.model import Node, NodeStatus

# VolumeAttachmentStatus of the model. `busy` (EC2: attached, in use by the OS) never shows.
ATTACHING, ATTACHED, DETACHING = "attaching", "attached", "detaching"
DETACHED = "detached"

# The device names a customer volume gets, in order: /dev/xvdb to /dev/xvdz (the model's
# VolumeDeviceName pattern; xvda is the root volume's).
DEVICE_NAMES = tuple(f"/dev/xvd{letter}" for letter in string.ascii_lowercase[1:])
# Network interfaces a node takes through AttachClusterNodeNetworkInterface, beside its
# primary one (device index 0): device indexes 1 to 7.
MAX_ATTACHED_INTERFACES = 7

# A node whose instance is going away or changing hands takes no attachment.
_NO_ATTACH = frozenset(
    {NodeStatus.SHUTTING_DOWN, NodeStatus.DETACH_IN_PROGRESS, NodeStatus.ATTACH_IN_PROGRESS}
)


@dataclass(slots=True)
class VolumeAttachment:
    account_id: str
    region: str
    volume_id: str
    instance_id: str
    device_name: str
    status: str
    attach_time: float


@dataclass(slots=True)
class NetworkInterfaceAttachment:
    account_id: str
    region: str
    network_interface_id: str
    attachment_id: str
    instance_id: str
    device_index: int
    attach_time: float


def ec2_error(code: str, message: str) -> ValidationError:
    return ValidationError(f"HyperPod - Ec2ErrCode: {code} : Ec2ErrMsg: {message}")


def check_attachable(node: Node) -> None:
    """The node's instance can take a volume or an interface now."""
    if node.instance_id is None or node.status in _NO_ATTACH:
        raise ec2_error(
            "IncorrectInstanceState",
            f"The instance '{node.instance_id}' is not in a valid state for this operation: "
            f"it is {node.status}.",
        )


def free_device(taken: list[VolumeAttachment]) -> str:
    """The first device name no attached volume of the instance has."""
    used = {attachment.device_name for attachment in taken}
    for name in DEVICE_NAMES:
        if name not in used:
            return name
    raise ec2_error(
        "AttachmentLimitExceeded",
        f"The instance has {len(DEVICE_NAMES)} volumes attached, the most it can take.",
    )


def volume_in_use(volume_id: str) -> ValidationError:
    return ec2_error("VolumeInUse", f"{volume_id} is already attached to an instance")


def not_attached_here(volume_id: str, instance_id: str) -> ValidationError:
    return ec2_error(
        "InvalidAttachment.NotFound",
        f"The volume '{volume_id}' is not attached to instance '{instance_id}'.",
    )


def volume_available(volume_id: str) -> ValidationError:
    return ec2_error("IncorrectState", f"Volume '{volume_id}' is in the 'available' state.")


def interface_in_use(interface_id: str) -> ValidationError:
    return ec2_error("InvalidNetworkInterface.InUse", f"Interface: [{interface_id}] in use.")


def free_device_index(taken: list[NetworkInterfaceAttachment]) -> int | None:
    used = {attachment.device_index for attachment in taken}
    return next((i for i in range(1, MAX_ATTACHED_INTERFACES + 1) if i not in used), None)


def attachment_id(ids: IdSource) -> str:
    return "eni-attach-" + "".join(ids.random.choice("0123456789abcdef") for _ in range(17))


# Event texts (ours: HyperPod's own are not published for these operations).
def volume_attach_started(v: str, i: str, c: str, g: str) -> str:
    return (
        f"EBS volume {v} attachment to EC2 Instance {i} started in Cluster {c} and "
        f"InstanceGroup {g}"
    )


def volume_attached(v: str, i: str, d: str) -> str:
    return f"EBS volume {v} attached to EC2 Instance {i} as {d}"


def volume_detach_started(v: str, i: str, c: str, g: str) -> str:
    return (
        f"EBS volume {v} detachment from EC2 Instance {i} started in Cluster {c} and "
        f"InstanceGroup {g}"
    )


def volume_detached(v: str, i: str) -> str:
    return f"EBS volume {v} detached from EC2 Instance {i}"


def interface_attached(e: str, i: str, a: str, c: str, g: str) -> str:
    return (
        f"Network interface {e} attached to EC2 Instance {i} in Cluster {c} and "
        f"InstanceGroup {g} (attachment {a})"
    )

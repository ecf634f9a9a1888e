"""Identifiers and ARNs, generated from an injected source of randomness."""

from __future__ import annotations

import os
import random
import re
import secrets
from dataclasses import dataclass

from hyperpod_local.domain.scope import Scope

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# The version (4) and variant (RFC 4122) bits of a UUID, as uuid.UUID(version=4) sets them.
_UUID_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_SET = (0x8000 << 48) | (4 << 76)
_COUNT_36 = (1 << 36) - 1
_LOW_62 = (1 << 62) - 1
CLUSTER_ARN_RE = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:(?P<region>[a-z0-9\-]*):(?P<account>[0-9]{12}):"
    r"cluster/(?P<id>[a-z0-9]{12})"
)
_DIRECTIONS = {
    "east": "e",
    "west": "w",
    "north": "n",
    "south": "s",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


class IdSource:
    """Makes every random id of the service. Seed it to make a run reproducible."""

    def __init__(self, seed: int | None = None) -> None:
        # Unseeded, ids come from a generator seeded with 256 bits of the system's randomness:
        # another stream every start, unique across restarts as the system's own draws would
        # be, without a system call per id (five a node in a settle). What must be unguessable
        # (token_secret) still comes from the system.
        self._seeded = seed is not None
        self._random = random.Random(
            seed if seed is not None else int.from_bytes(os.urandom(32), "big")
        )
        # instance_id's and volume_id's counts, from random starts drawn on first use.
        self._id_counts = [-1, -1]

    def cluster_id(self) -> str:
        return "".join(self._random.choice(_ALNUM) for _ in range(12))

    # 17 hex digits: the first 9 count up from a random start, the last 8 are random. The
    # store keeps instances and volumes by these ids, so ids drawn wholly at random put each
    # new one at a random page of three indexes; past a few hundred thousand nodes those
    # pages no longer fit in memory, and a settle read each one back from disk (a million
    # nodes: 25 million reads). Unique across restarts: another start, and 32 random bits.
    def instance_id(self) -> str:
        return f"i-{self._counting(0):017x}"

    def volume_id(self) -> str:
        return f"vol-{self._counting(1):017x}"

    def _counting(self, which: int) -> int:
        count = self._id_counts[which]
        if count < 0:
            count = self._random.getrandbits(36)
        count = self._id_counts[which] = (count + 1) & _COUNT_36
        return (count << 32) | self._random.getrandbits(32)

    def uuid(self) -> str:
        """A version 4 UUID: what str(uuid.UUID(int=..., version=4)) makes of one draw of
        128 bits, without building the UUID (an event's id each, five events a node)."""
        return _uuid_text((self._random.getrandbits(128) & _UUID_CLEAR) | _UUID_SET)

    def ip_base(self) -> int:
        """A /16 inside 10.0.0.0/8 (as an offset from 10.0.0.0) for a new cluster's nodes."""
        return self._random.randrange(0, 240) << 16

    @property
    def random(self) -> random.Random:
        """For choices the service makes at random (which nodes a scale-down removes)."""
        return self._random

    def chance(self, probability: float) -> bool:
        """True with the given probability (for faults that strike at a rate)."""
        return self._random.random() < probability

    def token_secret(self) -> str:
        if not self._seeded:
            return secrets.token_hex(32)
        return f"{self._random.getrandbits(256):064x}"


def _uuid_text(value: int) -> str:
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def uuid4_text(bits: int) -> str:
    """The version 4 UUID whose 122 free bits are `bits` (the version and variant bits sit
    between them: 48 bits, 4 of the version, 12, 2 of the variant, 62)."""
    high, middle, low = bits >> 74, (bits >> 62) & 0xFFF, bits & _LOW_62
    return _uuid_text((high << 80) | (middle << 64) | low | _UUID_SET)


def uuid4_bits(text: str) -> int:
    """The 122 free bits of a version 4 UUID's text: what uuid4_text made it of."""
    value = int(text.replace("-", ""), 16)
    return ((value >> 80) << 74) | (((value >> 64) & 0xFFF) << 62) | (value & _LOW_62)


def cluster_arn(scope: Scope, cluster_id: str) -> str:
    return f"arn:aws:sagemaker:{scope.region}:{scope.account_id}:cluster/{cluster_id}"


@dataclass(frozen=True, slots=True)
class ClusterArn:
    region: str
    account_id: str
    cluster_id: str


def parse_cluster_arn(text: str) -> ClusterArn | None:
    match = CLUSTER_ARN_RE.fullmatch(text)
    if match is None:
        return None
    return ClusterArn(match["region"], match["account"], match["id"])


def private_ip(ip_base: int, index: int) -> str:
    """The index-th node address of a cluster; .0 to .9 of the first /24 are left out."""
    value = (10 << 24) + ((ip_base + 10 + index) % (1 << 24))
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def private_dns_hostname(ip: str, region: str) -> str:
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{ip.replace('.', '-')}.{suffix}"


def availability_zone(region: str) -> str:
    return f"{region}a"


def availability_zone_id(region: str) -> str:
    """EC2's zone id for the first zone of a region: us-east-1 -> use1-az1."""
    parts = region.split("-")
    if len(parts) < 3:
        return "use1-az1"
    country, direction, number = parts[0], parts[1], parts[-1]
    return f"{country}{_DIRECTIONS.get(direction, direction[:1])}{number}-az1"

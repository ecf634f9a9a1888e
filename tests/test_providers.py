"""The provider seam: the engine asks its provider for instances, lifecycle scripts and
health, so a second provider plugs in by name without the engine changing."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from hyperpod_local import providers
from hyperpod_local.domain.ids import IdSource
from hyperpod_local.domain.model import Cluster, InstanceGroup, Node
from hyperpod_local.mock import HyperPodMock
from hyperpod_local.providers.sim import SimProvider
from hyperpod_local.store.unit_of_work import Tx

ROLE = "arn:aws:iam::123456789012:role/HyperPodExecutionRole"


class FailingScripts(SimProvider):
    """Sim instances whose lifecycle script always exits 3, with its own message."""

    name = "failing-scripts"

    def run_lifecycle_scripts(
        self, tx: Tx, cluster: Cluster, group: InstanceGroup, nodes: list[Node]
    ) -> dict[int, str]:
        return {node.row_id or -1: f"on_create.sh exited 3 on {node.instance_id}" for node in nodes}


def _client() -> Any:
    return boto3.client(
        "sagemaker",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _create(sm: Any) -> None:
    sm.create_cluster(
        ClusterName="seam",
        InstanceGroups=[
            {
                "InstanceGroupName": "workers",
                "InstanceType": "ml.g5.8xlarge",
                "InstanceCount": 2,
                "ExecutionRole": ROLE,
                "LifeCycleConfig": {"SourceS3Uri": "s3://bucket/lcs", "OnCreate": "on_create.sh"},
            }
        ],
    )


def test_a_provider_named_in_the_settings_runs_the_lifecycle_scripts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        providers.PROVIDERS, "failing-scripts", lambda ids, _context: FailingScripts(ids)
    )
    with HyperPodMock(provider="failing-scripts") as hp:
        sm = _client()
        _create(sm)
        hp.settle()
        cluster = sm.describe_cluster(ClusterName="seam")
    assert cluster["ClusterStatus"] == "Failed"
    assert cluster["FailureMessage"].startswith("on_create.sh exited 3 on i-")


def test_the_default_provider_is_the_simulated_one() -> None:
    with HyperPodMock() as hp:
        sm = _client()
        _create(sm)
        hp.settle()
        assert sm.describe_cluster(ClusterName="seam")["ClusterStatus"] == "InService"
        assert hp.backend is not None and hp.backend.provider.name == "sim"


def test_an_unknown_provider_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown provider 'cloud'; known providers: process, sim"):
        providers.build_provider("cloud", IdSource(1))


def test_an_id_source_makes_the_uuids_the_uuid_module_makes_of_its_draws() -> None:
    import random
    import uuid

    ids, draws = IdSource(7), random.Random(7)
    for _ in range(2000):
        made = ids.uuid()
        assert made == str(uuid.UUID(int=draws.getrandbits(128), version=4))
        assert uuid.UUID(made).version == 4
    unseeded = IdSource(), IdSource()
    assert unseeded[0].uuid() != unseeded[1].uuid()
    assert len(unseeded[0].token_secret()) == 64


def test_event_ids_are_version_4_uuids_that_read_back_into_their_seqs() -> None:
    import itertools
    import secrets
    import uuid

    from hyperpod_local.store.event_ids import EventIds

    ids = EventIds(secrets.token_hex(32))
    seqs = [*range(1, 3001), *(2**40 + k for k in range(100)), 2**63 - 1]
    made = [ids.id_of(seq) for seq in seqs]
    assert len(set(made)) == len(made)
    for seq, text in zip(seqs, made, strict=True):
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert ids.seq_of(text) == seq
    # Neighbours look unrelated: counting ids would share their first group.
    assert sum(a[:8] == b[:8] for a, b in itertools.pairwise(made)) < 5
    # Another store's ids, drawn ones and text that is no UUID name no seq of this one.
    other = EventIds(secrets.token_hex(32))
    assert [ids.seq_of(other.id_of(seq)) for seq in range(1, 200)] == [None] * 199
    assert all(ids.seq_of(str(uuid.uuid4())) is None for _ in range(200))
    for text in ("", "not-a-uuid", made[0].upper(), made[0] + "0", made[0][:-1] + "g"):
        assert ids.seq_of(text) is None


def test_instance_and_volume_ids_follow_each_other_in_ec2_format() -> None:
    import re

    ids = IdSource()
    for prefix, make in (("i", ids.instance_id), ("vol", ids.volume_id)):
        made = [make() for _ in range(1000)]
        assert all(re.fullmatch(rf"{prefix}-[0-9a-f]{{17}}", text) for text in made)
        # Launched together, they share a prefix and sort in order: the store's indexes of
        # them grow at one end.
        assert made == sorted(made) and len(set(made)) == len(made)
        assert len({text[: len(prefix) + 7] for text in made}) <= 2
    # Another source (a restart) starts elsewhere.
    assert IdSource().instance_id()[:9] != IdSource().instance_id()[:9]

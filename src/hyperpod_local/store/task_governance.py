"""Cluster policies and compute allocations, with every version of each."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from hyperpod_local.domain.scope import Scope
from hyperpod_local.domain.task_governance import Policy, PolicyVersion
from hyperpod_local.store.schema import governance_policies

_COLUMNS = ("policy_id", "kind", "account_id", "region", "cluster_id", "creation_time", "seq")


class PolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, policy: Policy) -> None:
        policy.seq = (
            int(
                self.conn.scalar(select(func.coalesce(func.max(governance_policies.c.seq), 0))) or 0
            )
            + 1
        )
        self.conn.execute(governance_policies.insert(), _row(policy))

    def save(self, policy: Policy) -> None:
        self.conn.execute(
            update(governance_policies)
            .where(governance_policies.c.policy_id == policy.policy_id)
            .values(state=_row(policy)["state"])
        )

    def get(self, scope: Scope, kind: str, policy_id: str) -> Policy | None:
        table = governance_policies
        row = self.conn.execute(
            select(table).where(
                table.c.policy_id == policy_id,
                table.c.kind == kind,
                table.c.account_id == scope.account_id,
                table.c.region == scope.region,
            )
        ).first()
        return None if row is None else _policy(row)

    def by_id(self, policy_id: str) -> Policy | None:
        table = governance_policies
        row = self.conn.execute(select(table).where(table.c.policy_id == policy_id)).first()
        return None if row is None else _policy(row)

    def of_cluster(self, cluster_id: str, kind: str) -> list[Policy]:
        table = governance_policies
        rows = self.conn.execute(
            select(table)
            .where(table.c.cluster_id == cluster_id, table.c.kind == kind)
            .order_by(table.c.creation_time, table.c.seq)
        )
        return [_policy(row) for row in rows]

    def of_scope(self, scope: Scope, kind: str) -> list[Policy]:
        """Every policy of a kind in the account and region: a handful per cluster, sorted and
        filtered by the caller."""
        table = governance_policies
        rows = self.conn.execute(
            select(table)
            .where(
                table.c.account_id == scope.account_id,
                table.c.region == scope.region,
                table.c.kind == kind,
            )
            .order_by(table.c.creation_time, table.c.seq)
        )
        return [_policy(row) for row in rows]

    def arns_of_cluster(self, cluster_id: str) -> list[str]:
        return [
            row.state["arn"]
            for row in self.conn.execute(
                select(governance_policies.c.state).where(
                    governance_policies.c.cluster_id == cluster_id
                )
            )
        ]

    def forget_cluster(self, cluster_id: str) -> None:
        self.conn.execute(
            delete(governance_policies).where(governance_policies.c.cluster_id == cluster_id)
        )


def _row(policy: Policy) -> dict[str, Any]:
    fields = asdict(policy)
    return {**{name: fields.pop(name) for name in _COLUMNS}, "state": fields}


def _policy(row: Row[Any]) -> Policy:
    state = dict(row.state)
    versions = [PolicyVersion(**version) for version in state.pop("versions")]
    return Policy(**{name: getattr(row, name) for name in _COLUMNS}, versions=versions, **state)

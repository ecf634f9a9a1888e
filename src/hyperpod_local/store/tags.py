"""Tags of any resource, keyed by its ARN."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, delete, func, select

from hyperpod_local.store.schema import tags


class TagRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def list(self, arn: str) -> list[dict[str, str]]:
        rows = self.conn.execute(
            select(tags.c.key, tags.c.value)
            .where(tags.c.resource_arn == arn)
            .order_by(tags.c.position, tags.c.key)
        )
        return [{"Key": row.key, "Value": row.value} for row in rows]

    def put(self, arn: str, new_tags: Iterable[dict[str, str]]) -> None:
        """Add tags, or overwrite the value of keys already there (AddTags semantics)."""
        new_tags = list(new_tags)
        if not new_tags:
            return  # CreateCluster without Tags: nothing to look up
        position = int(
            self.conn.scalar(
                select(func.coalesce(func.max(tags.c.position), -1)).where(
                    tags.c.resource_arn == arn
                )
            )
        )
        for tag in new_tags:
            existing = self.conn.scalar(
                select(tags.c.position).where(tags.c.resource_arn == arn, tags.c.key == tag["Key"])
            )
            if existing is None:
                position += 1
                self.conn.execute(
                    tags.insert(),
                    dict(resource_arn=arn, key=tag["Key"], value=tag["Value"], position=position),
                )
            else:
                self.conn.execute(
                    tags.update()
                    .where(tags.c.resource_arn == arn, tags.c.key == tag["Key"])
                    .values(value=tag["Value"])
                )

    def remove(self, arn: str, keys: Iterable[str] | None = None) -> None:
        stmt = delete(tags).where(tags.c.resource_arn == arn)
        if keys is not None:
            stmt = stmt.where(tags.c.key.in_(list(keys)))
        self.conn.execute(stmt)

"""Client tokens of idempotent requests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from hyperpod_local.store.schema import client_tokens


class TokenRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, cluster_id: str, token: str, since: float) -> tuple[str, Any] | None:
        """(digest of the request, recorded response) of a token used since `since`."""
        row = self.conn.execute(
            select(client_tokens.c.digest, client_tokens.c.response).where(
                client_tokens.c.cluster_id == cluster_id,
                client_tokens.c.token == token,
                client_tokens.c.created_at >= since,
            )
        ).first()
        return None if row is None else (row.digest, row.response)

    def forget_cluster(self, cluster_id: str) -> None:
        self.conn.execute(delete(client_tokens).where(client_tokens.c.cluster_id == cluster_id))

    def put(self, cluster_id: str, token: str, digest: str, now: float, response: Any) -> None:
        self.conn.execute(
            delete(client_tokens).where(
                client_tokens.c.cluster_id == cluster_id, client_tokens.c.token == token
            )
        )
        self.conn.execute(
            client_tokens.insert(),
            dict(
                cluster_id=cluster_id, token=token, digest=digest, created_at=now, response=response
            ),
        )

"""The human view of a cluster's nodes: a rich table, once or live."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "Running": "green",
    "Pending": "yellow",
    "ShuttingDown": "red",
    "Failure": "bold red",
    "SystemUpdating": "cyan",
    "DeepHealthCheckInProgress": "magenta",
    "DetachInProgress": "blue",
    "AttachInProgress": "blue",
}


# Wider than any table: rich lays a table out to its own width within this, and pads nothing
# beyond it.
_UNBOUNDED_WIDTH = 1_000_000


def console() -> Console:
    """A terminal's own console; piped or redirected, one as wide as the table needs, so ids,
    hostnames and messages come whole to grep and awk (rich would take 80 columns, or
    $COLUMNS, and cut or wrap them to fit)."""
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=_UNBOUNDED_WIDTH)


def sagemaker_client(endpoint_url: str, region: str) -> Any:
    """A botocore SageMaker client for the server; dummy credentials if the user has none."""
    import botocore.session

    session = botocore.session.get_session()
    credentials = {}
    if session.get_credentials() is None:
        credentials = {"aws_access_key_id": "hyperpod-local", "aws_secret_access_key": "local"}
    return session.create_client(
        "sagemaker", region_name=region, endpoint_url=endpoint_url, **credentials
    )


def fetch(client: Any, cluster: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    described = client.describe_cluster(ClusterName=cluster)
    paginator = client.get_paginator("list_cluster_nodes")
    nodes = [
        node
        for page in paginator.paginate(
            ClusterName=cluster,
            SortBy="NAME",
            IncludeNodeLogicalIds=True,
            PaginationConfig={"PageSize": 100},
        )
        for node in page["ClusterNodeSummaries"]
    ]
    return described, nodes


def render(described: dict[str, Any], nodes: list[dict[str, Any]]) -> Group:
    header = Text.assemble(
        (described["ClusterName"], "bold"),
        "  ",
        (described["ClusterStatus"], STATUS_STYLES.get(described["ClusterStatus"], "")),
        "  ",
        "  ".join(
            f"{g['InstanceGroupName']} {g.get('CurrentCount', 0)}/{g.get('TargetCount', 0)}"
            for g in described.get("InstanceGroups", [])
        ),
    )
    table = Table(show_edge=False, header_style="bold")
    logical = any(node.get("NodeLogicalId") for node in nodes)
    table.add_column("GROUP")
    table.add_column("INSTANCE", no_wrap=True)
    if logical:
        table.add_column("LOGICAL ID", no_wrap=True)
    for column in ("TYPE", "STATUS", "HOSTNAME", "LAUNCHED"):
        table.add_column(column)
    for node in nodes:
        status = node["InstanceStatus"]["Status"]
        message = node["InstanceStatus"].get("Message")
        launched = node.get("LaunchTime")
        cells: list[Any] = [node["InstanceGroupName"], node.get("InstanceId", "-")]
        if logical:
            cells.append(node.get("NodeLogicalId", "-"))
        table.add_row(
            *cells,
            node["InstanceType"],
            Text(status + (f" ({message})" if message else ""), STATUS_STYLES.get(status, "")),
            node.get("PrivateDnsHostname", "-"),
            _time(launched),
        )
    return Group(header, table)


def _time(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def show(client: Any, cluster: str, console: Console) -> None:
    console.print(render(*fetch(client, cluster)))


def watch(client: Any, cluster: str, console: Console, interval: float, count: int | None) -> None:
    """Refresh the table every `interval` seconds (`count` times, or until interrupted)."""
    shown = 0
    with Live(render(*fetch(client, cluster)), console=console, auto_refresh=False) as live:
        while count is None or shown < count:
            live.update(render(*fetch(client, cluster)), refresh=True)
            shown += 1
            if count is not None and shown >= count:
                break
            time.sleep(interval)

"""`hyperpod-local`: the server and, later, the admin commands."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec

import click

from hyperpod_local.cli.logs import LOG_FORMATS
from hyperpod_local.cli.logs import configure as configure_logging
from hyperpod_local.cli.numbers import (
    MAX_BODY_BYTES,
    MAX_CLIENT_TIMEOUT,
    MAX_SPEED,
    Finite,
    Weighted,
)
from hyperpod_local.domain.faults import FAULT_FIELDS, FaultKind
from hyperpod_local.settings import (
    DEFAULT_CLIENT_TIMEOUT,
    DEFAULT_DATA_DIR,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_SPEED,
    Settings,
)
from hyperpod_local.startup import StartupError, os_failure

P = ParamSpec("P")


class CannotStart(click.ClickException):
    """A StartupError as the command line shows it: `Error: <the line>`, exit code 2."""

    exit_code = 2


def _startup_errors_in_one_line(command: Callable[P, None]) -> Callable[P, None]:
    """The one place a StartupError becomes its line on stderr; any other error is a bug,
    left to show its traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except StartupError as error:
            raise CannotStart(str(error)) from None

    return run


@click.group()
@click.version_option(package_name="hyperpod-local")
def main() -> None:
    """A self-hosted SageMaker HyperPod cluster API."""


@main.command()
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    envvar="HYPERPOD_LOCAL_HOST",
    show_envvar=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="HYPERPOD_LOCAL_PORT",
    show_envvar=True,
    help="Port; 0 picks a free one.",
)
@click.option(
    "--data-dir",
    default=str(DEFAULT_DATA_DIR),
    show_default=True,
    # Not checked here: the store says in one line what is wrong with it.
    type=click.Path(path_type=Path),
    envvar="HYPERPOD_LOCAL_DATA_DIR",
    show_envvar=True,
    help="Where the state (SQLite) lives; it survives restarts.",
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    envvar="HYPERPOD_LOCAL_STORE",
    show_envvar=True,
    help="Keep the state in this database instead of the data dir's SQLite: "
    "postgresql+psycopg://USER@HOST:PORT/DATABASE, which several servers may share "
    "(README, Running it for a team).",
)
@click.option(
    "--demo",
    is_flag=True,
    envvar="HYPERPOD_LOCAL_DEMO",
    show_envvar=True,
    help="Create a small Slurm cluster named 'demo' if absent.",
)
@click.option(
    "--max-instances-per-cluster",
    default=100_000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    envvar="HYPERPOD_LOCAL_MAX_INSTANCES_PER_CLUSTER",
    show_envvar=True,
    help="CreateCluster asking for more is ResourceLimitExceeded.",
)
@click.option(
    "--clock",
    type=click.Choice(["real", "manual"]),
    default="real",
    show_default=True,
    envvar="HYPERPOD_LOCAL_CLOCK",
    show_envvar=True,
    help="real: HyperPod time runs --speed times faster than the wall clock; manual: it moves "
    "only through POST /_hyperpod/clock/advance.",
)
@click.option(
    "--speed",
    type=Finite(0, MAX_SPEED, min_open=True),
    default=DEFAULT_SPEED,
    show_default=True,
    envvar="HYPERPOD_LOCAL_SPEED",
    show_envvar=True,
    help="HyperPod seconds per wall-clock second (60: a HyperPod minute each second); at most 1e6.",
)
@click.option(
    "--durations",
    "durations_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="HYPERPOD_LOCAL_DURATIONS",
    show_envvar=True,
    help="JSON object overriding operation durations in HyperPod seconds, e.g. "
    '{"reboot": 60, "provision_accelerated": 1200}.',
)
@click.option(
    "--events-per-cluster",
    type=click.IntRange(1, 10_000_000),
    default=10_000,
    show_default=True,
    envvar="HYPERPOD_LOCAL_EVENTS_PER_CLUSTER",
    show_envvar=True,
    help="Cluster events kept per cluster, the oldest dropped first (events also age out "
    "after 14 HyperPod days).",
)
@click.option(
    "--recovery-max-in-flight",
    type=click.IntRange(1, 10_000),
    default=2,
    show_default=True,
    envvar="HYPERPOD_LOCAL_RECOVERY_MAX_IN_FLIGHT",
    show_envvar=True,
    help="Automatic recoveries at once per instance group.",
)
@click.option(
    "--recovery-breaker-threshold",
    type=Finite(0, 1),
    default=0.2,
    show_default=True,
    envvar="HYPERPOD_LOCAL_RECOVERY_BREAKER_THRESHOLD",
    show_envvar=True,
    help="Automatic recovery pauses while more than this share of a group is unhealthy.",
)
@click.option(
    "--auth",
    type=click.Choice(["open", "strict"]),
    default="open",
    show_default=True,
    envvar="HYPERPOD_LOCAL_AUTH",
    show_envvar=True,
    help="open: any well-formed signature; strict: SigV4 checked against --credentials.",
)
@click.option(
    "--credentials",
    "credentials_file",
    # Not checked here: serve reads it first, and says what is wrong in one line.
    type=click.Path(readable=False, path_type=Path),
    envvar="HYPERPOD_LOCAL_CREDENTIALS",
    show_envvar=True,
    help="For --auth strict: one 'ACCESS_KEY SECRET_KEY ACCOUNT_ID' a line.",
)
@click.option(
    "--client-timeout",
    type=Finite(0, MAX_CLIENT_TIMEOUT, min_open=True),
    default=DEFAULT_CLIENT_TIMEOUT,
    show_default=True,
    envvar="HYPERPOD_LOCAL_CLIENT_TIMEOUT",
    show_envvar=True,
    help="Seconds a client may take to send a request's headers (the connection is closed) "
    "or its body (408).",
)
@click.option(
    "--response-cache/--no-response-cache",
    default=True,
    show_default=True,
    envvar="HYPERPOD_LOCAL_RESPONSE_CACHE",
    show_envvar=True,
    help="Answer a repeated Describe*/List* request from memory while nothing has been "
    "written since; answers are the same either way.",
)
@click.option(
    "--insecure-open",
    is_flag=True,
    envvar="HYPERPOD_LOCAL_INSECURE_OPEN",
    show_envvar=True,
    help="Allow --auth open on an address other than loopback (anyone reaching it is let in).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1024, MAX_BODY_BYTES),
    default=1024 * 1024,
    show_default=True,
    envvar="HYPERPOD_LOCAL_MAX_BODY_BYTES",
    show_envvar=True,
    help="Larger request bodies (API and admin) are answered 413; at most 64 MiB.",
)
@click.option(
    "--events-to",
    "events_to",
    multiple=True,
    metavar="TARGET",
    envvar="HYPERPOD_LOCAL_EVENTS_TO",
    show_envvar=True,
    help="Deliver each cluster event, as EventBridge's envelope, to TARGET: http(s)://... "
    "(POSTed) or eventbridge:BUS (PutEvents on AWS_ENDPOINT_URL_EVENTS). Repeatable; the "
    "variable takes several, space-separated.",
)
@click.option(
    "--events-queue-limit",
    type=click.IntRange(1, 10_000_000),
    default=10_000,
    show_default=True,
    envvar="HYPERPOD_LOCAL_EVENTS_QUEUE_LIMIT",
    show_envvar=True,
    help="Events that may wait for one target; past it the oldest are dropped (counted).",
)
@click.option(
    "--events-max-age",
    type=Finite(1, 86400),
    default=86400.0,
    show_default=True,
    envvar="HYPERPOD_LOCAL_EVENTS_MAX_AGE",
    show_envvar=True,
    help="Seconds an event is retried for before it is given up (counted), as EventBridge's "
    "MaximumEventAgeInSeconds.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    envvar="HYPERPOD_LOCAL_LOG_LEVEL",
    show_envvar=True,
    help="info logs every API request; debug also every HTTP request (admin included).",
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(LOG_FORMATS),
    envvar="HYPERPOD_LOCAL_LOG_FORMAT",
    show_envvar=True,
    help="json: each log line (stderr) is one JSON object; a request's carries request_id, "
    "operation, account, region, status and duration_ms.",
)
@click.option(
    "--provider",
    default="sim",
    show_default=True,
    type=click.Choice(["sim", "process"]),
    envvar="HYPERPOD_LOCAL_PROVIDER",
    show_envvar=True,
    help="sim: simulated instances; process: each node a real process tree on this machine "
    "(a node agent with its own volume directories) running the group's lifecycle scripts.",
)
@click.option(
    "--max-nodes",
    default=32,
    show_default=True,
    type=click.IntRange(1, 1000),
    envvar="HYPERPOD_LOCAL_MAX_NODES",
    show_envvar=True,
    help="--provider process: nodes this server runs at most (CreateCluster asking for more "
    "is ResourceLimitExceeded; a launch past it fails as a capacity shortage does).",
)
@click.option(
    "--max-processes-per-node",
    default=256,
    show_default=True,
    type=click.IntRange(8, 100_000),
    envvar="HYPERPOD_LOCAL_MAX_PROCESSES_PER_NODE",
    show_envvar=True,
    help="--provider process: processes a node's lifecycle script may run at once.",
)
@click.option(
    "--script-timeout",
    default=600.0,
    show_default=True,
    type=Finite(0, 86400, min_open=True),
    envvar="HYPERPOD_LOCAL_SCRIPT_TIMEOUT",
    show_envvar=True,
    help="--provider process: wall-clock seconds a lifecycle script may run; past them it "
    "is killed and counts as failed.",
)
@click.option(
    "--confinement",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "bubblewrap", "user", "none"]),
    envvar="HYPERPOD_LOCAL_CONFINEMENT",
    show_envvar=True,
    help="--provider process: how scripts are confined; auto: bubblewrap if it works here, "
    "else a user of each node's own if the server is root, else none.",
)
@click.option(
    "--scripts-from",
    "scripts_from",
    multiple=True,
    metavar="S3URI=file:///DIR",
    envvar="HYPERPOD_LOCAL_SCRIPTS_FROM",
    show_envvar=True,
    help="--provider process: take the lifecycle scripts of SourceS3Uri S3URI (and below it) "
    "from the local folder DIR instead of S3. Repeatable.",
)
@_startup_errors_in_one_line
def serve(
    host: str,
    port: int,
    data_dir: Path,
    store_url: str | None,
    demo: bool,
    max_instances_per_cluster: int,
    clock: str,
    speed: float,
    durations_file: Path | None,
    events_per_cluster: int,
    recovery_max_in_flight: int,
    recovery_breaker_threshold: float,
    auth: str,
    credentials_file: Path | None,
    insecure_open: bool,
    max_body_bytes: int,
    client_timeout: float,
    response_cache: bool,
    events_to: tuple[str, ...],
    events_queue_limit: int,
    events_max_age: float,
    log_level: str,
    log_format: str,
    provider: str,
    max_nodes: int,
    max_processes_per_node: int,
    script_timeout: float,
    confinement: str,
    scripts_from: tuple[str, ...],
) -> None:
    """Serve the SageMaker HyperPod API. Every option has a HYPERPOD_LOCAL_* variable."""
    import uvicorn

    from hyperpod_local.backend import Backend
    from hyperpod_local.demo import DEMO_NAME, DEMO_SCOPE, ensure_demo_cluster
    from hyperpod_local.http.protocol import server_protocol
    from hyperpod_local.server import create_app

    _exit_cleanly_on(signal.SIGINT, signal.SIGTERM)
    from hyperpod_local.server import is_loopback

    if auth == "strict" and credentials_file is None:
        raise click.ClickException("--auth strict needs --credentials FILE")
    if provider == "process" and store_url is not None:
        # A process node lives on the server that launched it, and any replica's engine
        # may run its next step.
        raise StartupError(
            "--provider process runs each node on the server that launched it, so it cannot "
            "share a --store with other servers; use --provider sim with --store"
        )
    if auth == "open" and not is_loopback(host) and not insecure_open:
        raise click.ClickException(
            f"listening on {host} lets anyone who reaches it in: use --auth strict with "
            "--credentials FILE, or say --insecure-open if that is what you want"
        )
    if auth == "strict" and credentials_file is not None:
        # Before the data dir is made or migrated: a bad file leaves nothing behind.
        _check_credentials(credentials_file)
    log_config = configure_logging(log_format, log_level)
    durations = _read_durations(durations_file)
    provider_options: dict[str, Any] = {}
    if provider == "process":
        from hyperpod_local.providers.process.sources import parse_mapping

        try:
            mappings = dict(parse_mapping(spec) for spec in scripts_from)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        provider_options = {
            "max_nodes": max_nodes,
            "max_processes_per_node": max_processes_per_node,
            "script_timeout": script_timeout,
            "confinement": confinement,
            "scripts_from": {uri: str(folder) for uri, folder in mappings.items()},
        }
    try:
        backend = Backend(
            Settings(
                data_dir=data_dir,
                database_url=store_url,
                provider=provider,
                provider_options=provider_options,
                max_instances_per_cluster=max_instances_per_cluster,
                clock=clock,
                speed=speed,
                durations=durations,
                recovery_max_in_flight=recovery_max_in_flight,
                events_per_cluster=events_per_cluster,
                recovery_unhealthy_threshold=recovery_breaker_threshold,
                auth=auth,
                credentials_file=credentials_file,
                max_body_bytes=max_body_bytes,
                client_timeout_seconds=client_timeout,
                response_cache=response_cache,
                deliver_events=True,
                events_to=events_to,
                events_queue_limit=events_queue_limit,
                events_max_age=events_max_age,
            )
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if demo and ensure_demo_cluster(backend):
        click.echo(
            f"created demo cluster '{DEMO_NAME}' in {DEMO_SCOPE.region} "
            f"(account {DEMO_SCOPE.account_id})"
        )
    if auth == "open" and not is_loopback(host):
        logging.getLogger("hyperpod_local").warning(
            "--insecure-open: the API and the admin API answer anyone who reaches %s", host
        )
    admin_token = None
    if auth == "strict":
        admin_token, created = _admin_token(data_dir)
        if created:
            click.echo(f"admin API token (shown once; also in {data_dir / ADMIN_TOKEN_FILE}):")
            click.echo(f"  {admin_token}")
    # The credentials file was checked before the data dir was touched.
    app = create_app(backend, admin_token)
    sock = _listen(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{bound_port}"
    click.echo(f"hyperpod-local serving the SageMaker HyperPod API at {url}")
    click.echo(f"  data dir: {data_dir.resolve()}")
    if clock == "manual":
        click.echo(f"  clock: manual (POST {url}/_hyperpod/clock/advance to move it)")
    else:
        click.echo(
            f"  clock: real, {speed:g}x (one wall-clock second is {speed:g} HyperPod seconds)"
        )
    for line in backend.provider.banner():
        click.echo(line)
    click.echo(f"  export AWS_ENDPOINT_URL_SAGEMAKER={url}")
    click.echo(f"  aws sagemaker list-clusters --endpoint-url {url} --region {DEMO_SCOPE.region}")
    sys.stdout.flush()
    _collect_garbage_less_often()
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=log_config,
        access_log=log_level == "debug",
        lifespan="on",
        timeout_graceful_shutdown=5,
        # AWS sends no Server header; a client has one header fewer to read per call.
        server_header=False,
        # The client address stays the socket's: uvicorn would otherwise take it from
        # X-Forwarded-For, and the admin API's loopback rule would trust whoever wrote that.
        proxy_headers=False,
        http=server_protocol(backend.settings.client_timeout_seconds),
    )
    server = uvicorn.Server(config)
    if backend.outlets is not None:
        server.handle_exit = _ending_streams(server.handle_exit, backend.outlets)  # type: ignore[method-assign]
    backend.start()
    try:
        server.run(sockets=[sock])
    finally:
        backend.close()


@main.command(hidden=True)
@click.argument("control_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def agent(control_dir: Path) -> None:
    """A process node's agent (the process provider starts one per node)."""
    from hyperpod_local.providers.process.agent import main as run_agent

    sys.exit(run_agent(control_dir))


@main.command("report-fault")
@click.argument("fault_type", metavar="TYPE")
def report_fault(fault_type: str) -> None:
    """From inside a process node: report a hardware fault of TYPE (GpuXid79, EfaDown, ...),
    which the health agent then finds and answers as HyperPod's does."""
    import os
    import uuid

    from hyperpod_local.domain.faults import HARDWARE_FAULTS

    if fault_type not in HARDWARE_FAULTS:
        raise click.ClickException(
            f"unknown hardware fault type {fault_type!r}; known: {', '.join(HARDWARE_FAULTS)}"
        )
    folder = os.environ.get("HYPERPOD_LOCAL_FAULTS_DIR")
    if not folder or not Path(folder).is_dir():
        raise click.ClickException(
            "not inside a process node (HYPERPOD_LOCAL_FAULTS_DIR names no folder)"
        )
    name = uuid.uuid4().hex
    scratch = Path(folder) / f".{name}"
    scratch.write_text(fault_type + "\n")
    scratch.rename(Path(folder) / f"{name}.fault")
    click.echo(f"reported {fault_type}: {HARDWARE_FAULTS[fault_type].message}")


def _ending_streams(handle_exit: Callable[[int, Any], None], outlets: Any) -> Any:
    """uvicorn's stop-signal handler, which first ends the event streams: uvicorn waits for
    every open response before it stops, and a stream never ends by itself."""

    def handle(sig: int, frame: Any) -> None:
        outlets.stream.end_streams()
        handle_exit(sig, frame)

    return handle


def _check_credentials(path: Path) -> None:
    """Read the credentials file as --auth strict will, so what is wrong with it is said at
    once."""
    from hyperpod_local.wire.auth import read_credentials

    try:
        read_credentials(path)
    except OSError as error:
        raise os_failure("read the credentials file", path, error) from error
    except UnicodeDecodeError as error:
        raise StartupError(
            f"cannot read the credentials file {path}: it is not UTF-8 text "
            f"(byte {error.start}); it holds one 'ACCESS_KEY SECRET_KEY ACCOUNT_ID' a line"
        ) from error
    except ValueError as error:  # the file's own errors name it, and the line
        raise StartupError(str(error)) from error


_endpoint_option = click.option(
    "--endpoint-url",
    default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    show_default=True,
    envvar="AWS_ENDPOINT_URL_SAGEMAKER",
    show_envvar=True,
    help="The hyperpod-local server.",
)
_region_option = click.option(
    "--region",
    default="us-east-1",
    show_default=True,
    envvar="AWS_DEFAULT_REGION",
    show_envvar=True,
)


@main.command()
@click.argument("cluster")
@_endpoint_option
@_region_option
def nodes(cluster: str, endpoint_url: str, region: str) -> None:
    """Print the nodes of CLUSTER (name or ARN) as a table."""
    from hyperpod_local.cli.views import console, sagemaker_client, show

    _client_call(lambda: show(sagemaker_client(endpoint_url, region), cluster, console()))


@main.command()
@click.argument("cluster")
@_endpoint_option
@_region_option
@click.option("--interval", default=1.0, show_default=True, type=Finite(0.05, 3600))
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many refreshes.")
def watch(cluster: str, endpoint_url: str, region: str, interval: float, count: int | None) -> None:
    """Show the nodes of CLUSTER live, refreshing as their states change (Ctrl-C to stop)."""
    from hyperpod_local.cli.views import console, sagemaker_client
    from hyperpod_local.cli.views import watch as watch_nodes

    client = sagemaker_client(endpoint_url, region)
    with contextlib.suppress(KeyboardInterrupt):
        _client_call(lambda: watch_nodes(client, cluster, console(), interval, count))


@main.group()
def fault() -> None:
    """Inject, list and remove faults on a running server (its admin API)."""


def _kinds_taking(field: str) -> str:
    return ", ".join(kind for kind, fields in FAULT_FIELDS.items() if field in fields)


# One option for every field a fault spec can hold (domain.faults.FAULT_FIELDS); the help
# says which kinds take it, from the same table.
_FAULT_OPTIONS: dict[str, click.Option] = {
    field: click.Option(declarations, help=f"{text} ({_kinds_taking(field)}).", **extra)
    for field, declarations, text, extra in (
        ("Cluster", ["--cluster"], "Cluster name or ARN", {}),
        ("InstanceId", ["--node", "instance_id"], "Instance id of the node", {}),
        ("InstanceGroupName", ["--group", "group_name"], "Instance group name", {}),
        ("Type", ["--type", "fault_type"], "Hardware fault type, e.g. GpuXid79", {}),
        (
            "DetectionDelaySeconds",
            ["--delay"],
            "HyperPod seconds before the health agent notices it",
            {"type": Finite()},
        ),
        ("Count", ["--count"], "Times it strikes", {"type": click.IntRange(min=1)}),
        ("InstanceType", ["--instance-type"], "Instance type short of capacity", {}),
        (
            "Operations",
            ["--operation", "operations"],
            "Operation it applies to, repeatable; all if none",
            {"multiple": True},
        ),
        ("Rate", ["--rate"], "Share of requests throttled, in (0, 1]", {"type": Finite()}),
        ("Seconds", ["--seconds"], "Added latency per request", {"type": Finite()}),
        ("AlarmName", ["--alarm-name"], "CloudWatch alarm in ALARM", {}),
        (
            "MtbfHours",
            ["--mtbf-hours"],
            "Mean HyperPod hours between failures of each node",
            {"type": Finite()},
        ),
        (
            "Types",
            ["--mix"],
            "A fault type and its weight, e.g. GpuXid79=3, repeatable; all types alike if none",
            {"multiple": True, "type": Weighted()},
        ),
        ("Seed", ["--seed"], "Seed of the random draws, to run them again", {"type": int}),
        ("ExtensionName", ["--extension-name"], "Cluster extension it fails", {}),
        ("Action", ["--action"], "The change that fails: Create, Update or Delete", {}),
        ("Resource", ["--resource"], "ClusterSchedulerConfig or ComputeQuota", {}),
        ("Code", ["--code"], "Extension health issue code, e.g. AccessDenied", {}),
        ("Account", ["--account"], "Account of a cluster given by name", {}),
        ("Region", ["--region"], "Region of a cluster given by name", {}),
    )
}


@fault.command("add", params=list(_FAULT_OPTIONS.values()))
@click.argument("kind", type=click.Choice([k.value for k in FaultKind]))
@_endpoint_option
def fault_add(kind: str, endpoint_url: str, **options: Any) -> None:
    """Inject a fault of KIND; prints the faults created as JSON."""
    spec: dict[str, Any] = {"Kind": kind}
    for field, option in _FAULT_OPTIONS.items():
        value = options[str(option.name)]
        if value is not None and value != ():
            if field == "Types":
                spec[field] = dict(value)
            else:
                spec[field] = list(value) if isinstance(value, tuple) else value
    click.echo(json.dumps(_admin(endpoint_url, "POST", "/_hyperpod/faults", spec), indent=2))


@fault.command("list")
@_endpoint_option
def fault_list(endpoint_url: str) -> None:
    """List the faults in force as JSON."""
    click.echo(json.dumps(_admin(endpoint_url, "GET", "/_hyperpod/faults"), indent=2))


@fault.command("rm")
@click.argument("fault_id")
@_endpoint_option
def fault_rm(fault_id: str, endpoint_url: str) -> None:
    """Remove the fault FAULT_ID."""
    _admin(endpoint_url, "DELETE", f"/_hyperpod/faults/{fault_id}")
    click.echo(f"removed {fault_id}")


def _admin(endpoint_url: str, method: str, path: str, body: Any = None) -> Any:
    """Call the server's admin API; its errors become one clear line."""
    import os
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(endpoint_url.rstrip("/") + path, data=data, method=method)
    token = os.environ.get("HYPERPOD_LOCAL_ADMIN_TOKEN")
    if token:
        # A strict server's admin API wants its bearer token.
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}")
        raise click.ClickException(
            f"{detail.get('error', error.code)}: {detail.get('message', error.reason)}"
        ) from None
    except urllib.error.URLError as error:
        raise click.ClickException(f"{error.reason} (is the server running?)") from None
    return json.loads(raw) if raw else None


def _client_call(call: Any) -> None:
    """Run a client call, turning AWS and connection errors into a clear one-line error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        call()
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    except BotoCoreError as error:
        raise click.ClickException(f"{error} (is the server running?)") from None


ADMIN_TOKEN_FILE = "admin-token"


def _admin_token(data_dir: Path) -> tuple[str, bool]:
    """The admin API's bearer token, made on first start, readable by its owner only.

    An empty (or all-whitespace) file holds no secret anyone can rely on, so a new token
    replaces it; a file that cannot be read, or holds more than one visible-ASCII word, is
    refused: that token would either open the admin API to an empty bearer or never match.
    """
    import os
    import re
    import secrets

    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists() or path.is_symlink():
        try:
            token = path.read_bytes().decode("ascii").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not ASCII text"
            raise StartupError(f"cannot read the admin token {path}: {reason}") from None
        if token:
            if not re.fullmatch(r"[\x21-\x7e]+", token):
                raise StartupError(
                    f"the admin token in {path} must be one word of visible ASCII; "
                    "delete the file to have a new token made"
                )
            return token, False
    token = secrets.token_urlsafe(32)
    # Written aside and renamed into place: a crash leaves the old file or the whole token,
    # never an empty file (the data dir's lock keeps a second server from racing us).
    partial = path.with_name(f".{ADMIN_TOKEN_FILE}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        directory = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(directory)  # so the rename itself survives a power cut
        finally:
            os.close(directory)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise os_failure("write the admin token", path, error) from None
    return token, True


def _read_durations(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        durations = json.loads(path.read_text())
    except OSError as error:
        raise os_failure("read the durations file", path, error) from error
    except ValueError as error:
        raise click.ClickException(f"{path}: not valid JSON: {error}") from None
    if not isinstance(durations, dict):
        raise click.ClickException(f"{path}: must hold a JSON object of durations")
    return durations


def _collect_garbage_less_often() -> None:
    """The server process's collector: what was made to start (the botocore model, the
    compiled validators, SQLAlchemy's tables) is never garbage, so it is left out of every
    collection, and the youngest objects are collected every 50,000 allocations, not 700. An
    engine step of 500 nodes makes thousands of objects that live as long as it does, and at
    Python's thresholds the collector spent about a sixth of a fleet's settle walking them."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _exit_cleanly_on(*signals: int) -> None:
    """A stop signal ends the process with code 0, through the `finally` that closes the store.

    uvicorn installs its own handlers while it runs and, after its graceful shutdown,
    re-raises the signal to the handler that was there before: this one.
    """

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    for signum in signals:
        signal.signal(signum, stop)


def _listen(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts, so the printed URL names the real port (also for --port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for sockets
    # that say they are TCP, and without it every response waits 40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":  # pragma: no cover
    main()

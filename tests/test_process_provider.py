"""`serve --provider process`: each node a real process tree on this machine running the
group's real lifecycle scripts. Real scripts, a real server, boto3; the node's directories
and processes are looked at on the machine, where a user would look."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support import ROLE, ServerProcess

SOURCE = "s3://lcs-bucket/scripts"
# A Continuous EKS cluster: nodes retried, events listed.
CONTINUOUS: dict[str, Any] = {
    "NodeProvisioningMode": "Continuous",
    "Orchestrator": {"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/e"}},
}

MARKER_SCRIPT = """#!/bin/bash
set -e
VOLUME="${HYPERPOD_LOCAL_OPT_SAGEMAKER:-/opt/sagemaker}"
ROOT="${HYPERPOD_LOCAL_ROOT_VOLUME:-/}"
echo "on_create on $(hostname) for $HYPERPOD_LOCAL_INSTANCE_ID"
echo "$HYPERPOD_LOCAL_INSTANCE_ID" >> "$VOLUME/marker"
echo "root of $HYPERPOD_LOCAL_INSTANCE_ID" > "$ROOT/var/log/root-marker"
cp "$SAGEMAKER_RESOURCE_CONFIG_PATH" "$VOLUME/resource_config.json"
if echo escaped > "{escape}" 2>/dev/null; then echo "wrote outside"; fi
echo "provisioned"
"""


def _workers(count: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "InstanceGroupName": "workers",
        "InstanceType": "ml.c5.xlarge",
        "InstanceCount": count,
        "ExecutionRole": ROLE,
        "LifeCycleConfig": {"SourceS3Uri": SOURCE, "OnCreate": "on_create.sh"},
        **extra,
    }


def _scripts(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "lcs"
    folder.mkdir(exist_ok=True)
    (folder / "on_create.sh").write_text(text)
    return folder


@contextlib.contextmanager
def _server(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path / "data",
        "--provider",
        "process",
        "--scripts-from",
        f"{SOURCE}=file://{tmp_path / 'lcs'}",
        *args,
        env=env,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _view(server: ServerProcess, cluster: str, instance_id: str) -> dict[str, Any]:
    status, view = server.admin("GET", f"/_hyperpod/clusters/{cluster}/nodes/{instance_id}")
    assert status == 200, view
    return view


def _nodes(sm: Any, cluster: str) -> list[dict[str, Any]]:
    return sm.list_cluster_nodes(ClusterName=cluster)["ClusterNodeSummaries"]


def _node_pids(instance_ids: set[str]) -> list[int]:
    """Live processes on this machine that belong to the nodes (by their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state in ("Z", "X"):
            continue
        for item in environ:
            if item.startswith(b"HYPERPOD_LOCAL_NODE=") and item[20:].decode() in instance_ids:
                found.append(int(entry.name))
    return found


def test_volumes_through_reboot_software_update_replace_and_delete(tmp_path: Path) -> None:
    escape = tmp_path / "escape"
    _scripts(tmp_path, MARKER_SCRIPT.replace("{escape}", str(escape)))
    with _server(tmp_path, "--clock", "manual") as server:
        assert any(line.startswith("  confinement: ") for line in server.banner)
        sm = server.client()
        # An older release, so UpdateClusterSoftware has something to do.
        group = _workers(2, ImageReleaseVersion="2025.10.1")
        sm.create_cluster(ClusterName="vols", InstanceGroups=[group])
        server.settle()
        assert sm.describe_cluster(ClusterName="vols")["ClusterStatus"] == "InService"
        first, other = (node["InstanceId"] for node in _nodes(sm, "vols"))
        view = _view(server, "vols", first)["Process"]
        secondary, root = Path(view["SecondaryVolumeDir"]), Path(view["RootVolumeDir"])
        assert (secondary / "marker").read_text() == f"{first}\n"
        assert (root / "var" / "log" / "root-marker").read_text() == f"root of {first}\n"
        assert view["LifecycleScript"] == {"State": "Succeeded", "ExitCode": 0, "Message": None}
        assert "provisioned" in view["LogTail"]
        if view["Confinement"] != "none":
            # The script could write only its own node's directories.
            assert "wrote outside" not in view["LogTail"]
            assert not escape.exists()
        # HyperPod's resource config, with the cluster's real values.
        config = json.loads((secondary / "resource_config.json").read_text())
        assert config["ClusterConfig"]["ClusterName"] == "vols"
        listed = {node["InstanceId"] for node in _nodes(sm, "vols")}
        described = sm.describe_cluster_node(ClusterName="vols", NodeId=first)["NodeDetails"]
        [written] = config["InstanceGroups"]
        assert {i["InstanceId"] for i in written["Instances"]} == listed
        ips = {i["InstanceId"]: i["CustomerIpAddress"] for i in written["Instances"]}
        assert ips[first] == described["PrivatePrimaryIp"]

        # A reboot: a new agent on the same directories; the script does not run again.
        agent = view["AgentPid"]
        sm.batch_reboot_cluster_nodes(ClusterName="vols", NodeIds=[first])
        server.settle()
        view = _view(server, "vols", first)["Process"]
        assert view["AgentPid"] != agent and view["AgentAlive"]
        assert (secondary / "marker").read_text() == f"{first}\n"
        assert (root / "var" / "log" / "root-marker").exists()

        # A software update: a new root volume, the script again, the secondary kept.
        (root / "tmp" / "scratch").write_text("on the old root")
        sm.update_cluster_software(ClusterName="vols")
        server.settle()
        assert not (root / "tmp" / "scratch").exists()
        assert (root / "var" / "log" / "root-marker").read_text() == f"root of {first}\n"
        assert (secondary / "marker").read_text() == f"{first}\n{first}\n"
        assert {n["InstanceStatus"]["Status"] for n in _nodes(sm, "vols")} == {"Running"}

        # A replace: the old instance's tree and directories go; the new one starts afresh.
        sm.batch_replace_cluster_nodes(ClusterName="vols", NodeIds=[first])
        server.settle()
        ids = {node["InstanceId"] for node in _nodes(sm, "vols")}
        assert first not in ids and other in ids
        [new] = ids - {other}
        assert not secondary.parent.exists()
        assert not _node_pids({first})
        fresh = Path(_view(server, "vols", new)["Process"]["SecondaryVolumeDir"])
        assert (fresh / "marker").read_text() == f"{new}\n"

        # Deleting the cluster leaves no process and no directory of it.
        every = ids | {first}
        assert _node_pids(ids)
        sm.delete_cluster(ClusterName="vols")
        server.settle()
        assert not _node_pids(every)
        assert list((tmp_path / "data" / "nodes").iterdir()) == []


FAILING_SCRIPT = """#!/bin/bash
echo "installing drivers"
echo "error: driver 535 not found" >&2
exit 3
"""


def test_a_failing_script_fails_a_classic_creation_with_its_last_lines(tmp_path: Path) -> None:
    _scripts(tmp_path, FAILING_SCRIPT)
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="bad", InstanceGroups=[_workers(1)])
        server.settle()
        cluster = sm.describe_cluster(ClusterName="bad")
        assert cluster["ClusterStatus"] == "Failed"
        message = cluster["FailureMessage"]
        assert message.startswith("Lifecycle script on_create.sh failed on instance i-")
        assert "in InstanceGroup workers: exit code 3." in message
        assert message.endswith("installing drivers | error: driver 535 not found")


def test_a_failing_script_is_retried_on_a_new_instance_in_a_continuous_cluster(
    tmp_path: Path,
) -> None:
    scripts = _scripts(tmp_path, FAILING_SCRIPT)
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(
            ClusterName="retry",
            InstanceGroups=[_workers(1)],
            **CONTINUOUS,
        )
        # Cluster setup (300 s), the node's provisioning (240 s), its script (read 30 s
        # later); its retry is 300 s after that.
        server.advance(600)
        [node] = _nodes(sm, "retry")
        assert node["InstanceStatus"]["Status"] == "Failure"
        assert "exit code 3" in node["InstanceStatus"]["Message"]
        assert "error: driver 535 not found" in node["InstanceStatus"]["Message"]
        # The user fixes the script; the retry (a new instance) fetches it again.
        (scripts / "on_create.sh").write_text("#!/bin/bash\necho fixed\n")
        server.settle()
        [retried] = _nodes(sm, "retry")
        assert retried["InstanceStatus"]["Status"] == "Running"
        assert retried["InstanceId"] != node["InstanceId"]
        assert "fixed" in _view(server, "retry", retried["InstanceId"])["Process"]["LogTail"]
        sm.delete_cluster(ClusterName="retry")
        server.settle()


def test_a_script_past_its_timeout_is_killed_and_fails(tmp_path: Path) -> None:
    _scripts(tmp_path, "#!/bin/bash\necho starting\nsleep 60\n")
    with _server(tmp_path, "--clock", "manual", "--script-timeout", "1") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="slow", InstanceGroups=[_workers(1)])
        server.settle()
        cluster = sm.describe_cluster(ClusterName="slow")
        assert cluster["ClusterStatus"] == "Failed"
        assert "timed out after 1 s and was killed" in cluster["FailureMessage"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _moto(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    with (tmp_path / "moto.log").open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_scripts_are_fetched_from_the_s3_endpoint_the_environment_names(tmp_path: Path) -> None:
    _scripts(tmp_path, "#!/bin/bash\nexit 9\n")  # the mapping is for another prefix
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with _moto(tmp_path) as moto:
        s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", **_lower(keys))
        s3.create_bucket(Bucket="my-lcs")
        s3.put_object(Bucket="my-lcs", Key="base/on_create.sh", Body=b"bash ./setup.sh\n")
        s3.put_object(Bucket="my-lcs", Key="base/setup.sh", Body=b"echo from-moto-s3\n")
        env = {**keys, "AWS_ENDPOINT_URL_S3": moto, "AWS_DEFAULT_REGION": "us-east-1"}
        with _server(tmp_path, "--clock", "manual", env=env) as server:
            sm = server.client()
            group = _workers(
                1, LifeCycleConfig={"SourceS3Uri": "s3://my-lcs/base/", "OnCreate": "on_create.sh"}
            )
            sm.create_cluster(ClusterName="s3", InstanceGroups=[group])
            server.settle()
            assert sm.describe_cluster(ClusterName="s3")["ClusterStatus"] == "InService"
            [node] = _nodes(sm, "s3")
            tail = _view(server, "s3", node["InstanceId"])["Process"]["LogTail"]
            assert "from-moto-s3" in tail
            assert any(f"s3://my-lcs/base/ (2 objects from {moto})" in line for line in tail)


def _lower(keys: dict[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in keys.items()}


def _agent_pid(server: ServerProcess, cluster: str, instance_id: str) -> int:
    return int(_view(server, cluster, instance_id)["Process"]["AgentPid"])


def _kill(pid: int) -> None:
    """SIGKILL a process and wait until it has died (a zombie, or gone)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} outlived SIGKILL")


def test_a_killed_agent_is_rebooted_and_replaced_if_it_stays_dead(tmp_path: Path) -> None:
    _scripts(tmp_path, "#!/bin/bash\necho up\n")
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(
            ClusterName="dead", InstanceGroups=[_workers(1)], NodeRecovery="Automatic", **CONTINUOUS
        )
        server.settle()
        [node] = _nodes(sm, "dead")
        instance_id = node["InstanceId"]
        agent = _agent_pid(server, "dead", instance_id)
        _kill(agent)
        server.settle()
        # Noticed, rebooted: the same instance, a new agent, Running.
        [node] = _nodes(sm, "dead")
        assert node["InstanceId"] == instance_id
        assert node["InstanceStatus"]["Status"] == "Running"
        pages = sm.get_paginator("list_cluster_events").paginate(ClusterName="dead")
        events = [e["Description"] for page in pages for e in page["Events"]]
        assert any("Node stopped responding to the health agent" in e for e in events), events
        again = _agent_pid(server, "dead", instance_id)
        assert again != agent
        # It dies again at once: it did not come back, so it is replaced.
        _kill(again)
        server.settle()
        [node] = _nodes(sm, "dead")
        assert node["InstanceId"] != instance_id
        assert node["InstanceStatus"]["Status"] == "Running"
        assert not _node_pids({instance_id})
        sm.delete_cluster(ClusterName="dead")
        server.settle()


def test_a_script_reports_a_hardware_fault_from_inside_its_node(tmp_path: Path) -> None:
    # The one-line call, as the README gives it.
    _scripts(tmp_path, '#!/bin/bash\necho GpuXid79 > "$HYPERPOD_LOCAL_FAULTS_DIR/gpu.fault"\n')
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="hw", InstanceGroups=[_workers(1)], NodeRecovery="None")
        server.settle()
        [node] = _nodes(sm, "hw")
        assert node["InstanceStatus"] == {
            "Status": "Failure",
            "Message": "GPU has fallen off the bus (NVIDIA Xid 79)",
        }


def test_the_real_clock_runs_scripts_and_notices_an_agent_that_stops_heartbeating(
    tmp_path: Path,
) -> None:
    _scripts(tmp_path, "#!/bin/bash\nsleep 0.3\necho up\n")
    with _server(tmp_path, "--speed", "600") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="real", InstanceGroups=[_workers(1)])
        deadline = time.monotonic() + 60
        while sm.describe_cluster(ClusterName="real")["ClusterStatus"] != "InService":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        [node] = _nodes(sm, "real")
        agent = _agent_pid(server, "real", node["InstanceId"])
        # A hung node: its agent alive, its heartbeats gone (five missed: 5 s).
        os.kill(agent, signal.SIGSTOP)
        while True:
            assert time.monotonic() < deadline
            [node] = _nodes(sm, "real")
            view = _view(server, "real", node["InstanceId"])["Process"]
            if view["AgentPid"] != agent and node["InstanceStatus"]["Status"] == "Running":
                break
            time.sleep(0.1)
        assert view["AgentAlive"]
        assert not Path(f"/proc/{agent}").exists() or _zombie(agent)
    # The server is gone, and so are its nodes.
    assert not _node_pids({node["InstanceId"]})


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] in "ZX"
    except OSError:
        return True


def test_the_server_runs_no_more_nodes_than_it_is_told(tmp_path: Path) -> None:
    _scripts(tmp_path, "#!/bin/bash\necho up\n")
    with _server(tmp_path, "--clock", "manual", "--max-nodes", "2") as server:
        sm = server.client()
        with pytest.raises(ClientError) as raised:
            sm.create_cluster(ClusterName="big", InstanceGroups=[_workers(3)])
        error = raised.value.response["Error"]
        assert error["Code"] == "ResourceLimitExceeded"
        assert error["Message"] == (
            "The request asks for 3 instances in one cluster; the limit is 2 (set with "
            "--max-nodes, the process nodes a server runs)."
        )
        sm.create_cluster(ClusterName="one", InstanceGroups=[_workers(2)])
        sm.create_cluster(ClusterName="two", InstanceGroups=[_workers(1)])
        server.settle()
        statuses = {name: sm.describe_cluster(ClusterName=name) for name in ("one", "two")}
        failed = [c for c in statuses.values() if c["ClusterStatus"] == "Failed"]
        assert len(failed) == 1
        assert failed[0]["FailureMessage"] == (
            "This hyperpod-local server runs at most 2 process nodes (serve --max-nodes), "
            "and 2 are running."
        )


def test_a_script_may_run_only_so_many_processes(tmp_path: Path) -> None:
    _scripts(tmp_path, "#!/bin/sh\nfor i in $(seq 40); do sleep 30 & done\nwait\n")
    with _server(tmp_path, "--clock", "manual", "--max-processes-per-node", "8") as server:
        if os.geteuid() == 0 and "  confinement: none" in "\n".join(server.banner):
            pytest.skip("a root server's unconfined scripts run as root, whom no bound holds")
        sm = server.client()
        sm.create_cluster(ClusterName="forks", InstanceGroups=[_workers(1)])
        server.settle()
        cluster = sm.describe_cluster(ClusterName="forks")
        assert cluster["ClusterStatus"] == "Failed"
        assert "Cannot fork" in cluster["FailureMessage"]


def test_without_confinement_variables_name_the_nodes_directories(tmp_path: Path) -> None:
    # Unconfined, a root server's script could write anywhere: this one does not try.
    _scripts(tmp_path, MARKER_SCRIPT.replace("{escape}", "/dev/null"))
    with _server(tmp_path, "--clock", "manual", "--confinement", "none") as server:
        assert "  confinement: none: scripts run as the server's user" in "\n".join(server.banner)
        sm = server.client()
        sm.create_cluster(ClusterName="open", InstanceGroups=[_workers(1)])
        server.settle()
        [node] = _nodes(sm, "open")
        view = _view(server, "open", node["InstanceId"])["Process"]
        assert view["Confinement"] == "none"
        secondary = Path(view["SecondaryVolumeDir"])
        assert (secondary / "marker").read_text() == f"{node['InstanceId']}\n"
        assert (Path(view["RootVolumeDir"]) / "var" / "log" / "root-marker").exists()
        sm.delete_cluster(ClusterName="open")
        server.settle()
        assert not secondary.exists()


def test_a_slurm_node_reads_its_provisioning_parameters(tmp_path: Path) -> None:
    source = "$HYPERPOD_LOCAL_ROOT_VOLUME/opt/ml/config/provisioning_parameters.json"
    _scripts(
        tmp_path,
        f'#!/bin/bash\ncp "{source}" "$HYPERPOD_LOCAL_OPT_SAGEMAKER/"\n',
    )
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(
            ClusterName="slurm",
            InstanceGroups=[
                _workers(1, InstanceGroupName="head", SlurmConfig={"NodeType": "Controller"}),
                _workers(2, SlurmConfig={"NodeType": "Compute", "PartitionNames": ["dev"]}),
            ],
            Orchestrator={"Slurm": {"SlurmConfigStrategy": "Managed"}},
        )
        server.settle()
        assert sm.describe_cluster(ClusterName="slurm")["ClusterStatus"] == "InService"
        nodes = _nodes(sm, "slurm")
        [head] = [node for node in nodes if node["InstanceGroupName"] == "head"]
        worker = next(node for node in nodes if node["InstanceGroupName"] == "workers")
        secondary = Path(
            _view(server, "slurm", worker["InstanceId"])["Process"]["SecondaryVolumeDir"]
        )
        params = json.loads((secondary / "provisioning_parameters.json").read_text())
        described = sm.describe_cluster_node(ClusterName="slurm", NodeId=head["InstanceId"])
        assert params == {
            "version": "1.0.0",
            "workload_manager": "slurm",
            "controller_group": "head",
            "controller_hosts": [described["NodeDetails"]["PrivatePrimaryIp"]],
            "worker_groups": [{"instance_group_name": "workers", "partition_name": "dev"}],
        }


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    from tests.test_docs import free_port, sh_block, shell

    result = shell(sh_block("--provider process"), tmp_path, {"4582": free_port()})
    assert result.returncode == 0, result.stdout + result.stderr
    # The node view curl printed, last.
    at = result.stdout.rindex('{"InstanceId"')
    node, _ = json.JSONDecoder().raw_decode(result.stdout[at:])
    process = node["Process"]
    assert process["LifecycleScript"]["State"] == "Succeeded"
    assert f"provisioning {node['Hostname']} ({node['InstanceId']})" in process["LogTail"]
    assert '"InstanceName": "workers-2"' in process["LogTail"]
    history = (Path(process["SecondaryVolumeDir"]) / "history").read_text()
    assert history.startswith("created ")
    # The server is gone (`kill $!`, then the shell's end kills what is left), and so are its
    # nodes: an agent whose server has gone ends within a heartbeat.
    deadline = time.monotonic() + 30
    while _node_pids({node["InstanceId"]}):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_nodes_stop_with_the_server_and_come_back_with_it(tmp_path: Path) -> None:
    _scripts(tmp_path, MARKER_SCRIPT.replace("{escape}", "/dev/null"))
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="again", InstanceGroups=[_workers(1)])
        server.settle()
        [node] = _nodes(sm, "again")
        before = _view(server, "again", node["InstanceId"])["Process"]
    assert not _node_pids({node["InstanceId"]})
    secondary = Path(before["SecondaryVolumeDir"])
    assert (secondary / "marker").read_text() == f"{node['InstanceId']}\n"
    with _server(tmp_path, "--clock", "manual") as server:
        after = _view(server, "again", node["InstanceId"])["Process"]
        assert after["AgentAlive"] and after["AgentPid"] != before["AgentPid"]
        # As after a power cut: the same volumes, and the script does not run again.
        assert (secondary / "marker").read_text() == f"{node['InstanceId']}\n"
        sm = server.client()
        sm.delete_cluster(ClusterName="again")
        server.settle()
    assert not secondary.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="a node's own user needs a root server")
def test_as_a_nodes_own_user_a_script_writes_only_its_nodes_directories(tmp_path: Path) -> None:
    # A data dir others may pass through, as the user confinement needs.
    open_dir = Path(tempfile.mkdtemp(prefix="hyperpod-local-user-"))
    open_dir.chmod(0o755)
    escape = open_dir / "escape"
    try:
        _scripts(tmp_path, MARKER_SCRIPT.replace("{escape}", str(escape)))
        server = ServerProcess(
            open_dir / "data",
            "--provider",
            "process",
            "--confinement",
            "user",
            "--clock",
            "manual",
            "--scripts-from",
            f"{SOURCE}=file://{tmp_path / 'lcs'}",
        ).start()
        try:
            assert "  confinement: a user of each node's own" in "\n".join(server.banner)
            sm = server.client()
            sm.create_cluster(ClusterName="own", InstanceGroups=[_workers(1)])
            server.settle()
            [node] = _nodes(sm, "own")
            view = _view(server, "own", node["InstanceId"])["Process"]
            assert view["LifecycleScript"]["State"] == "Succeeded", view["LogTail"]
            secondary = Path(view["SecondaryVolumeDir"])
            assert (secondary / "marker").read_text() == f"{node['InstanceId']}\n"
            assert secondary.stat().st_uid >= 200_000
            assert "wrote outside" not in view["LogTail"] and not escape.exists()
        finally:
            server.stop()
    finally:
        shutil.rmtree(open_dir, ignore_errors=True)


def test_an_injected_lifecycle_script_fault_still_strikes_a_real_script(tmp_path: Path) -> None:
    _scripts(tmp_path, "#!/bin/bash\necho fine\n")
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="struck", InstanceGroups=[_workers(1)])
        status, _ = server.admin(
            "POST",
            "/_hyperpod/faults",
            {"Kind": "lifecycle_script", "Cluster": "struck", "InstanceGroupName": "workers"},
        )
        assert status == 201
        server.settle()
        cluster = sm.describe_cluster(ClusterName="struck")
        assert cluster["ClusterStatus"] == "Failed"
        assert cluster["FailureMessage"].endswith("in InstanceGroup workers: exit code 1.")


def test_a_mapping_that_is_no_mapping_is_refused_at_start(tmp_path: Path) -> None:
    from tests.support import CLI

    done = subprocess.run(
        [
            CLI,
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--provider",
            "process",
            "--scripts-from",
            "s3://bucket/prefix",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: --scripts-from 's3://bucket/prefix': expected S3URI=file:///DIR, e.g. "
        "s3://my-bucket/lifecycle=file:///home/me/lifecycle"
    )


def test_the_report_command_reports_from_inside_a_node(tmp_path: Path) -> None:
    # Unconfined, the node's script can run the server's own hyperpod-local.
    _scripts(tmp_path, "#!/bin/bash\nhyperpod-local report-fault EfaDown\n")
    with _server(tmp_path, "--clock", "manual", "--confinement", "none") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="cmd", InstanceGroups=[_workers(1)], NodeRecovery="None")
        server.settle()
        [node] = _nodes(sm, "cmd")
        assert node["InstanceStatus"] == {
            "Status": "Failure",
            "Message": "EFA network interface is down",
        }
        tail = _view(server, "cmd", node["InstanceId"])["Process"]["LogTail"]
        assert "reported EfaDown: EFA network interface is down" in tail


def test_the_report_command_outside_a_node_says_so() -> None:
    from tests.support import CLI

    env = {k: v for k, v in os.environ.items() if k != "HYPERPOD_LOCAL_FAULTS_DIR"}
    outside = subprocess.run(
        [CLI, "report-fault", "GpuXid79"], capture_output=True, text=True, env=env, timeout=60
    )
    assert outside.returncode == 1
    assert "not inside a process node" in outside.stderr
    unknown = subprocess.run(
        [CLI, "report-fault", "GpuXid0"], capture_output=True, text=True, env=env, timeout=60
    )
    assert unknown.returncode == 1
    assert "unknown hardware fault type 'GpuXid0'; known: GpuXid79" in unknown.stderr


def test_the_in_process_mock_runs_process_nodes_too(tmp_path: Path) -> None:
    from hyperpod_local.mock import HyperPodMock

    scripts = _scripts(tmp_path, "#!/bin/bash\necho in-process\n")
    options = {"scripts_from": {SOURCE: str(scripts)}}
    with HyperPodMock(provider="process", provider_options=options) as hp:
        sm = hp.client()
        sm.create_cluster(ClusterName="mocked", InstanceGroups=[_workers(1)])
        hp.settle()
        [node] = _nodes(sm, "mocked")
        assert node["InstanceStatus"]["Status"] == "Running"
        assert hp.backend is not None
        log = hp.backend.settings.data_dir / "nodes" / node["InstanceId"] / "control" / "node.log"
        assert "in-process" in log.read_text().splitlines()
    # The mock closed, its nodes are gone.
    assert not _node_pids({node["InstanceId"]})


DAEMON_SCRIPT = """#!/bin/bash
VOLUME="$HYPERPOD_LOCAL_OPT_SAGEMAKER"
nohup bash -c 'while true; do date +%s%N >> "$0/daemon.beats"; sleep 0.1; done' "$VOLUME" \\
  > /dev/null 2>&1 &
echo "started a node-side agent"
"""


def test_what_a_script_starts_runs_on_in_its_node_until_the_node_ends(tmp_path: Path) -> None:
    _scripts(tmp_path, DAEMON_SCRIPT)
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="daemon", InstanceGroups=[_workers(1)])
        server.settle()
        [node] = _nodes(sm, "daemon")
        view = _view(server, "daemon", node["InstanceId"])["Process"]
        assert view["LifecycleScript"]["State"] == "Succeeded"
        beats = Path(view["SecondaryVolumeDir"]) / "daemon.beats"
        deadline = time.monotonic() + 30
        counted = 0
        while counted < 3:
            assert time.monotonic() < deadline, "the script's daemon does not run"
            time.sleep(0.1)
            counted = len(beats.read_text().splitlines()) if beats.exists() else 0
        # Still beating after the script ended: more lines keep coming.
        while len(beats.read_text().splitlines()) <= counted:
            assert time.monotonic() < deadline, "the script's daemon stopped"
            time.sleep(0.1)
        sm.delete_cluster(ClusterName="daemon")
        server.settle()
        assert not _node_pids({node["InstanceId"]})


def test_a_script_that_fails_after_a_software_update_rolls_the_update_back(
    tmp_path: Path,
) -> None:
    scripts = _scripts(tmp_path, "#!/bin/bash\necho fine\n")
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        group = _workers(2, ImageReleaseVersion="2025.10.1")
        sm.create_cluster(ClusterName="roll", InstanceGroups=[group])
        server.settle()
        (scripts / "on_create.sh").write_text("#!/bin/bash\necho 'new driver broke'\nexit 4\n")
        sm.update_cluster_software(
            ClusterName="roll",
            DeploymentConfig={
                "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}},
                "WaitIntervalInSeconds": 0,
            },
        )
        server.settle()
        [workers] = sm.describe_cluster(ClusterName="roll")["InstanceGroups"]
        assert workers["SoftwareUpdateStatus"] == "RollbackComplete"
        releases = {n["CurrentImageReleaseVersion"] for n in _nodes(sm, "roll")}
        assert releases == {"2025.10.1"}
        assert {n["InstanceStatus"]["Status"] for n in _nodes(sm, "roll")} == {"Running"}


def test_a_moved_node_keeps_its_instance_and_runs_the_target_groups_script(
    tmp_path: Path,
) -> None:
    scripts = _scripts(tmp_path, MARKER_SCRIPT.replace("{escape}", "/dev/null"))
    (scripts / "serving.sh").write_text(
        '#!/bin/bash\necho serving > "$HYPERPOD_LOCAL_OPT_SAGEMAKER/role"\n'
    )
    with _server(tmp_path, "--clock", "manual") as server:
        sm = server.client()
        arns = {}
        for name, script in (("training", "on_create.sh"), ("serving", "serving.sh")):
            lifecycle = {"SourceS3Uri": SOURCE, "OnCreate": script}
            eks = {"Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}}
            arns[name] = sm.create_cluster(
                ClusterName=name,
                InstanceGroups=[_workers(1, LifeCycleConfig=lifecycle)],
                NodeProvisioningMode="Continuous",
                Orchestrator=eks,
            )["ClusterArn"]
        server.settle()
        [moved] = _nodes(sm, "training")
        before = _view(server, "training", moved["InstanceId"])["Process"]
        sm.move_cluster_nodes(
            SourceClusterArn=arns["training"],
            SourceInstanceGroupName="workers",
            TargetClusterArn=arns["serving"],
            TargetInstanceGroupName="workers",
            NodeIds=[moved["InstanceId"]],
        )
        server.settle()
        here = {n["InstanceId"]: n for n in _nodes(sm, "serving")}
        assert here[moved["InstanceId"]]["InstanceStatus"]["Status"] == "Running"
        after = _view(server, "serving", moved["InstanceId"])["Process"]
        assert after["AgentPid"] != before["AgentPid"]
        secondary = Path(after["SecondaryVolumeDir"])
        # New volumes: the training script's marker is gone, the serving script's is there.
        assert not (secondary / "marker").exists()
        assert (secondary / "role").read_text() == "serving\n"


def test_nodes_added_past_the_limit_wait_in_failure_as_a_shortage_leaves_them(
    tmp_path: Path,
) -> None:
    # A scale-up inside its cluster's limit that the server has room for only in part (other
    # clusters hold its nodes) is short, as a capacity shortage leaves it: its nodes wait in
    # Failure with the limit's message and are tried again later; no step fails, and the
    # cluster stays InService.
    _scripts(tmp_path, "#!/bin/bash\necho up\n")
    with _server(tmp_path, "--clock", "manual", "--max-nodes", "3") as server:
        sm = server.client()
        sm.create_cluster(ClusterName="other", InstanceGroups=[_workers(1)])
        sm.create_cluster(ClusterName="grow", InstanceGroups=[_workers(1)], **CONTINUOUS)
        server.settle()
        added = sm.batch_add_cluster_nodes(
            ClusterName="grow",
            NodesToAdd=[{"InstanceGroupName": "workers", "IncrementTargetCountBy": 2}],
        )
        assert added["Failed"] == [] and len(added["Successful"]) == 2
        server.advance(600)
        nodes = sm.list_cluster_nodes(ClusterName="grow", IncludeNodeLogicalIds=True)[
            "ClusterNodeSummaries"
        ]
        # Both were short together; tried again one at a time, one took the room there was.
        failed = [n for n in nodes if n["InstanceStatus"]["Status"] == "Failure"]
        assert len(nodes) == 3 and len(failed) == 1, nodes
        assert failed[0]["InstanceStatus"]["Message"] == (
            "This hyperpod-local server runs at most 3 process nodes (serve --max-nodes), "
            "and 3 are running."
        )
        assert sm.describe_cluster(ClusterName="grow")["ClusterStatus"] == "InService"
        events = sm.list_cluster_events(ClusterName="grow", MaxResults=100)["Events"]
        assert not [e for e in events if "Internal error" in e["Description"]]
        # Room again (the other cluster gone): the waiting node comes up on its next try.
        sm.delete_cluster(ClusterName="other")
        server.advance(3600)
        nodes = sm.list_cluster_nodes(ClusterName="grow")["ClusterNodeSummaries"]
        assert [n["InstanceStatus"]["Status"] for n in nodes] == ["Running"] * 3

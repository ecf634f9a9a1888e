"""The README's examples run as written: its Python blocks, and its shell blocks in a shell of
a machine with no AWS configuration, with `.venv` activated as the README says, against a
server that `make run` would have started. Only the ports are changed (to free ones), so the
test never meets a server a developer has running on the README's."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from contextlib import suppress
from pathlib import Path
from typing import Any

import hyperpod_local
from hyperpod_local.demo import ensure_demo_cluster
from tests import postgresql
from tests.support import ServerProcess, clean_environment, run_clean

README = Path(__file__).parent.parent / "README.md"
# The ports the README's examples use: `make run`'s, the manual clock's, the team server's.
README_PORTS = ("4577", "4578", "4579")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def sh_block(containing: str) -> str:
    [block] = [
        block
        for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
        if containing in block
    ]
    return block


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean, timeout=60
    )


def shell(script: str, tmp_path: Path, ports: dict[str, int]) -> subprocess.CompletedProcess[str]:
    """`script` in bash, in a second shell as the README has it: `.venv` activated, no AWS
    configuration, the README's ports mapped to `ports`. Every process it starts is killed
    when it ends (bash, its background jobs and their children share one process group)."""
    for readme_port, port in ports.items():
        script = script.replace(readme_port, str(port))
    work = tmp_path / "shell"
    work.mkdir(exist_ok=True)
    env = clean_environment(
        tmp_path,
        TMPDIR=str(work),
        # Should a client ever ignore the endpoint it is given, it fails rather than reach AWS.
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        AWS_PAGER="",
    )
    for variable in ("VIRTUAL_ENV", "COLUMNS", "LINES", "PYTHONPATH"):
        env.pop(variable, None)
    # The venv's own bin/ off PATH: only the README's activation may put it there.
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(d for d in env["PATH"].split(os.pathsep) if d != venv_bin)
    activate = Path(sys.prefix) / "bin" / "activate"
    prelude = f"set -euo pipefail\n. {activate}\n"
    # Files, not pipes: a background job left running must not keep the test waiting.
    out, err = work / "stdout", work / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            ["bash", "-c", prelude + script],
            cwd=work,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=120)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())


def sections(stdout: str) -> dict[str, str]:
    """The script's output cut at its `echo "== name"` lines."""
    parts = re.split(r"^== (\S+)$", stdout, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def demo_server(tmp_path: Path) -> ServerProcess:
    """The server as `make run` leaves it once its demo cluster is up: a real clock at the
    default speed, the demo cluster InService (made under a manual clock, so the test does
    not wait the 15 s it takes at --speed 60)."""
    data = tmp_path / "data"
    setup = ServerProcess(data, "--clock", "manual", "--demo").start()
    try:
        setup.settle()
    finally:
        setup.stop()
    return ServerProcess(data, "--demo").start()


def test_the_readme_opens_with_the_two_commands() -> None:
    opening = README.read_text().splitlines()[:6]
    assert any(line.startswith("make run") for line in opening)
    assert any(line.startswith("make test") for line in opening)


def test_make_run_installs_what_the_readme_uses() -> None:
    # `make run` alone must leave .venv with `aws` and boto3 for the examples (the suite runs
    # in the dev venv, which has them anyway, so this is checked where it is decided).
    root = README.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {re.split(r"[<>=~\[ ]", spec)[0] for spec in extras["clients"]} >= {"boto3", "awscli"}
    assert "hyperpod-local[clients]" in extras["dev"]
    makefile = (root / "Makefile").read_text()
    assert re.search(r"^run: \$\(VENV\)/\.installed$", makefile, re.M)
    recipe = makefile.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet -e '.[clients]'" in recipe


def test_the_readme_names_only_files_of_this_repository() -> None:
    named = re.findall(r"[\w./-]+\.md\b", README.read_text())
    assert "docs/architecture.md" in named
    for name in named:
        assert (README.parent / name).is_file(), name


def test_the_shell_blocks_run_in_order_in_one_shell(tmp_path: Path) -> None:
    server = demo_server(tmp_path)
    manual_port = free_port()
    # The placeholder is the id that `fault add` printed just before.
    last_fault = (
        "\"$(hyperpod-local fault list | python -c 'import json, sys; "
        'print(json.load(sys.stdin)["Faults"][-1]["FaultId"])\')"'
    )
    blocks = {
        "aws": sh_block("aws sagemaker list-clusters"),
        "sts": sh_block("aws sts get-caller-identity"),
        "time": sh_block('{"seconds": 120}'),
        "replace": sh_block("batch-replace-cluster-nodes"),
        "marker": sh_block("/marker"),
        "fault": sh_block("hyperpod-local fault list").replace("<FaultId>", last_fault),
    }
    # `echo` first: curl -s ends its answers with no newline.
    script = "".join(f'echo\necho "== {name}"\n{block}' for name, block in blocks.items())
    script += 'echo\necho "== after"\ncurl -s localhost:4578/_hyperpod/clock || echo gone\n'
    try:
        port = int(server.url.rsplit(":", 1)[1])
        result = shell(script, tmp_path, {"4577": port, "4578": manual_port})
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    out = sections(result.stdout)

    # The AWS CLI, with the flag and with the variable.
    assert '"ClusterName": "demo"' in out["aws"]
    assert '"ClusterStatus": "InService"' in out["aws"]
    assert len(re.findall(r'"InstanceId": "i-[0-9a-f]{17}"', out["aws"])) == 6
    # STS on the same port answers who the caller is.
    assert json.loads(out["sts"])["Account"] == "123456789012"
    # The manual clock beside it: moved, settled, shown, and stopped by `kill $!`.
    # The server's banner comes first (it shares the shell's terminal), then curl's answers.
    clock = [json.loads(answer) for answer in re.findall(r'\{"Mode"[^{}]*\}', out["time"])]
    assert clock[0]["Mode"] == "manual"
    assert clock[1]["Now"] == clock[0]["Now"] + 120
    assert clock[-1]["Mode"] == "manual"
    assert out["after"].strip() == "gone"
    # A worker replaced, and the table printed once.
    assert re.search(r'"Successful": \[\s*"i-[0-9a-f]{17}"\s*\]', out["replace"]), out["replace"]
    assert "demo  InService" in out["replace"]
    # The marker written onto a volume, and the node's view showing it.
    assert "checkpoint-42" in out["marker"]
    # A fault added, listed and removed.
    fault_id = re.findall(r'"FaultId": "([0-9a-f-]{36})"', out["fault"])[0]
    assert out["fault"].strip().endswith(f"removed {fault_id}")


def test_the_team_server_starts_beside_make_run_and_checks_signatures(tmp_path: Path) -> None:
    block = sh_block("--auth strict").replace("--host 0.0.0.0", "--host 127.0.0.1")
    serve = block.splitlines()[-1]
    assert serve.startswith("hyperpod-local serve ")
    script = (
        block.replace(serve, f"{serve} > server.out &")
        + "until curl -s localhost:4579/_hyperpod/health > /dev/null; do sleep 0.1; done\n"
        + "export AWS_DEFAULT_REGION=us-east-1\n"
        + "AWS_ACCESS_KEY_ID=AKIDALICEEXAMPLE AWS_SECRET_ACCESS_KEY=alice-secret "
        + "aws sagemaker list-clusters --endpoint-url http://127.0.0.1:4579\n"
        + "AWS_ACCESS_KEY_ID=AKIDALICEEXAMPLE AWS_SECRET_ACCESS_KEY=wrong "
        + "aws sagemaker list-clusters --endpoint-url http://127.0.0.1:4579 2>&1 || true\n"
        + "ls team-data\n"
        + "kill $!\n"
    )
    result = shell(script, tmp_path, {"4579": free_port()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ClusterSummaries": []' in result.stdout
    assert "InvalidSignatureException" in result.stdout
    assert "hyperpod.db" in result.stdout


def test_the_boto3_example_runs_against_the_server(tmp_path: Path) -> None:
    # A real clock, as `make run` has, only faster: the example waits for InService.
    server = ServerProcess(tmp_path / "data", "--speed", "20000").start()
    try:
        result = run(python_blocks()[0], tmp_path, AWS_ENDPOINT_URL_SAGEMAKER=server.url)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith("i-") and " Running " in line]) == 4
    assert "Member must have length less than or equal to 25" in result.stdout


def test_the_mock_example_runs_with_no_credentials_and_no_server(tmp_path: Path) -> None:
    # No AWS_* variable, an empty HOME, and every connection beyond loopback refused.
    result = run_clean(python_blocks()[1], tmp_path)
    assert result.returncode == 0, result.stderr


def fault_specs() -> list[dict[str, Any]]:
    """The example column of the README's fault table."""
    return [
        json.loads(example)
        for example in re.findall(r"^\| `\w+` \|.*\| `(\{.*\})` \|$", README.read_text(), re.M)
    ]


def test_the_readme_fault_specs_go_in_through_the_admin_api_and_the_mock(tmp_path: Path) -> None:
    from hyperpod_local.domain.faults import FaultKind

    specs = fault_specs()
    assert {spec["Kind"] for spec in specs} == set(FaultKind)

    def filled(spec: dict[str, Any], worker: str) -> dict[str, Any]:
        return {k: worker if v == "i-..." else v for k, v in spec.items()}

    server = ServerProcess(tmp_path / "data", "--clock", "manual", "--demo").start()
    try:
        server.settle()
        worker = server.client().list_cluster_nodes(
            ClusterName="demo", InstanceGroupNameContains="workers"
        )["ClusterNodeSummaries"][0]["InstanceId"]
        for spec in specs:
            status, body = server.admin("POST", "/_hyperpod/faults", filled(spec, worker))
            assert status == 201, (spec, body)
            assert body["Faults"][0]["Kind"] == spec["Kind"]
    finally:
        server.stop()

    with hyperpod_local.mock() as hp:
        assert hp.backend is not None
        ensure_demo_cluster(hp.backend)
        hp.settle()
        worker = hp.client().list_cluster_nodes(
            ClusterName="demo", InstanceGroupNameContains="workers"
        )["ClusterNodeSummaries"][0]["InstanceId"]
        for spec in specs:
            [made] = hp.inject(filled(spec, worker))
            assert made["Kind"] == spec["Kind"]


def test_three_replicas_on_one_postgresql_serve_one_cluster(tmp_path: Path) -> None:
    postgresql.require()
    block = sh_block("HYPERPOD_LOCAL_STORE=postgresql")
    database = f"hp_readme_{os.getpid()}_{free_port()}"
    script = (
        "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\n"
        + block.replace("hyperpod_team", database)
        + "cat replica-4591.log\n"
    )
    ports = {str(port): free_port() for port in (4591, 4592, 4593)}
    try:
        result = shell(script, tmp_path, ports)
    finally:
        postgresql.drop(postgresql.url_of(database))
    assert result.returncode == 0, result.stdout + result.stderr
    # Made through the first replica, described by the third.
    assert '"ClusterArn": "arn:aws:sagemaker:us-east-1:123456789012:cluster/' in result.stdout
    assert re.search(r'^"(Creating|InService)"$', result.stdout, re.M), result.stdout
    assert f"serving the SageMaker HyperPod API at http://127.0.0.1:{ports['4591']}" in (
        result.stdout
    )

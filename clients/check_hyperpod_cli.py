"""The official HyperPod CLI (`hyp`, PyPI's sagemaker-hyperpod) against hyperpod-local:
`hyp list-cluster`, `hyp describe cluster` and `hyp update cluster --node-recovery`, their
output checked. Run by `make clients`; not part of `make test` (the CLI takes minutes to
install).

The server is started here, on a free loopback port with a manual clock and a data dir of
its own. `hyp` gets AWS_ENDPOINT_URL (SageMaker, STS and anything else it calls go to the
server), static credentials, an empty HOME, and a closed loopback proxy for everything
else, so nothing reaches AWS (its telemetry request to S3 fails at once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import boto3

HERE = Path(sys.executable).parent
ROLE = "arn:aws:iam::123456789012:role/HyperPodExecutionRole"


def serve(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            *(str(HERE / "hyperpod-local"), "serve", "--port", "0", "--clock", "manual"),
            *("--data-dir", str(data_dir)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "export AWS_ENDPOINT_URL_SAGEMAKER=" in line:
            return proc, line.strip().split("=", 1)[1]
    raise SystemExit(f"the server did not start: exit {proc.wait()}")


def hyp(binary: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [binary, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    print(f"$ hyp {' '.join(args)}  (exit {done.returncode})")
    print(done.stdout)
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"hyp {' '.join(args)} failed")
    return done.stdout


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def run(binary: str) -> None:
    with tempfile.TemporaryDirectory(prefix="hyperpod-clients-") as scratch:
        root = Path(scratch)
        proc, url = serve(root / "data")
        try:
            env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
            (root / "home").mkdir()
            env.update(
                HOME=str(root / "home"),
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT_URL=url,
                AWS_ENDPOINT_URL_SAGEMAKER=url,
                AWS_ENDPOINT_URL_STS=url,
                AWS_EC2_METADATA_DISABLED="true",
                HTTPS_PROXY="http://127.0.0.1:9",
                HTTP_PROXY="http://127.0.0.1:9",
                NO_PROXY="127.0.0.1,localhost",
            )
            check_against(binary, env, url)
        finally:
            proc.terminate()
            proc.wait(30)


def check_against(binary: str, env: dict[str, str], url: str) -> None:
    sm: Any = boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    group = {"InstanceType": "ml.c5.xlarge", "ExecutionRole": ROLE}
    sm.create_cluster(
        ClusterName="hyp-slurm",
        InstanceGroups=[{"InstanceGroupName": "workers", "InstanceCount": 2, **group}],
    )
    # Time moves on until it is InService (the manual clock's settle, in the admin API).
    urllib.request.urlopen(
        urllib.request.Request(f"{url}/_hyperpod/clock/settle", method="POST"), timeout=60
    ).close()
    # A cluster with instances is looked up in its EKS cluster, which no local server has:
    # an EKS cluster still Creating (no instances yet) is listed from SageMaker alone.
    sm.create_cluster(
        ClusterName="hyp-eks",
        InstanceGroups=[{"InstanceGroupName": "workers", "InstanceCount": 1, **group}],
        NodeProvisioningMode="Continuous",
        Orchestrator={"Eks": {"ClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/e"}},
    )

    listed = json.loads(hyp(binary, env, "list-cluster"))
    rows = {entry["Cluster"]: entry["Instances"] for entry in listed}
    check("hyp-eks" in rows, "hyp list-cluster lists the EKS cluster")
    check(rows["hyp-eks"][0]["TotalNodes"] == 0, "with its 0 nodes while it is Creating")

    described = hyp(binary, env, "describe", "cluster", "hyp-slurm")
    check("Cluster Details for: hyp-slurm" in described, "hyp describe cluster names it")
    check("Status: InService" in described, "and shows its status")
    check('"InstanceGroupName": "workers"' in described, "and its instance group")

    before = sm.describe_cluster(ClusterName="hyp-slurm")["NodeRecovery"]
    check(before == "Automatic", "NodeRecovery starts Automatic")
    updated = hyp(
        binary, env, "update", "cluster", "--cluster-name", "hyp-slurm", "--node-recovery", "None"
    )
    check("Cluster hyp-slurm has been updated" in updated, "hyp update cluster says so")
    after = sm.describe_cluster(ClusterName="hyp-slurm")["NodeRecovery"]
    check(after == "None", "and the cluster's NodeRecovery is None")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hyp", required=True, help="the hyp executable to check")
    run(parser.parse_args().hyp)
    print("the HyperPod CLI works against hyperpod-local")


if __name__ == "__main__":
    main()

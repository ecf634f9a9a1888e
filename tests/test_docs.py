"""The README's examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import ServerProcess

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


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


def test_the_readme_opens_with_the_two_commands() -> None:
    opening = README.read_text().splitlines()[:6]
    assert any(line.startswith("make run") for line in opening)
    assert any(line.startswith("make test") for line in opening)


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


def test_the_mock_example_runs_without_a_server(tmp_path: Path) -> None:
    result = run(python_blocks()[1], tmp_path)
    assert result.returncode == 0, result.stderr

"""Where a node's things are: under the data dir, one directory an instance.

    <data dir>/nodes/<instance id>/
        root/        the root volume (inside the node: /tmp, /var/tmp, /var/log, /home, /opt/ml)
        secondary/   the secondary volume (inside the node: /opt/sagemaker)
        control/     the agent's: node.json, go, status.json, heartbeat, agent.pid, node.log

The root volume's `opt/ml/config` holds the files HyperPod writes for lifecycle scripts,
`opt/ml/lifecycle-scripts` the group's scripts, `opt/ml/faults` what a script reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Inside a confined node, where each part of the root volume is.
# (The machine's /root stays as it is, read-only: an interpreter may live there.)
ROOT_MOUNTS = ("tmp", "var/tmp", "var/log", "home", "opt/ml")
HOME = "home/hyperpod"
SECONDARY_MOUNT = "/opt/sagemaker"
CONFIG = "opt/ml/config"
SCRIPTS = "opt/ml/lifecycle-scripts"
FAULTS = "opt/ml/faults"


@dataclass(frozen=True, slots=True)
class NodeDirs:
    base: Path

    @classmethod
    def of(cls, data_dir: Path, instance_id: str) -> NodeDirs:
        return cls(nodes_dir(data_dir) / instance_id)

    @property
    def instance_id(self) -> str:
        return self.base.name

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def secondary(self) -> Path:
        return self.base / "secondary"

    @property
    def control(self) -> Path:
        return self.base / "control"

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def scripts(self) -> Path:
        return self.root / SCRIPTS

    @property
    def faults(self) -> Path:
        return self.root / FAULTS

    # The agent's files.
    @property
    def node_file(self) -> Path:
        return self.control / "node.json"

    @property
    def go_file(self) -> Path:
        return self.control / "go"

    @property
    def status_file(self) -> Path:
        return self.control / "status.json"

    @property
    def heartbeat_file(self) -> Path:
        return self.control / "heartbeat"

    @property
    def pid_file(self) -> Path:
        return self.control / "agent.pid"

    @property
    def log_file(self) -> Path:
        return self.control / "node.log"

    def make_root(self) -> None:
        for part in (*ROOT_MOUNTS, HOME, CONFIG, SCRIPTS, FAULTS):
            (self.root / part).mkdir(parents=True, exist_ok=True)

    def make(self) -> None:
        self.make_root()
        self.secondary.mkdir(parents=True, exist_ok=True)
        self.control.mkdir(parents=True, exist_ok=True)


def nodes_dir(data_dir: Path) -> Path:
    return data_dir / "nodes"


def tail(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """The last lines of a log file (empty if it is not there)."""
    try:
        with path.open("rb") as file:
            file.seek(0, 2)
            size = file.tell()
            file.seek(max(0, size - max_bytes))
            data = file.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    return text[-lines:]

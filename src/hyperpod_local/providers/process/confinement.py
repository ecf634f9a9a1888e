"""How a node's lifecycle script is confined.

- `bubblewrap` (when `bwrap` is installed and works here): the script sees the machine
  read-only, with the node's directories bound where HyperPod has them (/opt/sagemaker,
  /opt/ml, /tmp, /var/tmp, /var/log, /home), in its own PID namespace (nothing it starts
  outlives the sandbox) and with the node's hostname.
- `user`: no bubblewrap, but the server runs as root: the script runs as a user of its own
  node (a uid no other node has), so it can write only its node's directories and whatever
  the machine leaves writable to everyone.
- `none`: the script runs as the server's user; environment variables name its directories.

Under every kind the script's processes are bounded (RLIMIT_NPROC), and the variables
HYPERPOD_LOCAL_OPT_SAGEMAKER and HYPERPOD_LOCAL_ROOT_VOLUME name the secondary volume and the
root of the root volume as the script sees them (/opt/sagemaker and / when confined).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from hyperpod_local.providers.process.layout import (
    HOME,
    ROOT_MOUNTS,
    SCRIPTS,
    SECONDARY_MOUNT,
    NodeDirs,
)

KINDS = ("auto", "bubblewrap", "user", "none")
# Scripts of a root server run as uids from here on, one a node.
NODE_UID_BASE = 200_000
_NODE_UIDS = 100_000
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConfinementError(ValueError):
    """The confinement asked for cannot be had on this machine."""


def choose(requested: str, data_dir: Path) -> str:
    """The confinement in force: the one asked for, or for `auto` the strongest that works."""
    if requested not in KINDS:
        raise ConfinementError(f"unknown confinement {requested!r}; known: {', '.join(KINDS)}")
    if shutil.which("prlimit") is None:
        raise ConfinementError(
            "--provider process bounds each node's processes with prlimit (util-linux), "
            "which is not installed"
        )
    root = os.geteuid() == 0
    if requested in ("bubblewrap", "auto"):
        problem = bubblewrap_problem()
        if problem is None:
            return "bubblewrap"
        if requested == "bubblewrap":
            raise ConfinementError(f"--confinement bubblewrap: {problem}")
    closed = _closed_folder(data_dir)
    setpriv = shutil.which("setpriv") is not None
    if requested == "user":
        if not root:
            raise ConfinementError("--confinement user needs the server to run as root")
        if not setpriv:
            raise ConfinementError("--confinement user needs setpriv (util-linux)")
        if closed is not None:
            raise ConfinementError(
                f"--confinement user: a node's user cannot reach its directories, {closed} "
                "is closed to other users (chmod o+x it, or install bubblewrap)"
            )
    if requested in ("user", "auto") and root and setpriv and closed is None:
        return "user"
    return "none"


def _closed_folder(data_dir: Path) -> Path | None:
    """The first folder on the way to the data dir that other users cannot pass through."""
    for folder in reversed([data_dir.resolve(), *data_dir.resolve().parents]):
        try:
            if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
                return folder
        except OSError:
            return folder
    return None


def bubblewrap_problem() -> str | None:
    """Why bubblewrap cannot confine scripts here (None: it can)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed (Debian package bubblewrap)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    probe = [bwrap, *_sandbox_base(), "--unshare-pid", "--die-with-parent", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as error:
        return f"bwrap does not run here: {error}"
    if done.returncode != 0:
        return f"bwrap does not work here: {done.stderr.strip() or done.returncode}"
    return None


def describe(kind: str) -> str:
    return {
        "bubblewrap": "bubblewrap (each node's scripts see only their own directories "
        "writable, at /opt/sagemaker, /opt/ml, /tmp, /var/tmp, /var/log and /home"
        + (", as a user of their own)" if os.geteuid() == 0 else ")"),
        "user": "a user of each node's own (no bubblewrap: install the Debian package "
        "bubblewrap to confine scripts to their node's directories)",
        "none": "none: scripts run as the server's user"
        + (", root, with no bound on their processes" if os.geteuid() == 0 else "")
        + " (install the Debian package bubblewrap to confine them)",
    }[kind]


def node_uid(instance_id: str) -> int | None:
    """The uid a node's scripts run as: one of its own when the server is root."""
    if os.geteuid() != 0:
        return None
    return NODE_UID_BASE + int(instance_id[2:12] or "0", 16) % _NODE_UIDS


def _sandbox_base() -> list[str]:
    return ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/opt"]


def script_command(
    kind: str, dirs: NodeDirs, argv: list[str], hostname: str, uid: int | None, nproc: int
) -> list[str]:
    """The command that runs `argv` (a script, relative to the scripts folder) confined: in
    the sandbox (bubblewrap), as the node's own user (a root server's), with at most `nproc`
    processes."""
    bounded = ["prlimit", f"--nproc={nproc}:{nproc}", "--", *argv]
    if uid is not None and kind != "none":
        # The sandbox is built as root (so the data dir's folders need not be open to
        # others); the script then runs as its node's user, with no way back to root.
        bounded = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            *bounded,
        ]
    if kind != "bubblewrap":
        return bounded
    bwrap = shutil.which("bwrap") or "bwrap"
    binds: list[str] = ["--bind", str(dirs.secondary), SECONDARY_MOUNT]
    for part in ROOT_MOUNTS:
        binds += ["--bind", str(dirs.root / part), f"/{part}"]
    return [
        bwrap,
        *_sandbox_base(),
        *binds,
        "--chdir",
        f"/{SCRIPTS}",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        hostname,
        "--die-with-parent",
        "--new-session",
        "--",
        *bounded,
    ]


def script_cwd(kind: str, dirs: NodeDirs) -> Path:
    return dirs.scripts


def script_environment(kind: str, dirs: NodeDirs, extra: dict[str, str]) -> dict[str, str]:
    """A script's environment: the node's paths as the script sees them, AWS_* settings of
    the server (the endpoints and credentials of the node's role), and `extra`."""
    confined = kind == "bubblewrap"
    root = Path("/") if confined else dirs.root
    env = {key: value for key, value in os.environ.items() if key.startswith("AWS_")}
    cli_dir = str(Path(sys.executable).parent)  # hyperpod-local report-fault
    env.update(
        PATH=f"{_PATH}:{cli_dir}",
        HOME=str(root / HOME),
        TMPDIR=str(root / "tmp"),
        LANG="C.UTF-8",
        HYPERPOD_LOCAL_ROOT_VOLUME=str(root),
        HYPERPOD_LOCAL_OPT_SAGEMAKER=SECONDARY_MOUNT if confined else str(dirs.secondary),
        SAGEMAKER_RESOURCE_CONFIG_PATH=str(root / "opt/ml/config/resource_config.json"),
        HYPERPOD_LOCAL_FAULTS_DIR=str(root / "opt/ml/faults"),
        **extra,
    )
    return env


def chown_tree(path: Path, uid: int | None) -> None:
    """Give a node's volume to its user (a root server's nodes each have their own)."""
    if uid is None:
        return
    for folder, dirnames, filenames in os.walk(path):
        os.chown(folder, uid, uid)
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)

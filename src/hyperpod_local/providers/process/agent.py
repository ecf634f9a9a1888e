"""The node agent: `hyperpod-local agent CONTROL_DIR`, one process a node, started by the
server's process provider.

It heartbeats (touches control/heartbeat every `HeartbeatInterval` seconds) for as long as
it lives, and ends with the server that started it. Once the provider has said go (the
node's hostname and IP are known, the files HyperPod writes are in place), it fetches the
group's lifecycle scripts and runs OnCreate in the node, confined, with its output in the
node's log (control/node.log), and writes the outcome to control/status.json. A script that
runs past `ScriptTimeout` is killed and fails. After a reboot (a new agent, the same
directories), a script that has run is not run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

from hyperpod_local.providers.process import confinement
from hyperpod_local.providers.process.layout import NodeDirs, tail
from hyperpod_local.providers.process.processes import count_user_processes, kill_nodes
from hyperpod_local.providers.process.sources import FetchError, fetch

FINAL = ("Succeeded", "Failed")
TAIL_LINES = 5
# In the root volume: the script's exit code, written by the keeper it runs under.
EXIT_FILE = "opt/ml/.lifecycle-exit"
_KEEPER = 'f="$1"; shift; "$@"; echo "$?" > "$f"; exec sleep infinity'


def read_status(dirs: NodeDirs) -> dict[str, Any]:
    try:
        return dict(json.loads(dirs.status_file.read_text()))
    except (OSError, ValueError):
        return {}


def write_json(path: Path, value: Any) -> None:
    scratch = path.with_name(path.name + ".new")
    scratch.write_text(json.dumps(value, indent=2))
    os.replace(scratch, path)


class Agent:
    def __init__(self, control: Path) -> None:
        self.dirs = NodeDirs(control.resolve().parent)
        self.config: dict[str, Any] = json.loads(self.dirs.node_file.read_text())
        self.stop = threading.Event()
        self.parent = os.getppid()
        self.script: subprocess.Popen[bytes] | None = None
        self.log: IO[str] = self.dirs.log_file.open("a", buffering=1)

    def say(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.log.write(f"[{stamp} hyperpod-local agent] {line}\n")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        self.dirs.pid_file.write_text(str(os.getpid()))
        beating = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        beating.start()
        self.say(f"agent {os.getpid()} up on {self.dirs.instance_id}")
        try:
            if read_status(self.dirs).get("State") not in FINAL:
                go = self._wait_for_go()
                if go is not None:
                    self._lifecycle(go)
            self.stop.wait()
        finally:
            self._end_script()
            self.say(f"agent {os.getpid()} stopping")
        return 0

    def _heartbeat(self) -> None:
        interval = float(self.config.get("HeartbeatInterval", 1.0))
        while not self.stop.is_set():
            self.dirs.heartbeat_file.touch()
            if os.getppid() != self.parent:
                # The server is gone: so is the node.
                self.stop.set()
                return
            self.stop.wait(interval)

    def _wait_for_go(self) -> dict[str, Any] | None:
        while not self.stop.is_set():
            try:
                return dict(json.loads(self.dirs.go_file.read_text()))
            except (OSError, ValueError):
                self.stop.wait(0.05)
        return None

    def _lifecycle(self, go: dict[str, Any]) -> None:
        started = time.time()
        write_json(self.dirs.status_file, {"State": "Running", "StartedAt": started})
        lifecycle = go.get("LifeCycleConfig", self.config.get("LifeCycleConfig")) or {}
        on_create = lifecycle.get("OnCreate")
        if not on_create or not lifecycle.get("SourceS3Uri"):
            self._finish("Succeeded", None, "no lifecycle script", started, [])
            return
        try:
            source = fetch(lifecycle["SourceS3Uri"], self.dirs.scripts, self.config["ScriptsFrom"])
        except FetchError as error:
            self.say(str(error))
            self._finish("Failed", None, str(error), started, [])
            return
        self.say(f"lifecycle scripts from {source}")
        script = self.dirs.scripts / on_create
        if not script.is_file():
            message = f"{on_create} is not among the scripts of {lifecycle['SourceS3Uri']}"
            self.say(message)
            self._finish("Failed", None, message, started, [])
            return
        uid = self.config.get("Uid")
        confinement.chown_tree(self.dirs.scripts, uid)
        self.say(f"running {on_create} ({self.config['Confinement']})")
        code, output = self._run_script(on_create, script, go, uid)
        if self.stop.is_set():
            # Stopped with the node (or its server): no outcome; a new agent on these
            # directories runs the script again.
            self.say(f"{on_create} stopped with the agent")
            return
        timeout = float(self.config["ScriptTimeout"])
        if code is None:
            message = f"timed out after {timeout:g} s and was killed"
            self.say(f"{on_create} {message}")
            self._finish("Failed", None, message, started, output)
        else:
            self.say(f"{on_create} exited with {code}")
            self._finish("Succeeded" if code == 0 else "Failed", code, None, started, output)

    def _run_script(
        self, name: str, script: Path, go: dict[str, Any], uid: int | None
    ) -> tuple[int | None, list[str]]:
        """The script's exit code (None: killed at its timeout) and its last lines."""
        if script.read_bytes()[:2] == b"#!":
            script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            argv = [f"./{name}"]
        else:
            argv = ["/bin/bash", name]
        kind = self.config["Confinement"]
        limit = int(self.config["MaxProcesses"])
        if uid is None or kind == "none":
            # One uid for the server and its nodes: the bound is over what it runs already.
            limit += count_user_processes(os.getuid())
        # The script runs under a keeper that writes its exit code and then stays: what the
        # script left running (a node-side agent, a daemon) lives on in the node, sandbox
        # and all, until the node ends.
        exit_file = self.dirs.root / EXIT_FILE
        exit_file.unlink(missing_ok=True)
        seen = f"/{EXIT_FILE}" if kind == "bubblewrap" else str(exit_file)
        keeper = ["/bin/sh", "-c", _KEEPER, "lifecycle", seen, *argv]
        command = confinement.script_command(
            kind, self.dirs, keeper, go.get("Hostname") or "node", uid, limit
        )
        env = confinement.script_environment(
            kind,
            self.dirs,
            {
                "HYPERPOD_LOCAL_NODE": self.dirs.instance_id,
                "HYPERPOD_LOCAL_INSTANCE_ID": self.dirs.instance_id,
                "HYPERPOD_LOCAL_INSTANCE_GROUP": str(self.config.get("InstanceGroupName", "")),
                "HYPERPOD_LOCAL_CLUSTER_NAME": str(self.config.get("ClusterName", "")),
                "HYPERPOD_LOCAL_HOSTNAME": str(go.get("Hostname") or ""),
                "HYPERPOD_LOCAL_PRIVATE_IP": str(go.get("PrivateIp") or ""),
            },
        )
        self.log.flush()
        offset = self.dirs.log_file.stat().st_size
        self.script = subprocess.Popen(
            command,
            cwd=confinement.script_cwd(kind, self.dirs),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + float(self.config["ScriptTimeout"])
        code: int | None = None
        while not self.stop.is_set():
            code = _exit_code(exit_file)
            if code is None and (ended := self.script.poll()) is not None:
                # The keeper itself ended (killed): its code, unless the script's came first.
                code = _exit_code(exit_file)
                code = ended if code is None else code
            if code is not None or time.monotonic() > deadline:
                break
            self.stop.wait(0.05)
        if code is None:
            self._end_script()
        return code, _script_tail(self.dirs.log_file, offset)

    def _end_script(self) -> None:
        """The script and everything it started (a daemon that left its session too)."""
        if self.script is not None and self.script.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.script.pid, signal.SIGKILL)
            self.script.wait()
        kill_nodes([self.dirs.instance_id], spare=os.getpid())

    def _finish(
        self,
        state: str,
        code: int | None,
        message: str | None,
        started: float,
        output: list[str],
    ) -> None:
        write_json(
            self.dirs.status_file,
            {
                "State": state,
                "ExitCode": code,
                "Message": message,
                "StartedAt": started,
                "EndedAt": time.time(),
                "Tail": output,
            },
        )


def _exit_code(path: Path) -> int | None:
    """The code the keeper wrote once the script ended (None: not yet, or half written)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if not text.endswith("\n"):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _script_tail(path: Path, offset: int) -> list[str]:
    """The script's own last lines: the log from where it started."""
    try:
        with path.open("rb") as file:
            file.seek(0, 2)
            file.seek(max(offset, file.tell() - 64 * 1024))
            data = file.read()
    except OSError:
        return []
    lines = [line for line in data.decode("utf-8", errors="replace").splitlines() if line]
    return lines[-TAIL_LINES:]


def main(control: Path) -> int:
    return Agent(control).run()


__all__ = ["FINAL", "main", "read_status", "tail", "write_json"]

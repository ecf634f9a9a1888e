"""Why the server cannot start: an error raised where the cause is known, so `serve` can
print it as one line and exit, while an error nobody foresaw stays a traceback."""

from __future__ import annotations

import errno
from pathlib import Path


class StartupError(Exception):
    """One line for the operator: the path, what is wrong with it, and what to do."""


def os_failure(action: str, path: Path, error: OSError) -> StartupError:
    """`cannot <action> <path>: <the system's reason>; <what to do>`: the operator sees the
    path the server tried, not the one in a traceback that may name a part of it."""
    reason = error.strerror or str(error)
    advice = _ADVICE.get(error.errno or 0)
    return StartupError(f"cannot {action} {path}: {reason}" + (f"; {advice}" if advice else ""))


_ADVICE = {
    errno.EISDIR: "it must be a file: move the directory out of the way",
    errno.ENOTDIR: "a part of that path is a file, not a directory",
    errno.ENOSPC: "free some space on its disk and start again",
    errno.EDQUOT: "free some space (the disk quota is used up) and start again",
    errno.EACCES: "check its permissions and those of the directories above it",
    errno.EPERM: "check its permissions and those of the directories above it",
    errno.EROFS: "the file system is read-only: choose another --data-dir",
    errno.ENOENT: "check the path",
}

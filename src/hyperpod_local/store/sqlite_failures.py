"""Why the data dir's SQLite file cannot be used, in the one line a server that cannot start
prints: SQLite's result codes, and what to do about each."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.exc import DatabaseError

from hyperpod_local.startup import StartupError
from hyperpod_local.store.errors import Busy

# What to do about a data dir's SQLite file that fails with one of these primary result
# codes; sqlite's own message says what is wrong.
_SQLITE_BUSY, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 5, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26
_RESTORE = "restore it from a backup, or move it away to start with an empty store"
_FREE_SPACE = "free some space on its disk and start again"
_LOCKED = "another program holds it (a sqlite3 shell, a backup?): let it finish, then start again"
_SQLITE_ADVICE = {
    _SQLITE_BUSY: _LOCKED,
    _SQLITE_READONLY: "make it and its data dir writable by the user running the server",
    _SQLITE_IOERR: "check the disk and its file system",
    _SQLITE_CORRUPT: _RESTORE,
    _SQLITE_FULL: _FREE_SPACE,
    _SQLITE_CANTOPEN: "it must be a file in a directory the server can write",
    _SQLITE_NOTADB: _RESTORE,
}
# Less free space than this on the data dir's disk is why sqlite failed to write there.
_NEARLY_FULL_BYTES = 1024 * 1024


def unusable_database(error: BaseException, path: Path) -> StartupError | None:
    """The one line that says why the data dir's database cannot be used, or None when
    `error` is not about the file (a bug, to be seen whole)."""
    if isinstance(error, Busy):  # what write() and read() make of SQLITE_BUSY
        return StartupError(f"cannot use the database {path}: {error}; {_LOCKED}")
    if isinstance(error, DatabaseError):
        code = getattr(error.orig, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in _SQLITE_ADVICE:
            return None
        primary = code & 0xFF  # the extended code's low byte
        advice = _SQLITE_ADVICE[primary]
        if primary == _SQLITE_CANTOPEN and path.is_dir():
            # sqlite says only "unable to open database file".
            return StartupError(
                f"cannot open the database {path}: it is a directory; it must be a file: "
                "move the directory out of the way"
            )
        if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN) and _nearly_full(path.parent):
            # sqlite says "full" only when the database itself cannot grow; when its
            # shared-memory or journal file cannot, it says "disk I/O error".
            advice = f"its disk is full: {_FREE_SPACE}"
        return StartupError(f"cannot use the database {path}: {error.orig}; {advice}")
    return None


def _nearly_full(directory: Path) -> bool:
    try:
        disk = os.statvfs(directory)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return disk.f_bavail * disk.f_frsize < _NEARLY_FULL_BYTES

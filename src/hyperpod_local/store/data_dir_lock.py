"""One process per data dir: two engines would run the same steps twice, and the response
cache trusts that every write to the store is its own process's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import ModuleType

from hyperpod_local.startup import StartupError, os_failure

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = "hyperpod.lock"


class DataDirInUse(StartupError):
    pass


class DataDirLock:
    """An exclusive flock on a file in the data dir, held until `release` or the process
    ends (the kernel drops it even on SIGKILL, so a crash leaves nothing to clean up)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None
        if fcntl is None:  # no flock here (Windows): nothing is locked, nor cached
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise os_failure("open the lock file", self.path, error) from error
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                raise DataDirInUse(
                    f"the data dir {data_dir} is in use by another hyperpod-local "
                    f"(pid {holder}); stop it or choose another --data-dir"
                ) from None
            try:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
            except OSError as error:  # a full disk, most likely
                raise os_failure("write the lock file", self.path, error) from error
        except BaseException:
            os.close(fd)  # closing the file drops the lock, if it was taken
            raise
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

"""Server settings: every one has a flag and a HYPERPOD_LOCAL_* environment variable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4577
DEFAULT_DATA_DIR = Path(".hyperpod-local")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    max_instances_per_cluster: int = 100_000
    seed: int | None = None

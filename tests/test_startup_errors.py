"""A server that cannot start says why in one line on stderr and exits non-zero: never a
traceback. Each case runs the real command line on a data dir broken one way."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperpod_local.store.database import Store
from tests.support import CLI

FIXTURES = Path(__file__).parent / "fixtures" / "schemas"

CREDENTIALS = "AKIDSTARTUPTEST secret-key 123456789012\n"


def refused(data_dir: Path, *args: str, prefix: tuple[str, ...] = ()) -> str:
    """Run `serve` on `data_dir`; assert it fails with one line and no traceback; the line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERPOD_LOCAL_")}
    done = subprocess.run(
        [*prefix, CLI, "serve", "--port", "0", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), done.stderr
    assert "serving" not in done.stdout
    print(lines[0])  # what the operator reads, for `pytest -s`
    return lines[0]


def made(data_dir: Path) -> Path:
    """A data dir with a real store in it, as a server leaves it; its database file."""
    Store.open(data_dir).close()
    return data_dir / "hyperpod.db"


def strict(tmp_path: Path, text: str = CREDENTIALS) -> tuple[str, ...]:
    credentials = tmp_path / "credentials"
    credentials.write_text(text)
    return ("--auth", "strict", "--credentials", str(credentials))


def _as_plain_user() -> tuple[str, ...]:
    """How to run the server so that file modes hold: root reads and writes anything
    unless it gives up the capabilities that let it."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root ignores file modes, and setpriv is not here to stop it")
    prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
    if subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("root ignores file modes, and may not give that up here")
    return prefix


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "hyperpod.db").write_bytes(os.urandom(8192))
    line = refused(data_dir)
    assert f"{data_dir / 'hyperpod.db'}: file is not a database" in line
    assert "restore it from a backup" in line


@pytest.mark.parametrize("keep", [100, 0.5], ids=["header", "half"])
def test_a_truncated_database(tmp_path: Path, keep: float) -> None:
    database = made(tmp_path / "data")
    whole = database.read_bytes()
    database.write_bytes(whole[: int(keep if keep >= 1 else len(whole) * keep)])
    line = refused(tmp_path / "data")
    assert str(database) in line
    assert "malformed" in line or "not a database" in line


def test_a_corrupt_page_that_only_the_first_reads_touch(tmp_path: Path) -> None:
    database = made(tmp_path / "data")
    with sqlite3.connect(database) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'settings'")
        page = root.fetchone()[0]
    conn.close()
    with database.open("r+b") as file:
        # A table leaf page (type 13) whose cell count and offsets are nonsense: the schema
        # reads fine, the settings table does not.
        file.seek((page - 1) * page_size)
        file.write(b"\x0d" + b"\xff" * (page_size - 1))
    line = refused(tmp_path / "data")
    assert f"cannot use the database {database}: database disk image is malformed" in line


def test_a_database_the_server_may_not_write(tmp_path: Path) -> None:
    database = made(tmp_path / "data")
    database.chmod(0o444)
    # sqlite opens it read-only without a word: the server would start, and fail to write.
    line = refused(tmp_path / "data", prefix=_as_plain_user())
    assert f"cannot use the database {database}: attempt to write a readonly database" in line


def test_a_database_another_program_holds_locked(tmp_path: Path) -> None:
    database = made(tmp_path / "data")
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        line = refused(tmp_path / "data")  # after the busy timeout, 10 s
    finally:
        holder.close()
    assert f"cannot use the database {database}: database is locked" in line
    assert "another program" in line


def test_a_database_from_a_newer_release(tmp_path: Path) -> None:
    database = made(tmp_path / "data")
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    line = refused(tmp_path / "data")
    assert str(database) in line
    assert "newer" in line and "9999" in line


@pytest.mark.parametrize("name", ["hyperpod.db", "hyperpod.lock"])
def test_a_directory_where_a_file_belongs(tmp_path: Path, name: str) -> None:
    data_dir = tmp_path / "data"
    (data_dir / name).mkdir(parents=True)
    line = refused(data_dir)
    assert str(data_dir / name) in line
    assert "directory" in line


def test_an_admin_token_that_is_a_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "admin-token").mkdir(parents=True)
    line = refused(data_dir, *strict(tmp_path))
    assert str(data_dir / "admin-token") in line
    assert "directory" in line


def test_a_data_dir_whose_parent_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    data_dir = tmp_path / "a-file" / "data"
    line = refused(data_dir)
    assert f"cannot create the data dir {data_dir}" in line
    assert "Not a directory" in line


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    line = refused(tmp_path / "data")
    assert f"cannot use the data dir {tmp_path / 'data'}: it is a file" in line


# The credentials file: read, and refused, before the data dir exists.


def test_an_unreadable_credentials_file(tmp_path: Path) -> None:
    options = strict(tmp_path)
    (tmp_path / "credentials").chmod(0)
    line = refused(tmp_path / "data", *options, prefix=_as_plain_user())
    assert f"cannot read the credentials file {tmp_path / 'credentials'}" in line
    assert "Permission denied" in line
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("make", "says"), [("mkdir", "Is a directory"), ("", "No such file")])
def test_a_credentials_path_that_is_no_file(tmp_path: Path, make: str, says: str) -> None:
    options = strict(tmp_path)
    (tmp_path / "credentials").unlink()
    if make:
        (tmp_path / "credentials").mkdir()
    line = refused(tmp_path / "data", *options)
    assert f"cannot read the credentials file {tmp_path / 'credentials'}: {says}" in line
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"\xff\xfe not text\n", "not UTF-8"),
        (b"AKIDSTARTUPTEST only-two-fields\n", ":1: expected"),
        (b"# nothing but a comment\n", "no credentials"),
    ],
    ids=["binary", "malformed", "empty"],
)
def test_a_bad_credentials_file_leaves_no_data_dir(tmp_path: Path, text: bytes, says: str) -> None:
    options = strict(tmp_path)
    (tmp_path / "credentials").write_bytes(text)
    line = refused(tmp_path / "data", *options)
    assert str(tmp_path / "credentials") in line
    assert says in line
    assert not (tmp_path / "data").exists()


# A full disk: a tiny tmpfs, where this process may mount one (root, outside most sandboxes).


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Write a file that takes all the space on `disk` but about `leave` bytes."""
    descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(descriptor)
    if leave:
        os.truncate(disk / "filler", max(0, (disk / "filler").stat().st_size - leave))


@pytest.mark.parametrize("leave", [0, 16 * 1024], ids=["no-room", "room-for-the-lock-only"])
def test_a_full_disk(tiny_disk: Path, leave: int) -> None:
    fill(tiny_disk, leave)
    line = refused(tiny_disk / "data")
    assert str(tiny_disk / "data") in line
    assert "free some space" in line


# Only what is foreseen is a line: anything else is a bug, and its traceback is kept.


def test_an_unforeseen_error_is_not_made_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from hyperpod_local import backend
    from hyperpod_local.cli.commands import main

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(backend.Backend, "__init__", broken)
    # serve installs its own SIGINT and SIGTERM handlers: pytest gets its own back.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "data")])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert isinstance(result.exception, RuntimeError), result.output
    assert result.exit_code == 1


def test_a_database_cut_to_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    database = made(data_dir)
    database.write_bytes(b"")
    line = refused(data_dir)
    assert str(database) in line and "empty (0 bytes)" in line
    assert database.stat().st_size == 0  # not taken for a new store


def test_a_schema_the_upgrade_cannot_make_whole(tmp_path: Path) -> None:
    # A store a release at revision 0002 made, and a table no release made.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "hyperpod.db")
    with conn:
        conn.executescript((FIXTURES / "0002-5777f74.sql").read_text())
        conn.execute("CREATE TABLE stranger (id INTEGER PRIMARY KEY)")
    conn.close()
    line = refused(data_dir)
    assert "cannot upgrade the store" in line and "stranger" in line


# --store ---------------------------------------------------------------------------------------


def test_a_store_url_of_another_database_is_refused(tmp_path: Path) -> None:
    line = refused(tmp_path / "data", "--store", "mysql+pymysql://root@127.0.0.1/test")
    assert line == (
        "Error: cannot use the store 'mysql+pymysql://root@127.0.0.1/test': hyperpod-local "
        "keeps its store in SQLite or PostgreSQL (postgresql+psycopg://USER@HOST:PORT/DATABASE), "
        "not mysql"
    )


def test_a_store_url_that_is_not_a_url_is_refused(tmp_path: Path) -> None:
    line = refused(tmp_path / "data", "--store", "not a url")
    assert line.startswith("Error: cannot use the store 'not a url': ")


def test_a_postgresql_that_is_not_there_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = refused(
        tmp_path / "data", "--store", f"postgresql+psycopg://me:secret@127.0.0.1:{port}/x"
    )
    assert line.startswith(
        f"Error: cannot use the store at postgresql+psycopg://me:***@127.0.0.1:{port}/x: "
    ), line
    assert "secret" not in line and "Connection refused" in line


def test_process_nodes_cannot_share_a_store(tmp_path: Path) -> None:
    line = refused(
        tmp_path / "data", "--store", "postgresql+psycopg://127.0.0.1/x", "--provider", "process"
    )
    assert line == (
        "Error: --provider process runs each node on the server that launched it, so it cannot "
        "share a --store with other servers; use --provider sim with --store"
    )

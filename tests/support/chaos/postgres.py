"""A throwaway Postgres cluster for one chaos scenario: ``initdb`` and ``pg_ctl`` on a free
port, stopped and started on demand, removed at the end.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import psycopg

from tests.support.chaos.processes import alive, wait_gone
from tests.support.services import free_port

PG_BIN_ENV = "REFRACT_TEST_PG_BIN"
PG_BIN_CANDIDATES = (Path("/usr/lib/postgresql/15/bin"),)


def pg_bin_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``$REFRACT_TEST_PG_BIN``, PostgreSQL 15's
    Debian directory, the newest ``/usr/lib/postgresql/*/bin``, else ``PATH``."""
    chosen = os.environ.get(PG_BIN_ENV)
    candidates = [Path(chosen)] if chosen else []
    candidates += list(PG_BIN_CANDIDATES)
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise RuntimeError(
        f"no PostgreSQL server binaries (initdb, pg_ctl) found; set {PG_BIN_ENV} to their directory"
    )


class PostgresCluster:
    """A Postgres cluster of one test's own: ``initdb`` into a fresh directory, served by
    ``pg_ctl`` on a free port of 127.0.0.1 with trust auth, ``fsync=off``, its socket in
    its own directory. It can be stopped and started again on the same port and data, and
    :meth:`destroy` removes it, whatever state it is in.

    The data lives in a directory of its own under the system temporary directory, not
    under pytest's (which is private to root: the ``postgres`` user could not reach it,
    and a concurrent pytest run resets its permissions); the server log is ``log_path``,
    written through a descriptor this process opens, so it lands in the test's directory.
    """

    def __init__(self, logdir: Path, *, os_user: str = "postgres") -> None:
        self.bin_dir = pg_bin_dir()
        self.logdir = logdir
        self.log_path = logdir / "postgres.log"
        # initdb refuses to run as root: run the server as an ordinary user then.
        self.os_user = os_user if os.geteuid() == 0 else None
        self.port = free_port()
        self.root: Path | None = None
        self._registered = False

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self._root() / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the server's unix socket is (never the machine's /var/run/postgresql)."""
        return self._root() / "socket"

    @property
    def admin_url(self) -> str:
        """The maintenance database, for creating databases."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("the cluster was not created")
        return self.root

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user, "--", *command]
        return command

    def _run(self, program: str, *args: str, timeout_s: float = 60) -> int:
        """Run a server program, its output appended to the log; its exit code."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
        }
        with self.log_path.open("ab") as log:
            log.write(f"--- {program} {' '.join(args)}\n".encode())
            log.flush()
            done = subprocess.run(
                self._command(program, *args),
                stdin=subprocess.DEVNULL,
                stdout=log,  # pg_ctl start without -l: the server keeps writing here
                stderr=subprocess.STDOUT,
                cwd=self._root(),
                env=env,
                timeout=timeout_s,
                check=False,
            )
        return done.returncode

    def create(self) -> Self:
        """Make the directories and run ``initdb``."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="refract-chaos-pg-"))
        if not self._registered:
            atexit.register(self.destroy)  # a crashed run still leaves nothing behind
            self._registered = True
        self.socket_dir.mkdir()
        if self.os_user is not None:
            for path in (self.root, self.socket_dir):
                shutil.chown(path, user=self.os_user, group=self.os_user)
        code = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        if code != 0:
            raise RuntimeError(f"initdb failed ({code}):\n{self.log_tail()}")
        return self

    def start(self, timeout_s: float = 30) -> Self:
        """Start the server on :attr:`port` and wait until it accepts connections."""
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                # fsync=off survives a server crash (the OS keeps the pages), which is all
                # the chaos tests cause; synchronous_commit=off would not: an immediate stop
                # would lose commits the API already answered for.
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
                "-c log_line_prefix='%m [%p] '",
            ]
        )
        code = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(int(timeout_s)),
            "-o",
            options,
            "start",
            timeout_s=timeout_s + 10,
        )
        if code != 0:
            raise RuntimeError(f"pg_ctl start failed ({code}):\n{self.log_tail()}")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "immediate", timeout_s: float = 30) -> None:
        """Stop the server (``pg_ctl stop -m <mode>``); a server that will not stop is
        killed with its whole process group."""
        if self.root is None or not self.data_dir.exists():
            return
        if self.postmaster_pid() is not None:
            self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "-t",
                str(int(timeout_s)),
                "stop",
                timeout_s=timeout_s + 10,
            )
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            wait_gone(pid, 10)

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, or None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None

    def create_database(self, name: str) -> str:
        """Create database ``name``; its SQLAlchemy URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        """Stop the server (immediately) and remove its data; idempotent."""
        if self.root is None:
            return
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.create().start()

    def __exit__(self, *_exc: object) -> None:
        self.destroy()

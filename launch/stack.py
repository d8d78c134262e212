"""Running the whole system on one machine: ``refract up`` and ``refract demo``.

With no Redis URL configured, an embedded redis-server is started first; the API
(gunicorn), a Celery worker and beat then run as child processes with the same settings,
so the embedded default takes exactly the production code path. The children are
supervised (:mod:`launch.supervisor`): one that exits is started again, with exponential
backoff. Stopping sends SIGTERM to every child's process group and waits, then stops the
embedded Redis, so no process or port is left behind.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from api.auth import is_loopback
from launch.embedded import EmbeddedRedis
from launch.signals import STOP_SIGNALS
from launch.supervisor import Backoff, Supervisor
from refract.core.errors import StartupRefused
from refract.core.settings import Settings
from refract.jobs.catalog import ALL_QUEUES
from refract.observability.multiproc import MULTIPROC_ENV, prepare_directory

# A command that refuses its configuration exits with this (sysexits' EX_CONFIG): the
# supervisor does not restart it, since the same configuration would be refused again.
EXIT_REFUSED = 78


def redact(url: str) -> str:
    """``url`` without its password, for printing."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


@dataclass
class LocalStack:
    """The API, a worker and beat as supervised children, plus an embedded Redis if needed.

    Startup fails fast: :meth:`start` raises if a child cannot be started and
    :meth:`wait_ready` if one exits before the stack is ready. From then on
    :meth:`run_until_signalled` supervises: a child that exits, for whatever reason
    (SIGKILL included), is started again after 1 s, doubling up to 30 s while it keeps
    failing (:class:`launch.supervisor.Backoff`), until Ctrl-C, SIGTERM or SIGHUP stops
    every child, then the embedded Redis. A child that refuses its configuration (exit
    :data:`EXIT_REFUSED`) is not restarted: the whole stack stops with its reason, rather
    than an API accepting jobs that no worker will ever take.

    The children's current pids: :meth:`pids` in-process; from outside, the supervisor's
    ``child_started`` events (``name=worker pid=N``; also ``child_exited``,
    ``child_restarted``), logged through structlog to ``refract up``'s stderr (text or
    JSON as configured) and, when ``quiet``, printed as ``refract: child_started
    name=worker pid=N restarts=0`` lines into ``state_dir/stack.log`` beside the
    children's own output. The latest ``child_started`` line for a name is its live pid.
    """

    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8000
    queues: str = ",".join(ALL_QUEUES)
    concurrency: int | None = None
    state_dir: Path = Path("var")
    quiet: bool = False
    backoff: Backoff = field(default_factory=Backoff)
    redis: EmbeddedRedis | None = None
    supervisor: Supervisor | None = None
    env: dict[str, str] = field(default_factory=dict)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def api_url(self) -> str:
        """Where the API listens."""
        return f"http://{self.host}:{self.port}"

    def describe(self) -> str:
        """One line saying which database, Redis, broker and model backend are in use."""
        redis_url = self.env.get("REFRACT_REDIS_URL", self.settings.redis_url or "unset")
        redis_label = redact(redis_url) + (" (embedded)" if self.redis else "")
        broker_label = redact(self.settings.broker_url) if self.settings.broker_url else redis_label
        return (
            f"refract: database={redact(self.settings.database_url)} redis={redis_label} "
            f"broker={broker_label} model backend={self.settings.backend} {self.auth_label}"
        )

    def _workers(self, base: list[str]) -> dict[str, list[str]]:
        """The worker children: ``worker``, or ``worker-1``..``worker-N`` (own hostnames)."""
        worker = [*base, "worker", "--queues", self.queues]
        if self.concurrency:
            worker += ["--concurrency", str(self.concurrency)]
        count = self.settings.worker_processes
        if count == 1:
            return {"worker": worker}
        return {
            f"worker-{n}": [*worker, "--hostname", f"refract{n}@%h"] for n in range(1, count + 1)
        }

    def start(self) -> None:
        """Start Redis if embedded, migrate the schema, then start the children."""
        from launch.migrate import upgrade

        self.env = dict(os.environ)
        self._front_door()
        self._check_port()
        # Every child records metrics into one directory, emptied for this run, so the
        # API's /metrics sums the worker's counters with its own.
        metrics_dir = self.env.get(MULTIPROC_ENV) or str(self.state_dir / "metrics")
        self.env[MULTIPROC_ENV] = str(prepare_directory(Path(metrics_dir)))
        if self.settings.redis_url is None:
            # Kept before it starts, so that an interrupt while it starts still stops it.
            self.redis = EmbeddedRedis(self.state_dir / "redis")
            self.redis.start()
            self.env["REFRACT_REDIS_URL"] = self.redis.url
        print(self.describe(), flush=True)
        upgrade(self.settings.database_url)
        base = [sys.executable, "-m", "launch.cli"]
        commands = {
            "api": [*base, "api", "--host", self.host, "--port", str(self.port)],
            **self._workers(base),
            "beat": [*base, "beat", "--state-dir", str(self.state_dir)],
        }
        output: dict[str, Any] = {}
        if self.quiet:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._log_file = (self.state_dir / "stack.log").open("ab")
            output = {"stdout": self._log_file, "stderr": subprocess.STDOUT}
        self.supervisor = Supervisor(
            commands,
            env=self.env,
            popen=output,
            backoff=self.backoff,
            echo=self._write_log_line if self.quiet else None,
            final_exit_codes=frozenset({EXIT_REFUSED}),
        )
        self.supervisor.start()

    def _check_port(self) -> None:
        """Refuse at once if the API's port is taken: gunicorn would retry and exit, and
        the supervisor restart it, for as long as the other process holds it."""
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                raise StartupRefused(
                    f"{self.host}:{self.port} is not free ({exc.strerror or exc}): stop what "
                    "holds it (an earlier `refract up`?) or choose another --port"
                ) from None

    def _front_door(self) -> None:
        """Auth off on loopback unless REFRACT_AUTH says otherwise (a developer's or a demo's
        stack), and one artifact-signing secret shared by every child."""
        if "REFRACT_AUTH" not in self.env and is_loopback(self.host):
            self.env["REFRACT_AUTH"] = "off"
        if not self.env.get("REFRACT_SECRET_KEY"):
            self.env["REFRACT_SECRET_KEY"] = self._stored_secret()
        if self.env.get("REFRACT_AUTH", self.settings.auth) == "off" and not is_loopback(self.host):
            raise StartupRefused(
                f"REFRACT_AUTH=off is allowed only on a loopback address, not {self.host}"
            )

    def _stored_secret(self) -> str:
        """The stack's signing secret, made once and kept in the state directory, so that
        artifact URLs handed out stay valid across restarts."""
        path = self.state_dir / "secret_key"
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        path.touch(mode=0o600)
        path.write_text(secret + "\n")
        return secret

    @property
    def auth_label(self) -> str:
        """How the API checks callers, for the banner."""
        if self.env.get("REFRACT_AUTH", self.settings.auth) == "off":
            return "auth: off (loopback only)"
        return "auth: API keys required"

    def _write_log_line(self, line: str) -> None:
        if self._log_file is not None:
            self._log_file.write(line.encode() + b"\n")
            self._log_file.flush()

    def pids(self) -> dict[str, int]:
        """The pid of each running child (``api``, ``worker``, ``beat``), by name."""
        return self.supervisor.pids() if self.supervisor is not None else {}

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the API says ready and a worker answers a ping."""
        from refract.jobs.celery_app import create_celery_app

        deadline = time.monotonic() + timeout_s
        api_ready = False
        while time.monotonic() < deadline:
            self.check_children()
            if not api_ready:
                try:
                    api_ready = httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    api_ready = False
            if api_ready:
                app = create_celery_app(
                    self.settings.model_copy(
                        update={
                            "redis_url": self.env.get("REFRACT_REDIS_URL", self.settings.redis_url)
                        }
                    )
                )
                try:
                    if app.control.ping(timeout=1.0):
                        return
                finally:
                    app.close()
            time.sleep(0.3)
        raise TimeoutError(f"the stack was not ready within {timeout_s:.0f}s")

    def check_children(self) -> None:
        """Raise if a child process has exited (startup fails fast; nothing restarts here):
        :class:`StartupRefused` with its reason if it refused its configuration."""
        if self.supervisor is None:
            return
        for name, code in self.supervisor.exited().items():
            if code == EXIT_REFUSED:
                raise StartupRefused(self.refusal(name))
            where = f"; see {self.state_dir / 'stack.log'}" if self.quiet else ""
            raise RuntimeError(f"the {name} process exited with code {code}{where}")

    def refusal(self, name: str) -> str:
        """Why child ``name`` refused to start: its own one-line reason when the stack
        keeps the children's output in its log, else a pointer to it (printed above)."""
        prefix = f"refract {name}: "
        log = self.state_dir / "stack.log"
        if self.quiet and log.is_file():
            lines = log.read_text(errors="replace").splitlines()
            reasons = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
            if reasons:
                return f"the {name} refused to start: {reasons[-1]}"
        return f"the {name} refused to start (its reason is printed above)"

    def run_until_signalled(self, poll_interval_s: float = 0.2) -> int:
        """Supervise the children until Ctrl-C, SIGTERM or SIGHUP, then stop everything.

        A child that exits meanwhile is restarted with backoff, not a reason to stop; one
        that refuses its configuration stops the stack. Returns 0, or
        :data:`EXIT_REFUSED` after printing which child refused and why.
        """
        stopping = False
        supervisor = self.supervisor

        def _stop(_signum: int, _frame: Any) -> None:
            nonlocal stopping
            stopping = True

        def _should_stop() -> bool:
            return stopping or (supervisor is not None and bool(supervisor.refused()))

        previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
        refused: list[str] = []
        try:
            if supervisor is not None:
                supervisor.run(_should_stop, interval_s=poll_interval_s)
                refused = list(supervisor.refused())
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if refused:
            reasons = "; ".join(self.refusal(name) for name in refused)
            print(f"refract: stopped the stack: {reasons}", file=sys.stderr, flush=True)
            return EXIT_REFUSED
        return 0

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the children (SIGTERM to each process group, SIGKILL after the grace),
        then the embedded Redis: last, so that no child loses it while stopping."""
        if self.supervisor is not None:
            self.supervisor.stop(grace_s)
            self.supervisor = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

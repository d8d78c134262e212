"""Running the whole system on one machine: ``refract up`` and ``refract demo``.

With no Redis URL configured, an embedded redis-server is started first; the API
(gunicorn), a Celery worker and beat then run as child processes with the same settings,
so the embedded default takes exactly the production code path. Stopping sends SIGTERM to
every child's process group and waits, so no process or port is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from launch.embedded import EmbeddedRedis
from refract.core.settings import Settings
from refract.jobs.catalog import ALL_QUEUES


def redact(url: str) -> str:
    """``url`` without its password, for printing."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


@dataclass
class LocalStack:
    """The API, a worker and beat as children, plus an embedded Redis when needed."""

    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8000
    queues: str = ",".join(ALL_QUEUES)
    concurrency: int | None = None
    state_dir: Path = Path("var")
    quiet: bool = False
    redis: EmbeddedRedis | None = None
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

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
            f"broker={broker_label} model backend={self.settings.backend}"
        )

    def start(self) -> None:
        """Start Redis if embedded, migrate the schema, then start the children."""
        from launch.migrate import upgrade

        self.env = dict(os.environ)
        if self.settings.redis_url is None:
            self.redis = EmbeddedRedis(self.state_dir / "redis").start()
            self.env["REFRACT_REDIS_URL"] = self.redis.url
        print(self.describe(), flush=True)
        upgrade(self.settings.database_url)
        base = [sys.executable, "-m", "launch.cli"]
        worker = [*base, "worker", "--queues", self.queues]
        if self.concurrency:
            worker += ["--concurrency", str(self.concurrency)]
        commands = {
            "api": [*base, "api", "--host", self.host, "--port", str(self.port)],
            "worker": worker,
            "beat": [*base, "beat", "--state-dir", str(self.state_dir)],
        }
        output: dict[str, Any] = {}
        if self.quiet:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            output = {
                "stdout": (self.state_dir / "stack.log").open("ab"),
                "stderr": subprocess.STDOUT,
            }
        for name, command in commands.items():
            self.children[name] = subprocess.Popen(
                command, env=self.env, start_new_session=True, **output
            )

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
        """Raise if a child process has exited."""
        for name, child in self.children.items():
            code = child.poll()
            if code is not None:
                raise RuntimeError(f"{name} exited with code {code}")

    def run_until_signalled(self) -> int:
        """Block until Ctrl-C/SIGTERM or a child dies; then stop everything."""
        stopping = False

        def _stop(_signum: int, _frame: Any) -> None:
            nonlocal stopping
            stopping = True

        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        exit_code = 0
        try:
            while not stopping:
                try:
                    self.check_children()
                except RuntimeError as exc:
                    print(f"refract: {exc}; stopping", file=sys.stderr)
                    exit_code = 1
                    break
                time.sleep(0.2)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return exit_code

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the children (SIGTERM to each process group, SIGKILL after the grace)."""
        for child in self.children.values():
            if child.poll() is None:
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
            # Grandchildren (gunicorn workers) share the group; make sure none outlive it.
            _signal_group(child, signal.SIGKILL)
        self.children.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)

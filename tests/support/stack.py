"""A real Refract stack (``refract up``: gunicorn API, Celery worker, beat) for tests, and
how tests watch the jobs it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from refract.jobs.catalog import FINAL_JOB_STATUSES
from tests.support.services import free_port

# What configures Refract, Gemini or YouTube: a stack is given it only by the test.
CONFIG_VARIABLES = ("REFRACT_", "GEMINI_", "GOOGLE_API_KEY", "YOUTUBE_API_KEY")


def clean_environ() -> dict[str, str]:
    """This process's environment without any Refract, Gemini or YouTube configuration."""
    return {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_VARIABLES)}


class RefractStack:
    """``refract up`` in a child process, with its own environment and log file.

    The stack's configuration is ``env`` and nothing else: Refract variables set in the
    shell that runs the tests (a developer's ``REFRACT_BROKER_URL``, say) do not leak in.
    """

    def __init__(self, env: dict[str, str], workdir: Path, *, extra_args: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / "refract-up.log"
        self.env = {**clean_environ(), **env, "PYTHONUNBUFFERED": "1"}
        self.args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> RefractStack:
        """Start the stack and wait until the API is ready and a worker answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The child writes to its own copy of the descriptor; ours is closed at once.
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "launch.cli",
                    "up",
                    "--port",
                    str(self.port),
                    "--state-dir",
                    str(self.workdir / "state"),
                    *self.args,
                ],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"refract up exited early:\n{self.logs()[-4000:]}")
            if self._ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"refract up not ready in {timeout_s}s:\n{self.logs()[-4000:]}")

    def _ready(self) -> bool:
        try:
            if httpx.get(f"{self.url}/readyz", timeout=2).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
        # The API is up; the worker says so in the shared log once it consumes.
        return b" ready." in self.log_path.read_bytes()

    def logs(self) -> str:
        """Everything the stack printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Ctrl-C the stack (SIGINT to ``refract up``) and wait for it to exit."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the stack's API."""
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def __enter__(self) -> RefractStack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def wait_for_log(stack: RefractStack, line: str, count: int = 1, timeout_s: float = 20) -> None:
    """Wait until the stack has logged ``line`` ``count`` times."""
    deadline = time.monotonic() + timeout_s
    while stack.logs().count(line) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{line!r} never logged:\n{stack.logs()[-3000:]}")
        time.sleep(0.1)


def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll the job until it is final and return it."""
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in FINAL_JOB_STATUSES:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not final after {timeout_s}s: {job}")


def feature_rows(db: Engine, job_id: str) -> dict[str, dict[str, Any]]:
    """The feature_runs rows of a job, straight from the database."""
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM feature_runs WHERE job_id = :id"), {"id": job_id}
        ).mappings()
        return {row["feature"]: dict(row) for row in rows}

"""A real Refract stack (``refract up``: gunicorn API, Celery worker, beat) for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.services import free_port


class RefractStack:
    """``refract up`` in a child process, with its own environment and log file."""

    def __init__(self, env: dict[str, str], workdir: Path, *, extra_args: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / "refract-up.log"
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> RefractStack:
        """Start the stack and wait until the API is ready and a worker answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
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

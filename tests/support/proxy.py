"""deploy/nginx.conf, run for a test: the compose reverse proxy in front of a test stack.

The file is used as written except for what only a test changes: the upstreams (the
stack's API instead of ``api:8000``, an events process or the API for ``events:8001``),
the listening port, the paths nginx writes to, and the read timeouts and body limit given
to :class:`ProxyServer` (so that a stalled client is cut off in a second, not ten).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from tests.support.services import free_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


class ProxyServer:
    """nginx with deploy/nginx.conf, in front of ``upstream`` (host:port)."""

    def __init__(
        self,
        upstream: str,
        workdir: Path,
        *,
        events_upstream: str | None = None,
        read_timeout_s: int = 1,
        max_body: str = "13m",
    ) -> None:
        """``events_upstream``: where event streams go (an events process; default the API)."""
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        text = CONFIG.read_text()
        text = text.replace("server api:8000;", f"server {upstream};")
        text = text.replace("server events:8001;", f"server {events_upstream or upstream};")
        text = text.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        text = re.sub(
            r"client_(header|body)_timeout \d+s;", rf"client_\1_timeout {read_timeout_s}s;", text
        )
        text = text.replace("client_max_body_size 13m;", f"client_max_body_size {max_body};")
        user = "user root;\n" if os.geteuid() == 0 else ""
        text = user + f"pid {workdir}/nginx.pid;\nerror_log {workdir}/error.log;\n" + text
        text = text.replace(
            "http {",
            f"http {{\n    access_log off;\n    client_body_temp_path {workdir}/body;\n"
            f"    proxy_temp_path {workdir}/proxy;\n",
            1,
        )
        self.config = workdir / "nginx.conf"
        self.config.write_text(text)

    @property
    def url(self) -> str:
        """Where clients reach the proxy."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start nginx in the foreground (as a child) and wait until it answers."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [binary, "-p", str(self.workdir), "-c", str(self.config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited: {error}")
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        """Stop nginx."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

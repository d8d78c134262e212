"""The compose reverse proxy (deploy/nginx.conf) in front of a real stack: slow clients
are cut off there, and its own errors are problem+json like the API's."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.bodies import make_source
from tests.support.proxy import ProxyServer
from tests.support.stack import RefractStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxy(stack: RefractStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    address = urlsplit(stack.url)
    workdir: Path = tmp_path_factory.mktemp("proxy")
    with ProxyServer(f"{address.hostname}:{address.port}", workdir, max_body="1m") as running:
        yield running


def raw_answer(proxy: ProxyServer, data: bytes, wait_s: float = 5) -> tuple[int, bytes, bytes]:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=wait_s) as conn:
        conn.sendall(data)
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head, body


def test_requests_pass_through_and_events_stream(proxy: ProxyServer) -> None:
    with httpx.Client(base_url=proxy.url, timeout=30) as client:
        job = client.post("/api/v1/jobs", json={"kind": "video", "source": make_source("PRX")})
        assert job.status_code == 202, job.text
        read = client.get(job.headers["Location"])
        assert read.status_code == 200 and read.json()["id"] == job.json()["id"]
        with client.stream("GET", f"{job.headers['Location']}/events") as events:
            assert events.headers["content-type"].startswith("text/event-stream")


def test_a_stalled_client_is_cut_off_by_the_proxy(proxy: ProxyServer) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        answer = conn.recv(65536)
    # Closed (nginx drops a client whose headers stall), or told 408: never left hanging.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    # The test configuration's client_header_timeout is 1 s.
    assert time.monotonic() - started < 5


def test_the_proxys_own_errors_are_problem_json(proxy: ProxyServer) -> None:
    big = b"x" * 1_100_000
    status, head, body = raw_answer(
        proxy,
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(big) + big,
    )
    assert status == 413
    assert b"application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 413

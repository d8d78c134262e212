"""The bench's load helpers (:mod:`bench.clients`, :func:`bench.table.p99`): what the
rows' rates and p99s are computed from. No timing is asserted, only the counting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bench.clients import run_clients
from bench.table import p99


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the bench's clients use

    def do_GET(self) -> None:  # the name http.server calls
        status = 500 if self.path == "/fail" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_every_request_of_every_client_is_timed_once(server: str) -> None:
    left = iter(range(23))
    lock = threading.Lock()

    def step(http: httpx.Client) -> bool:
        with lock:
            if next(left, None) is None:
                return False
        http.get("/").raise_for_status()
        return True

    load = run_clients(server, {}, 4, step)

    assert len(load.latencies) == 23
    assert all(seconds > 0 for seconds in load.latencies)
    assert load.rate == pytest.approx(23 / load.wall_s)


def test_a_failing_step_is_raised_after_every_client_ended(server: str) -> None:
    def step(http: httpx.Client) -> bool:
        http.get("/fail").raise_for_status()
        return True

    with pytest.raises(httpx.HTTPStatusError):
        run_clients(server, {}, 3, step)


def test_p99_of_too_few_values_meets_no_goal() -> None:
    assert p99([]) == float("inf") and p99([0.5]) == float("inf")
    assert p99([float(n) for n in range(1, 101)]) == pytest.approx(99.99, abs=0.02)

"""What every fake server in the tests shares: a threaded HTTP server on 127.0.0.1.

A subclass gives its request handler class (whose ``owner`` attribute is set to the
fake) and a name; it gets start/stop, a context manager and its base URL.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections a busy worker pool opens at
    # once (a benchmark's 24 threads); a real server accepts them.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (closing a response it did not read) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeServer:
    """Serve ``handler`` on a free port of 127.0.0.1 from a daemon thread."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    name: ClassVar[str] = "fake-server"

    def __init__(self) -> None:
        self._server: _Server | None = None
        # Set while stopping, so handlers that sleep (hangs, delays) end at once.
        self._stopping = threading.Event()

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve on a daemon thread."""
        owner = self
        # TCP_NODELAY, as real servers set it: the handlers write the headers and the body
        # separately, and with Nagle's algorithm the body waits for the client's delayed
        # ACK of the headers (~40 ms), which a bench would take for the caller's time.
        handler: Any = type(
            "Handler", (self.handler,), {"owner": owner, "disable_nagle_algorithm": True}
        )
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits for one poll
            name=self.name,
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still sleeping are cut short."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def serve_until_interrupted(self, settings: dict[str, str]) -> None:
        """Run alone (``python -m tests.support.fakes.<name>``), once started: print the
        ``settings`` that point Refract here, one ``NAME=value`` line each and then an
        empty line (the end, for a parent reading them), and serve until Ctrl-C."""
        for name, value in settings.items():
            print(f"{name}={value}")
        print(flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

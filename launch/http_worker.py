"""The API's gunicorn worker: slow clients wait in the event loop, not in a thread.

Gunicorn's threaded worker (``gthread``) hands a connection to a thread as soon as it has
something to read; the thread then reads the rest of the request with blocking calls.
A client that sends its headers a byte at a time, or announces a body it never sends,
holds that thread for as long as it likes, and a few dozen such clients (a bad phone on
venue Wi-Fi, or someone trying) take every thread: ``/healthz`` stops answering.

:class:`ApiWorker` reads each request in the worker's event loop instead, without
blocking, until its head is complete and its body (up to ``BODY_BUFFER_BYTES``) has
arrived; only then does a thread get it, with the bytes already read handed to
gunicorn's own parser. A request that is not complete within ``REQUEST_READ_TIMEOUT_S``
is answered 408 and closed. Bodies larger than the buffer, or arriving while this worker
already buffers ``TOTAL_BUFFER_BYTES``, are read by the thread as before.

It also answers the errors gunicorn makes itself (a request line or headers too long,
an unparsable request) with RFC 9457 problem+json instead of an HTML page
(:func:`write_problem`; gunicorn looks ``gunicorn.util.write_error`` up when it needs it).
"""

from __future__ import annotations

import contextlib
import json
import re
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import http, util
from gunicorn.workers.gthread import TConn, ThreadWorker

# A request still incomplete after this long is abandoned (408).
REQUEST_READ_TIMEOUT_S = 10.0
# Bodies up to this size are read in the event loop; larger ones by the thread.
BODY_BUFFER_BYTES = 1024 * 1024
# What one worker process buffers at most, over all the requests it is reading.
TOTAL_BUFFER_BYTES = 64 * 1024 * 1024
# A head that has not ended by now is passed on for gunicorn to refuse (414/431).
HEAD_LIMIT_BYTES = 64 * 1024

_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)

# What a client is told for each answer gunicorn makes itself.
DETAILS = {
    400: "the request could not be parsed",
    403: "the request is not allowed",
    408: "the request did not arrive in time",
    414: "the request line (method, path and query) is too long",
    417: "the Expect header asks for something this server does not do",
    431: "the request's header fields are too large or too many",
    500: "an unexpected error occurred",
    501: "the request's transfer coding is not supported",
}


def problem_bytes(status: int, reason: str) -> bytes:
    """The whole HTTP answer for ``status``: headers and a problem+json body."""
    body = json.dumps(
        {
            "type": "about:blank",
            "title": reason,
            "status": status,
            "detail": DETAILS.get(status, reason.lower()),
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's ``util.write_error``, answering problem+json (``mesg`` is not sent)."""
    util.write_nonblock(sock, problem_bytes(status_int, reason))


def request_complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole request head and the body it announces (a chunked
    or too large body counts as complete: the thread reads it)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) > HEAD_LIMIT_BYTES
    head = data[:end]
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        return True
    length = int(match.group(1))
    return length > BODY_BUFFER_BYTES or len(data) - (end + 4) >= length


class ApiWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """Gunicorn's ``gthread`` worker that reads requests in its event loop first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections being read, with when they must be complete.
        self._reading: dict[TConn, float] = {}
        self._buffered = 0

    def init_process(self) -> Any:
        """Answer gunicorn's own errors in problem+json, then serve as usual."""
        util.write_error = write_problem
        return super().init_process()

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection and start reading its request in the event loop."""
        try:
            client_sock, client_addr = listener.accept()
        except BlockingIOError:
            return
        except OSError:
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        self._start_reading(conn)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection has a next request: read it in the event loop too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_reading(conn)

    def _start_reading(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.request_bytes = bytearray()
        self._reading[conn] = time.monotonic() + REQUEST_READ_TIMEOUT_S
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: TConn, _sock: socket.socket) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before its request was whole
            self._stop_reading(conn)
            self.nr_conns -= 1
            conn.close()
            return
        conn.request_bytes += data
        self._buffered += len(data)
        if request_complete(bytes(conn.request_bytes)) or self._buffered > TOTAL_BUFFER_BYTES:
            self._hand_over(conn)

    def _hand_over(self, conn: TConn) -> None:
        """Give the connection to a thread, with what was read put back for the parser."""
        data = bytes(conn.request_bytes)
        self._stop_reading(conn)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(data)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _stop_reading(self, conn: TConn) -> None:
        self._reading.pop(conn, None)
        self._buffered -= len(conn.request_bytes)
        conn.request_bytes = bytearray()
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def murder_pending(self) -> None:
        """Besides gunicorn's own sweep, answer 408 to requests that stalled."""
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self._reading.items()):
            if deadline <= now:
                self._stop_reading(conn)
                with contextlib.suppress(OSError):
                    util.write_nonblock(conn.sock, problem_bytes(408, "Request Timeout"))
                self.nr_conns -= 1
                conn.close()

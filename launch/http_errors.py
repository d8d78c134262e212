"""Gunicorn's own error answers, as problem+json like every other error of the API.

Some requests never reach Flask: a request line or headers too long (414, 431), a
malformed request (400), a transfer coding gunicorn does not take (501). Gunicorn answers
those itself, with an HTML page. :class:`ProblemThreadWorker` is gunicorn's threaded
worker whose error writer sends RFC 9457 problem+json instead, with a generic detail (the
client's own bytes are not echoed back).

Gunicorn writes those answers through ``gunicorn.util.write_error``, looked up when an
error happens; the worker points that name at :func:`write_problem` when its process
starts, so only API worker processes change, and nothing else in them uses it.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

# What a client is told for each answer gunicorn makes itself.
DETAILS = {
    400: "the request could not be parsed",
    403: "the request is not allowed",
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


class ProblemThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """Gunicorn's ``gthread`` worker, with its own error answers in problem+json."""

    def init_process(self) -> Any:
        """Switch gunicorn's error writer before serving (then serve as usual)."""
        util.write_error = write_problem
        return super().init_process()

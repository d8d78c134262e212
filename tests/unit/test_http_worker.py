"""The API worker's request reading (when a request is whole) and its own error answers."""

from __future__ import annotations

import json

import pytest

from launch.http_worker import BODY_BUFFER_BYTES, HEAD_LIMIT_BYTES, problem_bytes, request_complete


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n", False),  # the head has not ended
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", True),
        (b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n{}", False),  # body not all here
        (b"POST /x HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}", True),
        (b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", True),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True),  # the thread reads it
        (b"POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (BODY_BUFFER_BYTES + 1), True),
        (b"GET /" + b"a" * (HEAD_LIMIT_BYTES + 1), True),  # for gunicorn to refuse (414)
    ],
)
def test_a_request_is_handed_over_once_whole(data: bytes, complete: bool) -> None:
    assert request_complete(data) is complete


def test_gunicorns_answers_are_problem_json_without_the_clients_bytes() -> None:
    raw = problem_bytes(431, "Request Header Fields Too Large")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Content-Type: application/problem+json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    problem = json.loads(body)
    assert problem == {
        "type": "about:blank",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": "the request's header fields are too large or too many",
    }

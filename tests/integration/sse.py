"""A small Server-Sent Events reader for tests (follows the WHATWG parsing rules we use)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SseEvent:
    """One event as a client sees it."""

    id: str | None
    event: str
    data: dict[str, Any]


def read_events(
    client: httpx.Client, path: str, *, last_event_id: str | None = None, timeout_s: float = 60
) -> Iterator[SseEvent]:
    """Yield the events of ``path`` until the server closes the stream."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    with client.stream("GET", path, headers=headers, timeout=timeout_s) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id, event_type, data = None, "message", []
        for line in response.iter_lines():
            if line == "":
                if data:
                    yield SseEvent(event_id, event_type, json.loads("\n".join(data)))
                event_id, event_type, data = None, "message", []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "id":
                    event_id = value
                elif name == "event":
                    event_type = value
                elif name == "data":
                    data.append(value)

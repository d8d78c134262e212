"""Server-Sent Events bodies, read the way ``refract submit`` reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from launch.client import parse_event_stream


@dataclass
class SseFrame:
    """One event of a Server-Sent Events body."""

    id: str | None
    event: str
    data: dict[str, Any]


def parse_sse(body: str) -> tuple[list[SseFrame], list[str]]:
    """The events and the comment lines of a complete SSE body."""
    lines = body.split("\n")
    frames = [SseFrame(*event) for event in parse_event_stream(lines)]
    comments = [line[1:].strip() for line in lines if line.startswith(":")]
    return frames, comments

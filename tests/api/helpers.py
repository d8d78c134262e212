"""Helpers for the API tests: images to upload, Server-Sent Events parsing, state checks."""

from __future__ import annotations

import base64
import io
import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from launch.client import parse_event_stream
from refract.core.db import session_scope
from refract.core.models import Artifact, FeatureRun, Job
from refract.jobs.catalog import FeatureStatus
from refract.jobs.progress import Event, ProgressBus
from refract.jobs.state import change_job, feature_event, mark_final

PROGRESS_DB = 14
BROKER_DB = 13
VIDEO_URL = "https://youtu.be/9bZkp7q19f0?si=abc"
CANONICAL_URL = "https://www.youtube.com/watch?v=9bZkp7q19f0"


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """``image`` encoded as ``fmt``."""
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def small_image(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A small real image with some structure."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    return encode(image, fmt)


def data_url(data: bytes, mime: str = "image/png") -> str:
    """``data`` as a base64 data: URL."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def truncated_jpeg() -> bytes:
    """A JPEG cut off in the middle of its scan data."""
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def video_body(**overrides: Any) -> dict[str, Any]:
    """A valid video job body."""
    body: dict[str, Any] = {"kind": "video", "url": VIDEO_URL, "language": "en"}
    body.update(overrides)
    return body


def inline_source(thumbnail: str | None = None) -> dict[str, Any]:
    """A small inline video source."""
    source: dict[str, Any] = {
        "title": "Gangnam Style",
        "description": "A music video.",
        "transcript": [{"start": 0.0, "text": "Oppan"}, {"start": 4.5, "text": "Gangnam style"}],
        "comments": [
            {"text": "Still great", "author": "a", "likes": 10, "published_at": "2024-11-04"},
        ],
    }
    if thumbnail is not None:
        source["thumbnail"] = thumbnail
    return source


def table_counts() -> dict[str, int]:
    """Rows in each of the API's tables."""
    with session_scope() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Job, FeatureRun, Artifact)
        }


def media_files(root: Path) -> list[Path]:
    """Every file under the media directory (temporary files included)."""
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def load_job(job_id: str) -> Job:
    """The job row, with its features loaded."""
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        _ = list(job.features)
        session.expunge_all()
        return job


def advance(bus: ProgressBus, job_id: str, mutate: Callable[[dict[str, FeatureRun]], None]) -> Job:
    """Change a job the way a worker does (lock, mutate, publish, commit)."""

    def apply(_job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        before = {name: run.status for name, run in runs.items()}
        mutate(runs)
        return [
            feature_event(job_id, run) for name, run in runs.items() if run.status != before[name]
        ]

    with session_scope() as session:
        job = change_job(session, bus, uuid.UUID(job_id), apply)
        _ = list(job.features)
        session.flush()
        session.expunge_all()
        return job


def start(*names: str) -> Callable[[dict[str, FeatureRun]], None]:
    """A mutation: the named features start running."""

    def mutate(runs: dict[str, FeatureRun]) -> None:
        for name in names:
            runs[name].status = FeatureStatus.RUNNING.value
            runs[name].attempts += 1
            runs[name].progress = 0.1

    return mutate


def finish(
    *names: str, status: FeatureStatus = FeatureStatus.SUCCEEDED
) -> Callable[[dict[str, FeatureRun]], None]:
    """A mutation: the named features end with ``status``."""

    def mutate(runs: dict[str, FeatureRun]) -> None:
        for name in names:
            error = None if status == FeatureStatus.SUCCEEDED else ("model_timeout", "too slow")
            mark_final(runs[name], status, error=error)
            if status == FeatureStatus.SUCCEEDED:
                runs[name].result = {"tldr": f"{name} done"}

    return mutate


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

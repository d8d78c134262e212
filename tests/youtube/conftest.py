"""Fixtures for the YouTube tests: a fake YouTube, settings pointed at it, real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import refract.youtube.client as youtube_client
from refract.core.material import TranscriptLine
from refract.core.settings import Settings
from refract.youtube.client import YouTubeClient
from tests.fakes.youtube import DEFAULT_KEY, FakeYouTube
from tests.support.services import fresh_redis_database

VIDEO = "dQw4w9WgXcQ"
OTHER = "jNQXAC9IVRw"
REDIS_DB = 9


class TranscriptCalls:
    """Stands in for the transcript library: records calls, answers what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.lines: list[TranscriptLine] | None = None  # None: raise, as a blocked scrape

    def __call__(
        self, video_id: str, languages: tuple[str, ...], timeout_s: float
    ) -> list[TranscriptLine]:
        self.calls.append((video_id, languages))
        if self.lines is None:
            raise RuntimeError("youtube.com refused (fake)")
        return list(self.lines)


@pytest.fixture(autouse=True)
def transcripts(monkeypatch: pytest.MonkeyPatch) -> TranscriptCalls:
    """No test may reach youtube.com: the library call is always replaced."""
    fake = TranscriptCalls()
    monkeypatch.setattr(youtube_client, "download_transcript", fake)
    return fake


@pytest.fixture
def fake() -> Iterator[FakeYouTube]:
    with FakeYouTube() as server:
        yield server


@pytest.fixture
def make_settings(fake: FakeYouTube) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "youtube_api_key": DEFAULT_KEY,
            "youtube_api_url": fake.api_url,
            "youtube_oembed_url": fake.oembed_url,
            "youtube_thumbnail_url": fake.thumbnail_url,
            "youtube_timeout_s": 2.0,
            "youtube_max_comments": 300,
            "youtube_cache_ttl_s": 3600,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[YouTubeClient]:
    youtube = YouTubeClient(make_settings())
    yield youtube
    youtube.close()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """Redis database 9, flushed before and after; text responses, as the project uses."""
    with fresh_redis_database(REDIS_DB) as url:
        conn = redis.Redis.from_url(url, decode_responses=True)
        yield conn
        conn.close()

"""Fixtures for the YouTube tests: a fake YouTube, settings pointed at it, the run's Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from typing import Any

import pytest
import redis

import refract.youtube.client as youtube_client
from refract.core.settings import Settings
from refract.youtube.client import YouTubeClient
from tests.support.fakes.youtube import DEFAULT_KEY, FakeYouTube
from tests.support.youtube import TranscriptCalls


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
def settings_values(settings_values: dict[str, Any], fake: FakeYouTube) -> dict[str, Any]:
    """Every YouTube endpoint pointed at the fake, with its key and a short timeout."""
    return {
        **settings_values,
        "youtube_api_key": DEFAULT_KEY,
        "youtube_api_url": fake.api_url,
        "youtube_oembed_url": fake.oembed_url,
        "youtube_thumbnail_url": fake.thumbnail_url,
        "youtube_timeout_s": 2.0,
        "youtube_max_comments": 300,
        "youtube_cache_ttl_s": 3600,
    }


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., YouTubeClient]]:
    """Build YouTube clients with settings overrides; all are closed after the test."""
    with ExitStack() as stack:

        def build(**overrides: Any) -> YouTubeClient:
            return stack.enter_context(closing(YouTubeClient(make_settings(**overrides))))

        yield build


@pytest.fixture
def client(make_client: Callable[..., YouTubeClient]) -> YouTubeClient:
    """A client with the default test settings."""
    return make_client()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis[str]]:
    """A database of the run's Redis, empty at the start; text responses, as the project uses."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as conn:
        yield conn

"""The integration layer: a real ``refract up`` (gunicorn + Celery worker + beat) against
real Postgres and the run's own Redis, with the real google-genai SDK talking to a fake
Gemini and a fake YouTube."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tests.support.fakes.gemini import FakeGemini
from tests.support.fakes.youtube import DEFAULT_KEY, FakeYouTube
from tests.support.services import PostgresServer, RedisDb, RedisServer
from tests.support.stack import RefractStack


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[FakeGemini]:
    """A fake Gemini on 127.0.0.1 for the whole module."""
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def fake_youtube() -> Iterator[FakeYouTube]:
    """A fake YouTube (Data API, oEmbed, thumbnails) on 127.0.0.1 for the whole module."""
    with FakeYouTube() as fake:
        yield fake


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty Postgres database (``refract up`` migrates it)."""
    with postgres_server.fresh_database("refract_it") as url:
        yield url


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    fake_gemini: FakeGemini,
    fake_youtube: FakeYouTube,
    database_url: str,
    redis_server: RedisServer,
    request: pytest.FixtureRequest,
) -> Iterator[RefractStack]:
    """``refract up`` on the run's Redis, with Gemini and YouTube pointed at the fakes.

    A test module may set ``STACK_ENV`` (a dict) to change or add settings for its stack.
    """
    with redis_server.fresh_database(RedisDb.STACK) as redis_url:
        workdir = tmp_path_factory.mktemp("stack")
        env = {
            "REFRACT_DATABASE_URL": database_url,
            "REFRACT_REDIS_URL": redis_url,
            "REFRACT_MODEL_BACKEND": "gemini",
            "GEMINI_API_KEY": "test-key",
            "REFRACT_GEMINI_BASE_URL": fake_gemini.url,
            "REFRACT_MEDIA_DIR": str(workdir / "media"),
            "REFRACT_MODEL_TIMEOUT_S": "2",
            "REFRACT_IMAGE_MODEL_TIMEOUT_S": "5",
            "REFRACT_MODEL_MAX_ATTEMPTS": "3",
            "REFRACT_MODEL_BACKOFF_BASE_S": "0.05",
            "REFRACT_MODEL_BACKOFF_MAX_S": "0.2",
            "REFRACT_RECONCILE_INTERVAL_S": "1",
            "REFRACT_REQUEUE_AFTER_S": "3",
            "REFRACT_GEMINI_RPM": "0",
            "YOUTUBE_API_KEY": DEFAULT_KEY,
            "REFRACT_YOUTUBE_API_URL": fake_youtube.api_url,
            "REFRACT_YOUTUBE_OEMBED_URL": fake_youtube.oembed_url,
            "REFRACT_YOUTUBE_THUMBNAIL_URL": fake_youtube.thumbnail_url,
            "REFRACT_YOUTUBE_TIMEOUT_S": "3",
            "REFRACT_YOUTUBE_TRANSCRIPTS": "false",
            **getattr(request.module, "STACK_ENV", {}),
        }
        with RefractStack(env, workdir) as running:
            yield running


@pytest.fixture(scope="module")
def client(stack: RefractStack) -> Iterator[httpx.Client]:
    """An HTTP client for the stack's API."""
    with stack.client() as http:
        yield http


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[Engine]:
    """A direct connection to the stack's database, to check what was stored."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def submit_video(client: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Submit a video job with an inline source and return the created job."""

    def submit(source: dict[str, Any], **fields: Any) -> dict[str, Any]:
        response = client.post("/api/v1/jobs", json={"kind": "video", "source": source, **fields})
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        return job

    return submit

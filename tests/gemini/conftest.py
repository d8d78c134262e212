"""Fixtures for the Gemini backend tests: a fake Gemini server and backends pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from refract.core.material import ImageBlob
from refract.core.settings import Settings
from refract.gateway.gemini import GeminiBackend
from tests.support.fakes.gemini import FakeGemini
from tests.support.gemini import API_KEY, SleepRecorder
from tests.support.images import fixture_bytes


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def settings_values(settings_values: dict[str, Any], fake: FakeGemini) -> dict[str, Any]:
    """The Gemini backend pointed at the fake, with short timeouts and backoffs."""
    return {
        **settings_values,
        "gemini_api_key": API_KEY,
        "gemini_base_url": fake.url,
        "gemini_api_version": "v1beta",
        "text_model": "gemini-test-flash",
        "image_model": "gemini-test-flash-image",
        "model_timeout_s": 2.0,
        "image_model_timeout_s": 2.0,
        "model_max_attempts": 3,
        "model_backoff_base_s": 0.01,
        "model_backoff_max_s": 0.05,
        "model_max_retry_delay_s": 5.0,
    }


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def backend(
    make_settings: Callable[..., Settings], sleeps: SleepRecorder
) -> Iterator[GeminiBackend]:
    gemini = GeminiBackend(make_settings(), sleep=sleeps)
    yield gemini
    gemini.close()


@pytest.fixture
def photo() -> ImageBlob:
    return ImageBlob(fixture_bytes("chelsea.png"), "image/png")


@pytest.fixture
def face() -> ImageBlob:
    return ImageBlob(fixture_bytes("astronaut.png"), "image/png")

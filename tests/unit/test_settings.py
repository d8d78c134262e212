"""Settings: the SDK's key names, the backend choice, and refused combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from refract.core.settings import Settings


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "REFRACT_MODEL_BACKEND", "YOUTUBE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_local_setup() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///var/refract.db"
    assert settings.redis_url is None
    assert settings.backend == "local"
    assert settings.text_model == "gemini-2.5-flash"
    assert settings.image_model == "gemini-2.5-flash-image"
    assert settings.gemini_api_version == "v1beta"


def test_a_gemini_key_selects_gemini_and_google_api_key_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini")
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google")
    settings = Settings()
    assert settings.backend == "gemini"
    assert settings.gemini_api_key is not None
    assert settings.gemini_api_key.get_secret_value() == "from-google"


def test_broker_defaults_to_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRACT_REDIS_URL", "redis://127.0.0.1:6379/3")
    assert Settings().effective_broker_url == "redis://127.0.0.1:6379/3"
    monkeypatch.setenv("REFRACT_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    assert Settings().effective_broker_url.startswith("amqp://")


def test_gemini_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRACT_MODEL_BACKEND", "gemini")
    with pytest.raises(ValidationError, match="needs GEMINI_API_KEY"):
        Settings()


def test_visibility_timeout_must_cover_the_longest_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRACT_VISIBILITY_TIMEOUT_S", "600")
    monkeypatch.setenv("REFRACT_TASK_SOFT_DEADLINE_S", "900")
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        Settings()

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


def test_visibility_timeout_must_cover_the_longest_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFRACT_VISIBILITY_TIMEOUT_S", "200")
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        Settings()
    monkeypatch.setenv("REFRACT_FEATURE_DEADLINES_S", '{"stylize": 150, "card": 150}')
    assert Settings().longest_deadline_s == 180.0  # the default for the rest


def test_deadlines_named_in_the_environment_change_only_those_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFRACT_FEATURE_DEADLINES_S", '{"card": 45}')
    settings = Settings()
    assert settings.deadline_s("card") == 45.0
    assert settings.deadline_s("stylize") == 300.0
    assert settings.deadline_s("a-future-feature") == settings.default_deadline_s


def test_a_heartbeat_timeout_must_allow_a_late_beat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRACT_HEARTBEAT_INTERVAL_S", "5")
    monkeypatch.setenv("REFRACT_HEARTBEAT_TIMEOUT_S", "8")
    with pytest.raises(ValidationError, match="HEARTBEAT_TIMEOUT"):
        Settings()

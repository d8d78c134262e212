"""Settings: the SDK's key names, the backend choice, and refused combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from refract.core.errors import StartupRefused
from refract.core.settings import Settings, load_settings


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
    with pytest.raises(ValidationError, match="GEMINI_API_KEY"):
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


def environment_names() -> set[str]:
    """Every environment variable a setting reads: REFRACT_<NAME> and the SDK aliases."""
    names = {"GEMINI_API_KEY", "GOOGLE_API_KEY", "YOUTUBE_API_KEY"}
    return names | {f"REFRACT_{name.upper()}" for name in Settings.model_fields}


def test_every_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # `.env.example` ships `GEMINI_API_KEY=` and friends: blank means "not set", for every
    # setting, never an empty string, a parse error or a key of nothing.
    for name in environment_names():
        monkeypatch.delenv(name, raising=False)
    defaults = Settings().model_dump()
    for name in environment_names():
        monkeypatch.setenv(name, "")
    assert Settings().model_dump() == defaults


def test_a_blank_gemini_key_selects_the_local_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    for blank in ("", "   "):
        monkeypatch.setenv("GEMINI_API_KEY", blank)
        monkeypatch.setenv("GOOGLE_API_KEY", blank)
        settings = load_settings()
        assert settings.gemini_api_key is None
        assert settings.backend == "local"


def test_a_blank_google_key_does_not_hide_a_gemini_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "")
    monkeypatch.setenv("GEMINI_API_KEY", " from-gemini ")
    settings = Settings()
    assert settings.backend == "gemini"
    assert settings.gemini_api_key is not None
    assert settings.gemini_api_key.get_secret_value() == "from-gemini"


def test_gemini_with_a_blank_key_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRACT_MODEL_BACKEND", "gemini")
    monkeypatch.setenv("GEMINI_API_KEY", "")
    with pytest.raises(StartupRefused) as refused:
        load_settings()
    reason = str(refused.value)
    assert "\n" not in reason
    assert "REFRACT_MODEL_BACKEND=gemini" in reason and "GEMINI_API_KEY" in reason
    assert "local backend" in reason


def test_an_invalid_value_is_refused_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRACT_WORKER_CONCURRENCY", "many")
    with pytest.raises(StartupRefused, match=r"^invalid configuration: REFRACT_WORKER_CONCURRENCY"):
        load_settings()

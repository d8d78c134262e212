"""Typed configuration, read from the environment once per process (pydantic-settings).

Nothing reads the environment at import time: the app and worker factories call
:func:`load_settings` and pass the result down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite:///var/refract.db"


class Settings(BaseSettings):
    """Every knob Refract has; see the configuration table in the README."""

    model_config = SettingsConfigDict(env_prefix="REFRACT_", extra="ignore", env_file=None)

    # --- where things live ---------------------------------------------------------
    database_url: str = EMBEDDED_DATABASE_URL
    redis_url: str | None = None
    broker_url: str | None = None
    media_dir: Path = Path("var/media")

    # --- the model -----------------------------------------------------------------
    model_backend: Literal["gemini", "local"] | None = None
    # The SDK's own variable names; GOOGLE_API_KEY wins over GEMINI_API_KEY, as in the SDK.
    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GOOGLE_API_KEY", "GEMINI_API_KEY")
    )
    gemini_base_url: str | None = None
    # Pinned: google-genai 3.x defaults to v1, 2.x to v1beta; we never rely on the default.
    gemini_api_version: str = "v1beta"
    text_model: str = "gemini-2.5-flash"
    image_model: str = "gemini-2.5-flash-image"
    model_timeout_s: float = Field(default=60.0, gt=0)
    image_model_timeout_s: float = Field(default=120.0, gt=0)
    model_max_attempts: int = Field(default=4, ge=1, le=10)
    model_backoff_base_s: float = Field(default=1.0, ge=0)
    model_backoff_max_s: float = Field(default=30.0, ge=0)
    # A server-given retry delay longer than this is not waited for: the feature fails.
    model_max_retry_delay_s: float = Field(default=60.0, ge=0)
    # Shared across every worker through Redis: the Gemini quota is per project.
    gemini_rpm: int = Field(default=1000, ge=0)

    # --- YouTube -------------------------------------------------------------------
    youtube_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("YOUTUBE_API_KEY", "REFRACT_YOUTUBE_API_KEY")
    )
    youtube_api_url: str = "https://www.googleapis.com/youtube/v3"
    youtube_oembed_url: str = "https://www.youtube.com/oembed"
    youtube_thumbnail_url: str = "https://i.ytimg.com/vi"
    youtube_timeout_s: float = Field(default=10.0, gt=0)
    youtube_max_comments: int = Field(default=300, ge=1, le=5000)
    # Fetched material is cached per video id, so a trending video costs one fetch.
    youtube_cache_ttl_s: int = Field(default=3600, ge=0)
    # Transcripts come from youtube.com's caption endpoint (youtube-transcript-api); it
    # cannot be pointed at a fake, so tests switch it off.
    youtube_transcripts: bool = True

    # --- the API -------------------------------------------------------------------
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    max_body_bytes: int = Field(default=12 * 1024 * 1024, gt=0)
    poll_after_s: int = Field(default=1, ge=1)
    sse_max_duration_s: float = Field(default=300.0, gt=0)

    # --- the workers ---------------------------------------------------------------
    worker_concurrency: int = Field(default=8, ge=1)
    # Must stay above the longest task (retries included): Redis redelivers after it.
    visibility_timeout_s: int = Field(default=3600, ge=60)
    # A feature `running` in a task whose claim is older than this is taken to be lost
    # (its worker died) and may be claimed again by another copy of the task.
    claim_stale_after_s: int = Field(default=900, ge=30)
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    # A job or feature still `queued` this long after it was enqueued is enqueued again.
    requeue_after_s: float = Field(default=120.0, gt=0)
    event_stream_maxlen: int = Field(default=1000, ge=10)
    snapshot_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    # --- logging -------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False

    @model_validator(mode="after")
    def _check_backend(self) -> Settings:
        if self.model_backend == "gemini" and self.gemini_api_key is None:
            raise ValueError("REFRACT_MODEL_BACKEND=gemini needs GEMINI_API_KEY or GOOGLE_API_KEY")
        if self.visibility_timeout_s <= self.claim_stale_after_s:
            # Redis would hand a still-running task to a second worker.
            raise ValueError(
                "REFRACT_VISIBILITY_TIMEOUT_S must be above REFRACT_CLAIM_STALE_AFTER_S"
            )
        return self

    @property
    def backend(self) -> Literal["gemini", "local"]:
        """The model backend in force: explicit, else Gemini when a key is set, else local."""
        if self.model_backend is not None:
            return self.model_backend
        return "gemini" if self.gemini_api_key is not None else "local"

    @property
    def effective_broker_url(self) -> str:
        """The Celery broker: its own URL when set, else the Redis URL."""
        url = self.broker_url or self.redis_url
        if url is None:
            raise RuntimeError("no Redis or broker URL is configured")
        return url

    @property
    def effective_redis_url(self) -> str:
        """The Redis used for progress, limits and the result backend."""
        if self.redis_url is None:
            raise RuntimeError("REFRACT_REDIS_URL is not set")
        return self.redis_url


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (used by the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]

"""Typed configuration, read from the environment once per process (pydantic-settings).

Nothing reads the environment at import time: the app and worker factories call
:func:`load_settings` and pass the result down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from refract.core.errors import StartupRefused

EMBEDDED_DATABASE_URL = "sqlite:///var/refract.db"
# Image calls are slower than text calls; card runs after caption and stylize.
DEFAULT_DEADLINES_S = {
    "summary": 180.0,
    "comments": 180.0,
    "thumbnail": 120.0,
    "caption": 120.0,
    "stylize": 300.0,
    "card": 300.0,
}


class Settings(BaseSettings):
    """Every knob Refract has; see the configuration table in the README."""

    # An empty variable is unset: `.env.example` ships `GEMINI_API_KEY=`, and a blank key
    # must select the local backend, not a Gemini backend with no key.
    model_config = SettingsConfigDict(
        env_prefix="REFRACT_", extra="ignore", env_file=None, env_ignore_empty=True
    )

    # --- where things live ---------------------------------------------------------
    database_url: str = EMBEDDED_DATABASE_URL
    redis_url: str | None = None
    broker_url: str | None = None
    media_dir: Path = Path("var/media")
    # `disk` (media_dir, the embedded default) or `s3`: a bucket every host can reach
    # (AWS S3, GCS's interoperability endpoint, MinIO), needed once workers run elsewhere.
    media_backend: Literal["disk", "s3"] = "disk"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    # Unset for AWS itself; MinIO: http://minio:9000; GCS: https://storage.googleapis.com.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Unset: boto3's usual chain (AWS_* variables, an instance or workload role).
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None

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
    # Shared across every worker through Redis: the Gemini quota is per project and model.
    # Requests per minute for both models unless one has its own; input tokens per minute
    # (0: not counted). Tier 1 figures for 2.5 Flash: about 1,000 RPM and 1M TPM.
    gemini_rpm: int = Field(default=1000, ge=0)
    text_model_rpm: int | None = Field(default=None, ge=0)
    image_model_rpm: int | None = Field(default=None, ge=0)
    text_model_tpm: int = Field(default=0, ge=0)
    image_model_tpm: int = Field(default=0, ge=0)
    # A text feature's reply is kept this long and reused for identical inputs (same model,
    # prompt version, language and material): a video pasted by 100 visitors costs one
    # call. 0 turns the reuse off.
    reply_cache_ttl_s: int = Field(default=6 * 3600, ge=0)

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

    # --- the front door (docs/API.md, Security) ------------------------------------
    # `required`: every API call but health, docs and signed artifact URLs needs a key.
    # `off` is refused unless the API listens on a loopback address (dev, `refract demo`).
    auth: Literal["required", "off"] = "required"
    # Signs artifact URLs (HMAC-SHA256). Every API process must share it; `refract up`
    # and `refract demo` make one for their children when it is unset.
    secret_key: SecretStr | None = None
    artifact_url_ttl_s: int = Field(default=3600, ge=60)
    # Photos, portraits, cards and inline inputs older than this are erased by beat; the
    # job keeps its statuses, timings and usage, and its artifacts answer 410 Gone.
    retention_s: int = Field(default=86400, ge=60)
    retention_interval_s: float = Field(default=300.0, gt=0)
    # Per-key request rates ("<count>/<sec|min|hour>"), counted in Redis across every API
    # process; a key created with `--rate` overrides the submission rate.
    submit_rate: str = "30/min"
    read_rate: str = "600/min"
    # Admission control: new submissions get 503 while more features than this wait in
    # the queues, or the oldest has waited longer than the limit.
    max_backlog: int = Field(default=2000, ge=1)
    max_queue_wait_s: float = Field(default=120.0, gt=0)
    # How long an API process trusts a key it looked up (a revocation takes this long).
    key_cache_s: float = Field(default=10.0, ge=0)

    # --- the operators' dashboard (/admin) -----------------------------------------
    # An admin logs in with an admin key; the session cookie lasts this long.
    admin_session_s: int = Field(default=12 * 3600, ge=60)
    # Send the session cookie over HTTPS only (set it when the proxy terminates TLS).
    admin_cookie_secure: bool = False
    # Where the dashboard links for Celery-level detail (Flower); empty: no link.
    flower_url: str | None = None
    # US dollars per million tokens, per model and direction, for the dashboard's cost
    # estimate (Gemini API paid tier list prices; a JSON object in the environment).
    prices_usd_per_mtok: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {
            "gemini-2.5-flash": {"input": 0.30, "output": 2.50},
            "gemini-2.5-flash-image": {"input": 0.30, "output": 30.0},
        }
    )

    # --- the workers ---------------------------------------------------------------
    worker_concurrency: int = Field(default=8, ge=1)
    # Worker processes `refract up` runs, each with worker_concurrency threads: a process
    # has one GIL, so on a host with several cores one process cannot use them all.
    worker_processes: int = Field(default=1, ge=1, le=64)
    # How much a worker process yields the CPU (Unix niceness, added at start): on a host
    # it shares with the API, a visitor's request then goes ahead of background features,
    # which are waiting on the model most of the time anyway.
    worker_nice: int = Field(default=10, ge=0, le=19)
    # "host:port" where `refract worker` also serves its own Prometheus metrics, without a
    # key (bind it where only the scraper reaches); unset: only the API's /metrics.
    metrics_bind: str | None = None
    # Redis hands an unacknowledged message to another worker after this. Lost work is
    # found by heartbeats within seconds (below), so this is only the backstop for a
    # message a dead worker had reserved but not started; it stays above the longest
    # feature deadline so that a task still working is not handed out again for nothing
    # (a copy would find the feature's heartbeat alive and do nothing).
    visibility_timeout_s: int = Field(default=600, ge=60)
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    # A job or feature still `queued` this long after it was enqueued is enqueued again.
    requeue_after_s: float = Field(default=120.0, gt=0)
    event_stream_maxlen: int = Field(default=1000, ge=10)

    # --- liveness and bounds (docs/failure-model.md) ----------------------------------
    # A running feature refreshes its heartbeat this often; one whose heartbeat is older
    # than the timeout is taken to be lost (its worker died) and is sent again. One whose
    # heartbeat is alive is never run twice, however slow.
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    heartbeat_timeout_s: float = Field(default=30.0, gt=0)
    # Claims of a feature without an outcome (each one a worker lost mid-run) before it
    # fails with `attempts_exhausted` and the job moves on.
    max_attempts: int = Field(default=3, ge=1, le=20)
    # Per feature: limiter waits, retries and calls must end within this many seconds,
    # or the feature fails with `deadline_exceeded`. A JSON object in the environment
    # changes the features it names; the others keep DEFAULT_DEADLINES_S.
    feature_deadlines_s: dict[str, float] = Field(default_factory=lambda: {})
    default_deadline_s: float = Field(default=180.0, gt=0)
    # How long a finished feature keeps trying to store its (paid) result through
    # database errors before giving up and leaving the feature to be run again.
    store_retry_s: float = Field(default=60.0, ge=0)
    snapshot_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    # --- logging -------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("gemini_api_key", "youtube_api_key", mode="after")
    @classmethod
    def _blank_key_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # A key of spaces (a stray blank in .env) is no key, like an empty variable.
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("feature_deadlines_s", mode="after")
    @classmethod
    def _with_default_deadlines(cls, value: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_DEADLINES_S, **value}

    @model_validator(mode="after")
    def _check_backend(self) -> Settings:
        if self.model_backend == "gemini" and self.gemini_api_key is None:
            raise ValueError(
                "REFRACT_MODEL_BACKEND=gemini but GEMINI_API_KEY (or GOOGLE_API_KEY) is unset "
                "or blank: set the key (README, Gemini API key) or unset "
                "REFRACT_MODEL_BACKEND to run the local backend"
            )
        if self.heartbeat_timeout_s < 2 * self.heartbeat_interval_s:
            # One late refresh must not make a live feature look lost.
            raise ValueError(
                "REFRACT_HEARTBEAT_TIMEOUT_S must be at least twice REFRACT_HEARTBEAT_INTERVAL_S"
            )
        if any(s <= 0 for s in self.feature_deadlines_s.values()):
            raise ValueError("REFRACT_FEATURE_DEADLINES_S must give positive seconds")
        if self.visibility_timeout_s <= self.longest_deadline_s:
            # Redis would hand every task still within its deadline to another worker.
            raise ValueError(
                "REFRACT_VISIBILITY_TIMEOUT_S must be above the longest feature deadline"
            )
        return self

    def deadline_s(self, feature: str) -> float:
        """How long ``feature`` may take, limiter waits and retries included."""
        return self.feature_deadlines_s.get(feature, self.default_deadline_s)

    @property
    def longest_deadline_s(self) -> float:
        """The longest deadline any feature has."""
        return max([self.default_deadline_s, *self.feature_deadlines_s.values()])

    def model_quotas(self) -> dict[str, tuple[int, int]]:
        """(requests, input tokens) per minute for the text and the image model."""
        text_rpm = self.gemini_rpm if self.text_model_rpm is None else self.text_model_rpm
        image_rpm = self.gemini_rpm if self.image_model_rpm is None else self.image_model_rpm
        return {
            self.text_model: (text_rpm, self.text_model_tpm),
            self.image_model: (image_rpm, self.image_model_tpm),
        }

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
    """Build settings from the environment, with explicit overrides (used by the CLI).

    Invalid settings raise :class:`StartupRefused` with one line naming each bad variable,
    so that a process refuses to start with a reason rather than a validation traceback.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise StartupRefused(describe_invalid(exc)) from None


def describe_invalid(exc: ValidationError) -> str:
    """One line for every error in ``exc``, naming the environment variable behind it."""
    reasons = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            name = str(error["loc"][0])
            variable = name if name.isupper() else f"REFRACT_{name.upper()}"
            message = f"{variable}: {message}"
        reasons.append(message)
    return "invalid configuration: " + "; ".join(reasons)

"""What ``celery inspect conf`` (and Flower's config page) would show keeps secrets out."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace

from celery.worker.control import conf as conf_command  # type: ignore[attr-defined]

from refract.core.settings import Settings
from refract.jobs.celery_app import settings_of
from worker.app import create_worker_app

SECRETS = ("db-pass-123", "redis-pass-456", "broker-pass-789", "sign-me-0", "gem-key-1")


def test_the_conf_a_worker_reports_holds_no_password_or_key(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        database_url="postgresql+psycopg://refract:db-pass-123@db.internal:5432/refract",
        redis_url="redis://:redis-pass-456@redis.internal:6379/0",
        broker_url="redis://:broker-pass-789@redis.internal:6379/1",
        secret_key="sign-me-0",
        gemini_api_key="gem-key-1",
        model_backend="gemini",
    )
    app = create_worker_app(settings)

    # The very function the worker runs for `celery inspect conf` (Flower asks the same).
    shown = json.dumps(conf_command(SimpleNamespace(app=app), with_defaults=True))

    leaked = [secret for secret in SECRETS if secret in shown]
    assert leaked == [], leaked
    assert "redis.internal" in shown  # the conf is there, only its secrets are masked
    # The settings stay reachable for the worker's own use.
    assert settings_of(app) is settings


def test_the_current_app_proxy_finds_the_settings(make_settings: Callable[..., Settings]) -> None:
    from celery import current_app

    settings = make_settings(redis_url="redis://127.0.0.1:6390/0")
    create_worker_app(settings)  # set as current, as in a worker process
    assert settings_of(current_app) is settings

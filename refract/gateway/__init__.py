"""The model gateway: one interface (``base.ModelBackend``) over Gemini and the local backend."""

from __future__ import annotations

import redis

from refract.core.settings import Settings
from refract.gateway.base import ModelBackend


def build_backend(settings: Settings, redis_client: redis.Redis[str] | None = None) -> ModelBackend:
    """The backend ``settings`` ask for; Gemini calls share a Redis rate limiter when given."""
    if settings.backend == "gemini":
        from refract.gateway.gemini import GeminiBackend
        from refract.gateway.limiter import RedisRateLimiter

        limiter = (
            RedisRateLimiter(redis_client, settings.gemini_rpm)
            if redis_client is not None and settings.gemini_rpm > 0
            else None
        )
        return GeminiBackend(settings, limiter=limiter)
    from refract.gateway.local import LocalBackend

    return LocalBackend(settings)

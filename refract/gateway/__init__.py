"""The model gateway: one interface (``base.ModelBackend``) over Gemini and the local backend."""

from __future__ import annotations

import redis

from refract.core.settings import Settings
from refract.gateway.base import ModelBackend
from refract.observability.usage import UsageCounter


def build_backend(settings: Settings, redis_client: redis.Redis[str] | None = None) -> ModelBackend:
    """The backend ``settings`` ask for; given Redis, Gemini calls share a rate limiter
    there, and every call is counted there for the dashboard."""
    usage = UsageCounter(redis_client) if redis_client is not None else None
    if settings.backend == "gemini":
        from refract.gateway.gemini import GeminiBackend
        from refract.gateway.limiter import Quota, RedisRateLimiter

        quotas = {model: Quota(rpm, tpm) for model, (rpm, tpm) in settings.model_quotas().items()}
        limiter = (
            RedisRateLimiter(redis_client, quotas, default=Quota(settings.gemini_rpm))
            if redis_client is not None and not all(q.unlimited for q in quotas.values())
            else None
        )
        return GeminiBackend(settings, limiter=limiter, usage=usage)
    from refract.gateway.local import LocalBackend

    return LocalBackend(settings, usage)

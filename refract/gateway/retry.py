"""The one place model calls are retried.

Neither the SDK nor Celery retries model calls: stacking retry loops multiplies attempts
and ignores the server's own retry delay. A call raises
:class:`~refract.core.errors.RetryableModelError` for a transient failure (429, 5xx, timeout);
:func:`call_with_retries` waits (the server's delay when it gave one, else exponential
backoff with full jitter) and tries again, and turns the last failure into a
:class:`~refract.core.errors.FeatureError` carrying the same stable code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from refract.core import deadline, interrupt
from refract.core.errors import FeatureError, RetryableModelError

if TYPE_CHECKING:
    from refract.core.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient model error."""

    max_attempts: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    # A server-given delay above this is not waited for: the call fails instead.
    max_retry_delay_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy configured by ``REFRACT_MODEL_*`` settings."""
        return cls(
            max_attempts=settings.model_max_attempts,
            backoff_base_s=settings.model_backoff_base_s,
            backoff_max_s=settings.model_backoff_max_s,
            max_retry_delay_s=settings.model_max_retry_delay_s,
        )

    def backoff_s(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full-jitter backoff after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return rand() * ceiling


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, RetryableModelError, float], None] | None = None,
    rand: Callable[[], float] = random.random,
) -> T:
    """Call ``fn`` until it succeeds, retrying :class:`RetryableModelError` per ``policy``.

    ``on_retry(attempt, error, delay_s)`` is called before each wait. Any other exception
    propagates at once. When attempts run out, or the server asks for a longer wait than
    ``policy.max_retry_delay_s``, a ``FeatureError`` with the error's code is raised.
    """
    attempts = max(1, policy.max_attempts)
    for attempt in range(1, attempts + 1):
        deadline.check("calling the model")
        interrupt.check("calling the model")
        try:
            return fn()
        except RetryableModelError as error:
            if attempt >= attempts:
                raise _exhausted(error, attempt) from error
            if error.retry_after is not None:
                if error.retry_after > policy.max_retry_delay_s:
                    raise FeatureError(
                        error.code,
                        f"{error.message} (the service asked to wait {error.retry_after:g}s, "
                        f"more than the {policy.max_retry_delay_s:g}s we wait; "
                        f"gave up after {attempt} attempt{'s' if attempt > 1 else ''})",
                        details={"attempts": attempt, "retry_after_s": error.retry_after},
                    ) from error
                delay = max(0.0, error.retry_after)
            else:
                delay = policy.backoff_s(attempt, rand)
            left = deadline.remaining_s()
            if left is not None and delay >= left:
                # Waiting would end past the feature's deadline: fail now, not later.
                raise deadline.exceeded(f"waiting to retry after {error.code}") from error
            if on_retry is not None:
                on_retry(attempt, error, delay)
            # A canceled feature does not sit out a long backoff before it stops.
            interrupt.wait(delay, sleep, f"waiting to retry after {error.code}")
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _exhausted(error: RetryableModelError, attempts: int) -> FeatureError:
    plural = "s" if attempts > 1 else ""
    return FeatureError(
        error.code,
        f"{error.message} (gave up after {attempts} attempt{plural})",
        details={"attempts": attempts},
    )

"""Reading Gemini's answers: errors, finish reasons, safety blocks, text and usage.

Finish reasons, decided once:

* a refused prompt (``prompt_feedback.block_reason``) or a candidate stopped for
  SAFETY, IMAGE_SAFETY, PROHIBITED_CONTENT, IMAGE_PROHIBITED_CONTENT, BLOCKLIST, SPII,
  RECITATION, IMAGE_RECITATION or MODEL_ARMOR → ``blocked`` / ``safety_block`` (a policy
  refusal, not a fault; retrying would not help);
* an image model that answers without an image (NO_IMAGE, IMAGE_OTHER, or text only
  after STOP) → ``failed`` / ``no_image``, with what the model said in the message;
* no candidates, no text, or text that is not a valid result → ``failed`` /
  ``invalid_model_output``.
"""

from __future__ import annotations

import re
from typing import Any

from google.genai import errors, types
from pydantic import ValidationError

from refract.core.errors import FeatureError, RetryableModelError
from refract.gateway.base import Usage

BLOCK_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
NO_IMAGE_FINISH_REASONS = frozenset({"NO_IMAGE", "IMAGE_OTHER"})
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def client_error(exc: errors.ClientError) -> Exception:
    """A 4xx from the SDK as ours: 429 and 408 retry, the rest fail at once."""
    if exc.code == 429:
        return RetryableModelError(
            "rate_limited",
            f"Gemini rate limit or quota reached: {exc.message}",
            retry_after=retry_delay_s(exc.details),
        )
    if exc.code == 408:
        return RetryableModelError("model_timeout", f"Gemini timed out: {exc.message}")
    return FeatureError(
        "model_request_rejected",
        f"Gemini rejected the request ({exc.code} {exc.status}): {exc.message}",
        details={"http_status": exc.code, "status": exc.status},
    )


def retry_delay_s(body: Any) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in an error body (``"26s"`` → 26.0), if any."""
    error = body.get("error", body) if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for item in details if isinstance(details, list) else []:
        if not isinstance(item, dict) or not str(item.get("@type", "")).endswith(
            "google.rpc.RetryInfo"
        ):
            continue
        delay = item.get("retryDelay")
        if isinstance(delay, str) and (match := _DELAY.match(delay)):
            return float(match.group(1))
        if isinstance(delay, dict):  # the proto form {"seconds": 26, "nanos": 0}
            return float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
    return None


def usage_of(response: types.GenerateContentResponse) -> Usage:
    """The tokens a response says it cost (thoughts count as output)."""
    meta = response.usage_metadata
    if meta is None:
        return Usage()
    out = meta.candidates_token_count
    if meta.thoughts_token_count:  # thinking models bill their thoughts as output
        out = (out or 0) + meta.thoughts_token_count
    return Usage(input_tokens=meta.prompt_token_count, output_tokens=out)


def sum_usage(spent: list[Usage]) -> Usage:
    """Every call a result cost, including a rejected first answer."""

    def total(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    return Usage(
        input_tokens=total([u.input_tokens for u in spent]),
        output_tokens=total([u.output_tokens for u in spent]),
    )


def checked_candidate(response: types.GenerateContentResponse) -> types.Candidate:
    """The first candidate, after safety blocks and missing images are raised."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = enum_name(feedback.block_reason)
        raise FeatureError(
            "safety_block",
            f"Gemini refused the request ({reason})"
            + (f": {feedback.block_reason_message}" if feedback.block_reason_message else ""),
            status="blocked",
            details={"reason": reason},
        )
    if not response.candidates:
        raise FeatureError("invalid_model_output", "Gemini returned no candidates")
    candidate = response.candidates[0]
    finish = finish_reason(candidate)
    if finish in BLOCK_FINISH_REASONS:
        raise FeatureError(
            "safety_block",
            f"Gemini stopped its answer on policy grounds ({finish})",
            status="blocked",
            details={"reason": finish},
        )
    if finish in NO_IMAGE_FINISH_REASONS:
        raise FeatureError(
            "no_image",
            f"the image model produced no image ({finish})",
            details={"finish_reason": finish, "note": text_of(candidate)},
        )
    return candidate


def text_of(candidate: types.Candidate) -> str:
    """The candidate's answer text, without thought parts."""
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    return "".join(p.text for p in parts if p.text and not p.thought).strip()


def finish_reason(candidate: types.Candidate) -> str | None:
    """The candidate's finish reason by name, if it has one."""
    return enum_name(candidate.finish_reason) if candidate.finish_reason else None


def enum_name(value: Any) -> str:
    """An SDK enum's value (or the value itself) as text."""
    return str(getattr(value, "value", value))


def first_error(exc: ValidationError) -> str:
    """The first of a pydantic error's problems, readably."""
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first.get("loc", ())) or "reply"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"

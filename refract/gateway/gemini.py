"""The Gemini backend: each feature is one ``generate_content`` call through google-genai.

Every call goes through the shared rate limiter (when one is given) and the single retry
loop in :mod:`refract.gateway.retry`; the SDK's own retries stay off. Replies are read
defensively: JSON is validated here against the feature's result schema (the SDK's
``response.parsed`` is silently ``None`` on invalid JSON), and safety refusals become a
``blocked`` feature rather than a crash.

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

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, ValidationError

from refract.errors import FeatureError, RetryableModelError
from refract.gateway.base import ImageBlob, ModelBackend, ModelReply, Usage, VideoMaterial
from refract.gateway.limiter import RateLimiter
from refract.gateway.retry import RetryPolicy, call_with_retries
from refract.prompts import Prompt, load_prompt
from refract.results import (
    CaptionResult,
    CommentsResult,
    SummaryResult,
    ThumbnailResult,
    format_timestamp,
    parse_timestamp,
)
from refract.settings import Settings

try:  # google-genai 3.x talks through httpx2, a fork with its own exception classes.
    import httpx2

    _TIMEOUT_ERRORS: tuple[type[Exception], ...] = (
        httpx.TimeoutException,
        httpx2.TimeoutException,
    )
    _TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - older SDKs use httpx alone
    _TIMEOUT_ERRORS = (httpx.TimeoutException,)
    _TRANSPORT_ERRORS = (httpx.TransportError,)

log = logging.getLogger(__name__)
R = TypeVar("R", bound=BaseModel)

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
# Low for faithful analysis, a little higher where the wording is meant to charm.
TEMPERATURES = {"summary": 0.3, "comments": 0.2, "thumbnail": 0.4, "caption": 0.7}
MAX_COMMENT_CHARS = 1500
MAX_STYLE_PROMPT_CHARS = 500
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class GeminiBackend(ModelBackend):
    """Gemini through the google-genai SDK: one prompt and one call per feature."""

    name = "gemini"

    def __init__(
        self,
        settings: Settings,
        *,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Build the SDK clients; ``limiter`` gates every call, ``sleep`` waits retries."""
        if settings.gemini_api_key is None:
            raise ValueError("the Gemini backend needs GEMINI_API_KEY or GOOGLE_API_KEY")
        self.settings = settings
        self.policy = RetryPolicy.from_settings(settings)
        self._limiter = limiter
        self._sleep = sleep
        self._text_client = self._client(settings.model_timeout_s)
        self._image_client = self._client(settings.image_model_timeout_s)

    def _client(self, timeout_s: float) -> genai.Client:
        key = self.settings.gemini_api_key
        assert key is not None
        options = types.HttpOptions(
            base_url=self.settings.gemini_base_url,
            api_version=self.settings.gemini_api_version,
            timeout=int(timeout_s * 1000),  # milliseconds; without it the SDK waits forever
        )
        return genai.Client(vertexai=False, api_key=key.get_secret_value(), http_options=options)

    def close(self) -> None:
        """Release the SDK clients' connection pools."""
        self._text_client.close()
        self._image_client.close()

    # --- text features -------------------------------------------------------------

    def summarize_video(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """``summary``: the video by URL (a ``file_data`` part), else its transcript."""
        prompt = load_prompt("summary")
        length_s = video.duration_s
        if video.url:
            video_part = types.Part(
                file_data=types.FileData(file_uri=video.url, mime_type="video/*")
            )
            text = prompt.render(
                title=video.title or "(unknown)",
                language=language,
                source="the attached video",
                length=_length(length_s),
            )
            parts = [video_part, types.Part(text=text)]
        elif video.transcript:
            length_s = length_s or video.transcript_span_s
            lines = "\n".join(
                f"[{format_timestamp(line.start)}] {line.text}" for line in video.transcript
            )
            text = prompt.render(
                title=video.title or "(unknown)",
                language=language,
                source="the transcript in the next part; each line starts with its [mm:ss] time",
                length=_length(length_s),
            )
            parts = [
                types.Part(text=text),
                types.Part(text=f"<<<TRANSCRIPT\n{lines}\nTRANSCRIPT>>>"),
            ]
        else:
            raise FeatureError(
                "no_source_material", "the video has neither a URL nor a transcript to summarize"
            )
        result, reply = self._structured(prompt, parts, SummaryResult)
        if length_s:
            # A chapter the model placed after the end of the video cannot be played.
            result.chapters = [
                c for c in result.chapters if parse_timestamp(c.start) <= length_s + 1
            ]
        result.chapters.sort(key=lambda c: parse_timestamp(c.start))
        reply.data = result.model_dump(mode="json")
        return reply

    def analyze_comments(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """``comments``: the comments go in as a delimited JSON array, as data."""
        if not video.comments:
            raise FeatureError("no_comments", "the video has no comments to analyse")
        prompt = load_prompt("comments")
        items = [
            {"text": c.text[:MAX_COMMENT_CHARS], "likes": c.likes, "replies": c.replies}
            for c in video.comments
        ]
        # ">>>" only occurs inside JSON strings; escaping it keeps a comment from faking
        # the end marker and smuggling text out of the data block.
        data = json.dumps(items, ensure_ascii=False).replace(">>>", "\\u003e\\u003e\\u003e")
        text = prompt.render(title=video.title or "(unknown)", language=language, count=len(items))
        parts = [types.Part(text=text), types.Part(text=f"<<<COMMENTS\n{data}\nCOMMENTS>>>")]
        result, reply = self._structured(prompt, parts, CommentsResult)
        result.comment_count = len(items)
        sentiment = result.sentiment
        total = sentiment.positive + sentiment.neutral + sentiment.negative
        if total > 0:  # shares must add up to one; models are often a little off
            sentiment.positive /= total
            sentiment.neutral /= total
            sentiment.negative /= total
        reply.data = result.model_dump(mode="json")
        return reply

    def analyze_thumbnail(self, image: ImageBlob, *, title: str, language: str) -> ModelReply:
        """``thumbnail``: the image inline, the title as context."""
        prompt = load_prompt("thumbnail")
        parts = [
            _image_part(image),
            types.Part(text=prompt.render(title=title or "(unknown)", language=language)),
        ]
        return self._structured(prompt, parts, ThumbnailResult)[1]

    def caption_photo(self, image: ImageBlob, *, language: str) -> ModelReply:
        """``caption``: the visitor's photo inline."""
        prompt = load_prompt("caption")
        parts = [_image_part(image), types.Part(text=prompt.render(language=language))]
        return self._structured(prompt, parts, CaptionResult)[1]

    # --- image features ------------------------------------------------------------

    def stylize_face(self, face: ImageBlob) -> ModelReply:
        """``stylize``: the cropped face → a 3D-character portrait from the image model."""
        prompt = load_prompt("stylize")
        return self._image(prompt, [_image_part(face)], prompt.render())

    def compose_card(
        self, portrait: ImageBlob, *, caption: str, prompt: str, language: str
    ) -> ModelReply:
        """``card``: portrait + caption + the visitor's style request → the card image."""
        template = load_prompt("card")
        style = prompt.strip()[:MAX_STYLE_PROMPT_CHARS].replace("STYLE>>>", "STYLE >>>")
        text = template.render(caption=caption.strip(), prompt=style, language=language)
        return self._image(template, [_image_part(portrait)], text)

    # --- calls and replies ---------------------------------------------------------

    def _structured(
        self, prompt: Prompt, parts: list[types.Part], schema: type[R]
    ) -> tuple[R, ModelReply]:
        model = self.settings.text_model
        config = types.GenerateContentConfig(
            system_instruction=prompt.system,
            response_mime_type="application/json",
            response_schema=schema,
            temperature=TEMPERATURES.get(prompt.feature),
        )
        response = self._generate(
            self._text_client, model, parts, config, self.settings.model_timeout_s
        )
        candidate = _checked_candidate(response)
        text = _text_of(candidate)
        finish = _finish_reason(candidate)
        if not text:
            raise FeatureError(
                "invalid_model_output",
                f"the model returned no text (finish reason {finish or 'unknown'})",
                details={"finish_reason": finish},
            )
        try:
            result = schema.model_validate_json(text)
        except ValidationError as exc:
            cut = " (it was cut off at the output token limit)" if finish == "MAX_TOKENS" else ""
            raise FeatureError(
                "invalid_model_output",
                f"the model's reply is not a valid {prompt.feature} result{cut}: "
                f"{_first_error(exc)}",
                details={"finish_reason": finish, "excerpt": text[:500]},
            ) from exc
        return result, self._reply(response, prompt, result.model_dump(mode="json"), model)

    def _image(self, prompt: Prompt, images: list[types.Part], text: str) -> ModelReply:
        model = self.settings.image_model
        # The rules go in the prompt text itself, not as a system instruction: image models
        # do not all honour system instructions, and these rules must hold.
        parts = [*images, types.Part(text=f"{prompt.system}\n\n{text}")]
        config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
        response = self._generate(
            self._image_client, model, parts, config, self.settings.image_model_timeout_s
        )
        candidate = _checked_candidate(response)
        note = _text_of(candidate)
        finish = _finish_reason(candidate)
        for part in (candidate.content.parts or []) if candidate.content else []:
            if part.inline_data is not None and part.inline_data.data:
                image = ImageBlob(part.inline_data.data, part.inline_data.mime_type or "image/png")
                reply = self._reply(response, prompt, {"note": note or None}, model)
                reply.image = image
                return reply
        said = f": {note[:300]}" if note else ""
        raise FeatureError(
            "no_image",
            f"the image model answered without an image (finish reason {finish or 'unknown'})"
            f"{said}",
            details={"finish_reason": finish, "note": note},
        )

    def _reply(
        self,
        response: types.GenerateContentResponse,
        prompt: Prompt,
        data: dict[str, Any],
        model: str,
    ) -> ModelReply:
        meta = response.usage_metadata
        usage = Usage()
        if meta is not None:
            out = meta.candidates_token_count
            if meta.thoughts_token_count:
                out = (out or 0) + meta.thoughts_token_count
            usage = Usage(input_tokens=meta.prompt_token_count, output_tokens=out)
        return ModelReply(
            data=data,
            backend=self.name,
            model=response.model_version or model,
            usage=usage,
            prompt_version=prompt.version,
        )

    def _generate(
        self,
        client: genai.Client,
        model: str,
        parts: list[types.Part],
        config: types.GenerateContentConfig,
        timeout_s: float,
    ) -> types.GenerateContentResponse:
        contents = [types.Content(role="user", parts=parts)]

        def attempt() -> types.GenerateContentResponse:
            if self._limiter is not None:
                self._limiter.acquire(model, timeout_s=timeout_s)
            try:
                return client.models.generate_content(model=model, contents=contents, config=config)
            except errors.ClientError as exc:
                raise _client_error(exc) from exc
            except errors.ServerError as exc:
                raise RetryableModelError(
                    "model_unavailable", f"Gemini failed ({exc.code} {exc.status}): {exc.message}"
                ) from exc
            except errors.APIError as exc:
                raise FeatureError(
                    "model_error", f"Gemini answered {exc.code} {exc.status}: {exc.message}"
                ) from exc
            except _TIMEOUT_ERRORS as exc:
                raise RetryableModelError(
                    "model_timeout", f"Gemini did not answer within {timeout_s:g}s"
                ) from exc
            except _TRANSPORT_ERRORS as exc:
                raise RetryableModelError(
                    "model_unavailable", f"could not reach Gemini: {type(exc).__name__}: {exc}"
                ) from exc
            except Exception as exc:  # the SDK may raise anything; report it, do not crash
                raise FeatureError(
                    "model_error", f"the Gemini SDK failed: {type(exc).__name__}: {exc}"
                ) from exc

        def on_retry(attempt_no: int, error: RetryableModelError, delay_s: float) -> None:
            log.warning(
                "gemini call to %s failed (attempt %d, %s: %s); retrying in %.2fs",
                model,
                attempt_no,
                error.code,
                error.message,
                delay_s,
            )

        return call_with_retries(attempt, self.policy, sleep=self._sleep, on_retry=on_retry)


def _client_error(exc: errors.ClientError) -> Exception:
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


def _checked_candidate(response: types.GenerateContentResponse) -> types.Candidate:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = _enum_name(feedback.block_reason)
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
    finish = _finish_reason(candidate)
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
            details={"finish_reason": finish, "note": _text_of(candidate)},
        )
    return candidate


def _text_of(candidate: types.Candidate) -> str:
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    return "".join(p.text for p in parts if p.text and not p.thought).strip()


def _finish_reason(candidate: types.Candidate) -> str | None:
    return _enum_name(candidate.finish_reason) if candidate.finish_reason else None


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value))


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first.get("loc", ())) or "reply"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _image_part(image: ImageBlob) -> types.Part:
    return types.Part.from_bytes(data=image.data, mime_type=image.mime_type)


def _length(seconds: float | None) -> str:
    return format_timestamp(seconds) if seconds else "unknown"

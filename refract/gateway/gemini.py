"""The Gemini backend: each feature is one ``generate_content`` call through google-genai.

Every call goes through the shared rate limiter (when one is given) and the single retry
loop in :mod:`refract.gateway.retry`; the SDK's own retries stay off. Replies are read
defensively: JSON is validated here against the feature's result schema (the SDK's
``response.parsed`` is silently ``None`` on invalid JSON), and safety refusals become a
``blocked`` feature rather than a crash.
How replies are read (finish reasons, safety, usage) is in :mod:`gemini_replies`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import structlog
from google import genai
from google.genai import errors, types
from google.genai._transformers import t_schema
from pydantic import BaseModel, ValidationError

from refract.core import deadline
from refract.core.errors import FeatureError, RetryableModelError
from refract.core.material import ImageBlob, VideoMaterial
from refract.core.results import (
    CaptionResult,
    CommentsResult,
    SummaryResult,
    ThumbnailResult,
    format_timestamp,
)
from refract.core.settings import Settings
from refract.gateway.base import ModelBackend, ModelReply, Usage
from refract.gateway.checks import ResultCheckFailed, check_comments, check_summary
from refract.gateway.gemini_calls import counted
from refract.gateway.gemini_replies import (
    checked_candidate,
    client_error,
    finish_reason,
    first_error,
    sum_usage,
    text_of,
    usage_of,
)
from refract.gateway.limiter import RateLimiter
from refract.gateway.prompts import Prompt, data_block, load_prompt
from refract.gateway.retry import RetryPolicy, call_with_retries
from refract.gateway.tokens import estimate_input_tokens
from refract.imaging.subjects import Subject
from refract.observability.usage import UsageCounter

try:  # google-genai 3.x talks through httpx2, a fork with its own exception classes.
    import httpx2

    _TIMEOUT_ERRORS: tuple[type[Exception], ...] = (
        httpx.TimeoutException,
        httpx2.TimeoutException,
    )
    _TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError, httpx2.TransportError)
    _Limits: type[Any] = httpx2.Limits
except ImportError:  # pragma: no cover - older SDKs use httpx alone
    _Limits = httpx.Limits
    _TIMEOUT_ERRORS = (httpx.TimeoutException,)
    _TRANSPORT_ERRORS = (httpx.TransportError,)

log = structlog.get_logger(__name__)
R = TypeVar("R", bound=BaseModel)

# Low for faithful analysis, a little higher where the wording is meant to charm.
TEMPERATURES = {"summary": 0.3, "comments": 0.2, "thumbnail": 0.4, "caption": 0.7}
MAX_COMMENT_CHARS = 1500
TRANSCRIPT_TAIL_S = 30.0
MAX_STYLE_PROMPT_CHARS = 500


class GeminiBackend(ModelBackend):
    """Gemini through the google-genai SDK: one prompt and one call per feature."""

    name = "gemini"

    def __init__(
        self,
        settings: Settings,
        *,
        limiter: RateLimiter | None = None,
        usage: UsageCounter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Build the SDK clients; ``limiter`` gates every call, ``usage`` counts them for
        the dashboard, ``sleep`` waits retries."""
        if settings.gemini_api_key is None:
            raise ValueError("the Gemini backend needs GEMINI_API_KEY or GOOGLE_API_KEY")
        self.settings = settings
        self.policy = RetryPolicy.from_settings(settings)
        self._limiter = limiter
        self._usage = usage
        self._sleep = sleep
        self._text_client = self._client(settings.model_timeout_s)
        # Text calls' configurations by prompt and schema (see _text_config); a config is
        # never changed once made (a bounded call gets a copy), so threads share them.
        self._configs: dict[tuple[str, str, str, type[BaseModel]], types.GenerateContentConfig] = {}
        self._image_client = self._client(settings.image_model_timeout_s)

    def _client(self, timeout_s: float) -> genai.Client:
        key = self.settings.gemini_api_key
        assert key is not None
        # Every worker thread may be waiting on this client at once: a pool that kept
        # fewer idle connections than that (httpx keeps 20) would close the extra ones
        # after each call and open new ones for the next.
        pooled = max(self.settings.worker_concurrency + 4, 20)
        options = types.HttpOptions(
            base_url=self.settings.gemini_base_url,
            api_version=self.settings.gemini_api_version,
            timeout=int(timeout_s * 1000),  # milliseconds; without it the SDK waits forever
            client_args={
                "limits": _Limits(
                    max_connections=max(pooled, 100), max_keepalive_connections=pooled
                )
            },
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
                title=data_block("TITLE", video.title or "(unknown)"),
                language=language,
                source="the attached video",
                length=_length(length_s),
            )
            parts = [video_part, types.Part(text=text)]
        elif video.transcript:
            # The last line's own length is unknown: allow a little past its start.
            length_s = length_s or video.transcript_span_s + TRANSCRIPT_TAIL_S
            lines = [f"[{format_timestamp(line.start)}] {line.text}" for line in video.transcript]
            text = prompt.render(
                title=data_block("TITLE", video.title or "(unknown)"),
                language=language,
                source="the transcript in the next part; each line starts with its [mm:ss] time",
                length=_length(length_s),
            )
            parts = [
                types.Part(text=text),
                types.Part(text=data_block("TRANSCRIPT", lines)),
            ]
        else:
            raise FeatureError(
                "no_source_material", "the video has neither a URL nor a transcript to summarize"
            )
        duration = length_s
        return self._structured(
            prompt,
            parts,
            SummaryResult,
            check=lambda result: check_summary(result, duration_s=duration),
        )

    def analyze_comments(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """``comments``: the comments go in as a delimited JSON array, as data."""
        if not video.comments:
            raise FeatureError("no_comments", "the video has no comments to analyse")
        prompt = load_prompt("comments")
        items = [
            {"text": c.text[:MAX_COMMENT_CHARS], "likes": c.likes, "replies": c.replies}
            for c in video.comments
        ]
        text = prompt.render(
            title=data_block("TITLE", video.title or "(unknown)"),
            language=language,
            count=len(items),
        )
        parts = [types.Part(text=text), types.Part(text=data_block("COMMENTS", items))]
        return self._structured(
            prompt,
            parts,
            CommentsResult,
            check=lambda result: check_comments(result, comment_count=len(items)),
        )

    def analyze_thumbnail(self, image: ImageBlob, *, title: str, language: str) -> ModelReply:
        """``thumbnail``: the image inline, the title as context."""
        prompt = load_prompt("thumbnail")
        parts = [
            _image_part(image),
            types.Part(
                text=prompt.render(
                    title=data_block("TITLE", title or "(unknown)"), language=language
                )
            ),
        ]
        return self._structured(prompt, parts, ThumbnailResult)

    def caption_photo(self, image: ImageBlob, *, language: str) -> ModelReply:
        """``caption``: the visitor's photo inline."""
        prompt = load_prompt("caption")
        parts = [_image_part(image), types.Part(text=prompt.render(language=language))]
        return self._structured(prompt, parts, CaptionResult)

    # --- image features ------------------------------------------------------------

    def stylize_face(self, face: ImageBlob, *, language: str = "en") -> ModelReply:
        """``stylize``: the head-and-shoulders crop → a 3D-character portrait."""
        prompt = load_prompt("stylize")
        return self._image(prompt, [_image_part(face)], prompt.render())

    def stylize_photo(
        self, photo: ImageBlob, subject: Subject, *, language: str = "en"
    ) -> ModelReply:
        """``stylize`` without a usable frontal face: the whole photo, with a prompt for that
        case (``stylize_photo``): the model finds the people itself; it is told how many
        the offline search saw, as a hint."""
        prompt = load_prompt("stylize_photo")
        text = prompt.render(people=subject.people, found_by=subject.method or "unknown")
        return self._image(prompt, [_image_part(photo)], text)

    def compose_card(
        self,
        portrait: ImageBlob,
        *,
        caption: str,
        prompt: str,
        language: str,
        from_photo: bool = False,
    ) -> ModelReply:
        """``card``: portrait + caption + the visitor's style request → the card image;
        ``from_photo``: the picture is the visitor's photo itself (nobody to restyle), with
        the ``card_photo`` prompt."""
        template = load_prompt("card_photo" if from_photo else "card")
        text = template.render(
            caption=data_block("CAPTION", caption.strip()),
            prompt=data_block("STYLE", prompt.strip()[:MAX_STYLE_PROMPT_CHARS]),
            language=language,
        )
        return self._image(template, [_image_part(portrait)], text)

    # --- calls and replies ---------------------------------------------------------

    def _structured(
        self,
        prompt: Prompt,
        parts: list[types.Part],
        schema: type[R],
        *,
        check: Callable[[R], R] | None = None,
    ) -> ModelReply:
        """Ask for a ``schema`` result; a reply that fails parsing or ``check`` is asked
        for once more, then the feature fails with ``invalid_model_output``."""
        model = self.settings.text_model
        config = self._text_config(prompt, schema)
        spent: list[Usage] = []
        for attempt in (1, 2):
            response = self._generate(
                self._text_client, model, parts, config, self.settings.model_timeout_s
            )
            spent.append(usage_of(response))
            try:
                result = self._parse(response, prompt, schema)
                if check is not None:
                    result = check(result)
            except (FeatureError, ResultCheckFailed) as exc:
                invalid = isinstance(exc, ResultCheckFailed) or exc.code == "invalid_model_output"
                if not invalid:
                    assert isinstance(exc, FeatureError)
                    raise _with_usage(exc, spent, model) from None
                message = str(exc) if isinstance(exc, ResultCheckFailed) else exc.message
                if attempt == 2:
                    failure = FeatureError(
                        "invalid_model_output",
                        f"the model's {prompt.feature} result failed its checks twice: {message}",
                    )
                    raise _with_usage(failure, spent, model) from exc
                log.warning(
                    "model_result_rejected", feature=prompt.feature, model=model, reason=message
                )
                continue
            reply = self._reply(response, prompt, result.model_dump(mode="json"), model)
            reply.usage = sum_usage(spent)
            return reply
        raise AssertionError("unreachable")  # the loop returns or raises

    def _text_config(self, prompt: Prompt, schema: type[BaseModel]) -> types.GenerateContentConfig:
        """The call's configuration, made once per prompt version and schema.

        The SDK turns a pydantic ``response_schema`` into its ``Schema`` on every request
        (a JSON schema generated, walked and copied: CPU that every worker thread waits
        on, under the GIL); given that ``Schema`` it only checks it.
        """
        key = (prompt.feature, prompt.version, prompt.system, schema)
        config = self._configs.get(key)
        if config is None:
            config = types.GenerateContentConfig(
                system_instruction=prompt.system,
                response_mime_type="application/json",
                response_schema=t_schema(self._text_client._api_client, schema),
                temperature=TEMPERATURES.get(prompt.feature),
                automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            )
            self._configs[key] = config
        return config

    def _parse(self, response: types.GenerateContentResponse, prompt: Prompt, schema: type[R]) -> R:
        candidate = checked_candidate(response)
        text = text_of(candidate)
        finish = finish_reason(candidate)
        if not text:
            raise FeatureError(
                "invalid_model_output",
                f"the model returned no text (finish reason {finish or 'unknown'})",
                details={"finish_reason": finish},
            )
        try:
            return schema.model_validate_json(text)
        except ValidationError as exc:
            cut = " (it was cut off at the output token limit)" if finish == "MAX_TOKENS" else ""
            raise FeatureError(
                "invalid_model_output",
                f"the model's reply is not a valid {prompt.feature} result{cut}: "
                f"{first_error(exc)}",
                details={"finish_reason": finish, "excerpt": text[:500]},
            ) from exc

    def _image(self, prompt: Prompt, images: list[types.Part], text: str) -> ModelReply:
        model = self.settings.image_model
        # The rules go in the prompt text itself, not as a system instruction: image models
        # do not all honour system instructions, and these rules must hold.
        parts = [*images, types.Part(text=f"{prompt.system}\n\n{text}")]
        config = types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        response = self._generate(
            self._image_client, model, parts, config, self.settings.image_model_timeout_s
        )
        try:
            candidate = checked_candidate(response)
        except FeatureError as exc:
            raise _with_usage(exc, [usage_of(response)], model) from None
        note = text_of(candidate)
        finish = finish_reason(candidate)
        for part in (candidate.content.parts or []) if candidate.content else []:
            if part.inline_data is not None and part.inline_data.data:
                image = ImageBlob(part.inline_data.data, part.inline_data.mime_type or "image/png")
                reply = self._reply(response, prompt, {"note": note or None}, model)
                reply.image = image
                return reply
        said = f": {note[:300]}" if note else ""
        failure = FeatureError(
            "no_image",
            f"the image model answered without an image (finish reason {finish or 'unknown'})"
            f"{said}",
            details={"finish_reason": finish, "note": note},
        )
        raise _with_usage(failure, [usage_of(response)], model)

    def _reply(
        self,
        response: types.GenerateContentResponse,
        prompt: Prompt,
        data: dict[str, Any],
        model: str,
    ) -> ModelReply:
        return ModelReply(
            data=data,
            backend=self.name,
            model=response.model_version or model,
            usage=usage_of(response),
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

        estimate = estimate_input_tokens(parts)

        def attempt() -> types.GenerateContentResponse:
            booking = None
            if self._limiter is not None:
                booking = self._limiter.acquire(
                    model,
                    timeout_s=deadline.bounded(timeout_s, "waiting for the rate limit"),
                    tokens=estimate,
                )
            # The call gets what is left of the feature's time if that is less than its own
            # timeout (the SDK takes milliseconds, per request).
            call_timeout_s = deadline.bounded(timeout_s, "calling the model")
            bounded_config = config
            if call_timeout_s < timeout_s:
                http = types.HttpOptions(timeout=max(1, int(call_timeout_s * 1000)))
                bounded_config = config.model_copy(update={"http_options": http})
            try:
                response = counted(
                    model,
                    lambda: client.models.generate_content(
                        model=model, contents=contents, config=bounded_config
                    ),
                    self._usage,
                )
            except errors.ClientError as exc:
                failure = client_error(exc)
                if exc.code == 429 and self._limiter is not None:
                    # Someone else on the project used the quota: every worker here waits
                    # it out, in the order they were booked, instead of each finding out.
                    delay = getattr(failure, "retry_after", None) or self.policy.backoff_base_s
                    self._limiter.hold_off(model, delay)
                raise failure from exc
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
                    "model_timeout", f"Gemini did not answer within {call_timeout_s:g}s"
                ) from exc
            except _TRANSPORT_ERRORS as exc:
                # The exception's text (host, address) is for the logs, not for clients.
                log.warning("model_unreachable", model=model, error=f"{type(exc).__name__}: {exc}")
                raise RetryableModelError("model_unavailable", "could not reach Gemini") from exc
            except Exception as exc:  # the SDK may raise anything; report it, do not crash
                log.exception("model_sdk_failed", model=model)
                raise FeatureError("model_error", "the Gemini SDK failed unexpectedly") from exc
            if booking is not None and self._limiter is not None:
                # The window counts what the call really cost, not the estimate.
                self._limiter.settle(booking, usage_of(response).input_tokens or 0)
            return response

        def on_retry(attempt_no: int, error: RetryableModelError, delay_s: float) -> None:
            log.warning(
                "model_call_retry",
                model=model,
                attempt=attempt_no,
                code=error.code,
                error=error.message,
                delay_s=round(delay_s, 2),
            )

        return call_with_retries(attempt, self.policy, sleep=self._sleep, on_retry=on_retry)


def _with_usage(error: FeatureError, spent: list[Usage], model: str) -> FeatureError:
    """``error`` carrying what the calls behind it cost: refused answers are billed too."""
    usage = sum_usage(spent)
    error.details.update(
        model=model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens
    )
    return error


def _image_part(image: ImageBlob) -> types.Part:
    return types.Part.from_bytes(data=image.data, mime_type=image.mime_type)


def _length(seconds: float | None) -> str:
    return format_timestamp(seconds) if seconds else "unknown"

"""A fake Gemini Developer API on 127.0.0.1, for the real google-genai SDK to talk to.

It serves ``POST /{v1,v1beta}/models/<model>:generateContent`` with the response shapes
the real service uses (see ``EXTERNAL_APIS.md``): JSON that fits the request's
``responseSchema``, inline PNG images when ``responseModalities`` asks for them, usage
metadata, finish reasons, and error bodies with ``RetryInfo``. Tests script it to be
slow, rate-limited, failing or blocking, and read back every request it received.

It runs in the pytest process on daemon threads, so Celery worker subprocesses can call
it over HTTP while the test inspects ``fake.requests``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import Any

from PIL import Image

from tests.support.fakes.server import FakeServer

_PATH = re.compile(r"^/(?P<version>v1|v1beta|v1alpha)/models/(?P<model>[^/:]+):generateContent$")


@cache
@cache
def gradient_png(size: int = 256) -> bytes:
    """A real, decodable PNG: a colour gradient ``size`` pixels square (made once per
    size: the fake answers after its latency, not after drawing ~5 ms of pixels)."""
    image = Image.new("RGB", (size, size))
    image.putdata(
        [(x * 255 // size, y * 255 // size, 160) for y in range(size) for x in range(size)]
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    api_version: str | None
    model: str | None
    headers: dict[str, str]
    json: dict[str, Any]
    raw: bytes
    received_at: float = field(default_factory=time.monotonic)

    @property
    def parts(self) -> list[dict[str, Any]]:
        """Every part of every content in the request, in order."""
        return [p for c in self.json.get("contents", []) for p in c.get("parts", [])]

    @property
    def texts(self) -> list[str]:
        """The text parts of the request's contents."""
        return [p["text"] for p in self.parts if "text" in p]

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """``(mime type, bytes)`` of every ``inlineData`` part sent."""
        found = []
        for part in self.parts:
            if "inlineData" in part:
                inline = part["inlineData"]
                # The SDK sends the inside of inlineData snake_case, as it does fileData.
                mime = inline.get("mimeType", inline.get("mime_type", ""))
                found.append((mime, _b64decode(inline.get("data", ""))))
        return found

    @property
    def system_text(self) -> str:
        """The system instruction's text ('' without one)."""
        parts = self.json.get("systemInstruction", {}).get("parts", [])
        return "\n".join(p.get("text", "") for p in parts)

    @property
    def generation_config(self) -> dict[str, Any]:
        """``generationConfig`` as sent ({} without one)."""
        return dict(self.json.get("generationConfig", {}))


@dataclass(frozen=True)
class Reply:
    """One scripted answer; build it with the class methods."""

    status: int = 200
    body: dict[str, Any] | None = None  # None: the default answer for the request
    delay_s: float = 0.0

    @classmethod
    def default(cls) -> Reply:
        """The fake's normal answer (schema-shaped JSON, an image, or text)."""
        return cls()

    @classmethod
    def hang(cls, seconds: float, then: Reply | None = None) -> Reply:
        """Wait ``seconds`` before answering (``then``, else normally)."""
        base = then or cls()
        return cls(status=base.status, body=base.body, delay_s=seconds)

    @classmethod
    def text(cls, text: str, finish_reason: str = "STOP") -> Reply:
        """A single text part, sent as is (e.g. invalid JSON, or no image)."""
        return cls(body=_answer([{"text": text}], finish_reason))

    @classmethod
    def json(cls, obj: Any) -> Reply:
        """A text part holding ``obj`` as JSON."""
        return cls.text(json.dumps(obj, ensure_ascii=False))

    @classmethod
    def finish(cls, reason: str) -> Reply:
        """A candidate that stopped for ``reason`` (SAFETY, IMAGE_SAFETY, ...) with no parts."""
        return cls(body={"candidates": [{"finishReason": reason, "index": 0}]})

    @classmethod
    def prompt_blocked(cls, reason: str = "SAFETY") -> Reply:
        """The prompt itself refused: ``promptFeedback.blockReason``, no candidates."""
        return cls(body={"promptFeedback": {"blockReason": reason}})

    @classmethod
    def rate_limited(cls, retry_delay: str | None = "1s") -> Reply:
        """A 429 RESOURCE_EXHAUSTED with QuotaFailure and (unless None) RetryInfo."""
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}],
            }
        ]
        if retry_delay is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
            )
        message = "You exceeded your current quota, please check your plan and billing details."
        return cls(status=429, body=_error(429, "RESOURCE_EXHAUSTED", message, details))

    @classmethod
    def server_error(cls, code: int = 500) -> Reply:
        """A 5xx error body (INTERNAL, UNAVAILABLE, ...)."""
        status = {500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}.get(
            code, "UNKNOWN"
        )
        return cls(status=code, body=_error(code, status, "An internal error has occurred."))

    @classmethod
    def client_error(
        cls, code: int = 400, status: str = "INVALID_ARGUMENT", message: str = "Bad request."
    ) -> Reply:
        """A 4xx error body."""
        return cls(status=code, body=_error(code, status, message))


def _b64decode(data: str) -> bytes:
    # The SDK sends bytes URL-safe base64-encoded; the API takes either alphabet.
    return base64.b64decode(data.replace("-", "+").replace("_", "/"))


def _error(
    code: int, status: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def _answer(parts: list[dict[str, Any]], finish_reason: str = "STOP") -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason,
                "index": 0,
            }
        ]
    }


class _SchemaFiller:
    """Makes a value that fits a Gemini ``Schema`` (upper-case types) or a JSON Schema."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.counter = 0

    def value(self, schema: dict[str, Any], name: str = "value") -> Any:
        schema = self._resolve(schema)
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                options = [self._resolve(s) for s in schema[key]]
                usable = [s for s in options if str(s.get("type", "")).upper() != "NULL"]
                return self.value((usable or options)[0], name)
        kind = schema.get("type", "STRING")
        if isinstance(kind, list):
            kind = next((k for k in kind if str(k).upper() != "NULL"), "STRING")
        kind = str(kind).upper()
        if schema.get("enum"):
            return schema["enum"][0]
        if kind == "OBJECT":
            return self._object(schema)
        if kind == "ARRAY":
            count = max(int(schema.get("minItems", 0)), 2)
            return [self.value(schema.get("items", {}), name) for _ in range(count)]
        if kind == "INTEGER":
            return int(_clamp(3, schema.get("minimum"), schema.get("maximum")))
        if kind == "NUMBER":
            return _clamp(0.5, schema.get("minimum", 0), schema.get("maximum", 1))
        if kind == "BOOLEAN":
            return True
        return self._string(schema, name)

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        resolved = {k: self._resolve(v) for k, v in props.items()}
        # Shares (all numbers in [0, 1]) should add up to one, as sentiment shares do.
        if resolved and all(
            str(s.get("type", "")).upper() == "NUMBER" and s.get("maximum") == 1
            for s in resolved.values()
        ):
            return {k: round(1 / len(resolved), 6) for k in resolved}
        return {k: self.value(v, k) for k, v in resolved.items()}

    def _string(self, schema: dict[str, Any], name: str) -> str:
        self.counter += 1
        if "mm:ss" in str(schema.get("description", "")):
            return f"{self.counter // 60:02d}:{self.counter % 60:02d}"
        if name == "language":
            return "en"
        return f"{name.replace('_', ' ')} {self.counter}"

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if not ref:
            return schema
        node: Any = self.root
        for step in ref.lstrip("#/").split("/"):
            node = node[step]
        return self._resolve(node)


def _clamp(value: float, low: float | None, high: float | None) -> float:
    if low is not None:
        value = max(value, float(low))
    if high is not None:
        value = min(value, float(high))
    return value


@dataclass
class _Script:
    contains: str | None
    replies: deque[Reply] = field(default_factory=deque)


class FakeGemini(FakeServer):
    """The fake server. ``with FakeGemini() as fake: ... fake.url ...``, or start()/stop()."""

    name = "fake-gemini"

    def __init__(self, *, api_key: str | None = None) -> None:
        """``api_key``: when set, any other key is refused as the real API refuses it."""
        super().__init__()
        self.api_key = api_key
        # Added to every default answer: a model's think time, for benchmarks and demos.
        self.latency_s = 0.0
        # Gemini's per-model requests-per-minute quota, when set: (calls, window seconds).
        # A request over it gets 429 RESOURCE_EXHAUSTED with a RetryInfo delay.
        self.quota: tuple[int, float] | None = None
        self.refused_for_quota = 0
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._admitted: dict[str, deque[float]] = {}

    # --- scripting and inspection --------------------------------------------------

    def script(self, contains: str | None, *replies: Reply) -> None:
        """Answer the next requests whose body contains ``contains`` (None: any) with
        ``replies``, one each, in order; afterwards they get the default answer."""
        with self._lock:
            self._scripts.append(_Script(contains, deque(replies)))

    def reset(self) -> None:
        """Forget recorded requests and unused scripts."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The generateContent requests that named ``model``."""
        return [r for r in self.requests if r.model == model]

    def wait_for_requests(self, count: int, timeout_s: float = 10.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests arrived; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout_s
        while len(received := self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake Gemini got {len(received)} of {count} requests")
            time.sleep(0.02)
        return received

    # --- used by the handler -------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _over_quota(self, model: str) -> float | None:
        """Count an arrival for ``model``; the seconds until it would fit, if it does not."""
        if self.quota is None:
            return None
        calls, window_s = self.quota
        now = time.monotonic()
        with self._lock:
            admitted = self._admitted.setdefault(model, deque())
            while admitted and admitted[0] <= now - window_s:
                admitted.popleft()
            if len(admitted) < calls:
                admitted.append(now)
                return None
            self.refused_for_quota += 1
            return admitted[0] + window_s - now

    def _pick(self, request: RecordedRequest) -> Reply:
        text = request.raw.decode("utf-8", "replace")
        unescaped = json.dumps(request.json, ensure_ascii=False)
        with self._lock:
            for script in self._scripts:
                if script.replies and (
                    script.contains is None
                    or script.contains in text
                    or script.contains in unescaped
                ):
                    return script.replies.popleft()
        return Reply.default()

    def _default_body(self, request: RecordedRequest) -> dict[str, Any]:
        config = request.generation_config
        modalities = [str(m).upper() for m in config.get("responseModalities", [])]
        schema = config.get("responseSchema") or config.get("responseJsonSchema")
        if "IMAGE" in modalities:
            data = base64.b64encode(gradient_png()).decode("ascii")
            return _answer(
                [
                    {"text": "Here is your picture."},
                    {"inlineData": {"mimeType": "image/png", "data": data}},
                ]
            )
        if schema:
            return _answer([{"text": json.dumps(_SchemaFiller(schema).value(schema))}])
        return _answer([{"text": "This is a plain text answer from the fake Gemini."}])

    def _finish_body(self, request: RecordedRequest, body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body)
        out_chars = 0
        images = 0
        for candidate in body.get("candidates", []):
            for part in candidate.get("content", {}).get("parts", []):
                out_chars += len(part.get("text", ""))
                images += "inlineData" in part
        prompt_tokens = max(1, len(request.raw) // 4)
        output_tokens = out_chars // 4 + 1290 * images
        body.setdefault(
            "usageMetadata",
            {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": prompt_tokens + output_tokens,
            },
        )
        body.setdefault("modelVersion", request.model or "unknown")
        body.setdefault("responseId", uuid.uuid4().hex[:22])
        return body


class _Handler(BaseHTTPRequestHandler):
    owner: FakeGemini
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        match = _PATH.match(path)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send(400, _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
            return
        request = RecordedRequest(
            method="POST",
            path=path,
            api_version=match["version"] if match else None,
            model=match["model"] if match else None,
            headers={k.lower(): v for k, v in self.headers.items()},
            json=body,
            raw=raw,
        )
        self.owner._record(request)  # refused requests too: tests may assert on them
        key = request.headers.get("x-goog-api-key")
        if not key:
            message = "Method doesn't allow unregistered callers. Please use an API key."
            self._send(403, _error(403, "PERMISSION_DENIED", message))
            return
        if self.owner.api_key is not None and key != self.owner.api_key:
            message = "API key not valid. Please pass a valid API key."
            self._send(400, _error(400, "INVALID_ARGUMENT", message))
            return
        if match is None:
            self._send(404, _error(404, "NOT_FOUND", f"{path} is not found."))
            return
        wait_s = self.owner._over_quota(request.model or "")
        if wait_s is not None:
            # As Gemini words it: the delay rounded up to whole seconds.
            refused = Reply.rate_limited(retry_delay=f"{math.ceil(wait_s)}s")
            self._send(refused.status, refused.body or {})
            return
        reply = self.owner._pick(request)
        delay_s = reply.delay_s or self.owner.latency_s
        if delay_s and self.owner._stopping.wait(delay_s):
            return  # the fake is stopping: drop the hanging request
        answer = reply.body if reply.body is not None else self.owner._default_body(request)
        if reply.status == 200:
            answer = self.owner._finish_body(request, answer)
        self._send(reply.status, answer)

    def do_GET(self) -> None:
        self._send(404, _error(404, "NOT_FOUND", "Only generateContent is faked."))

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


__all__ = ["FakeGemini", "RecordedRequest", "Reply", "gradient_png"]


FakeGemini.handler = _Handler


def main() -> None:
    """Serve a fake Gemini until interrupted: ``python -m tests.support.fakes.gemini``."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake Gemini on 127.0.0.1, for manual runs.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument(
        "--rpm", type=int, default=0, help="requests per minute per model, then 429s"
    )
    parser.add_argument(
        "--hold",
        metavar="TEXT=SECONDS",
        default=None,
        help="answer requests containing TEXT only after SECONDS (a job that stays running)",
    )
    args = parser.parse_args()
    fake = FakeGemini()
    fake.latency_s = args.latency
    if args.rpm:
        fake.quota = (args.rpm, 60.0)
    if args.hold:
        text, _, seconds = args.hold.rpartition("=")
        # One scripted reply per request: enough for any bench that asks for it.
        fake.script(text, *[Reply.hang(float(seconds)) for _ in range(10_000)])
    fake.start()
    fake.serve_until_interrupted({"REFRACT_GEMINI_BASE_URL": fake.url})


if __name__ == "__main__":
    main()

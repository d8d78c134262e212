"""Reusing a model reply for identical inputs, across every worker, through Redis.

The same video pasted by 100 visitors must cost one model call per prompt version and
language, not 100. :class:`ReplyMemo` wraps a backend: each text feature's inputs (the
backend and model, the method, the prompt version, the language and the material itself:
the video's id, URL, title, transcript and comments, or the image's bytes) are hashed
into a key, and a successful reply is stored under it for ``ttl_s`` seconds.

Single flight: the first caller of a key takes a lock and calls the model (the
*leader*); callers that arrive while it works wait for its stored reply, within their
feature's deadline and cancellation checks. A leader that fails stores nothing (failed
replies are never reused) and drops its lock; a waiting caller that sees the lock gone
without a reply calls the model itself, so a failure costs no more calls than before and
never leaves a follower waiting on a dead leader. A leader's lock is a short lease that
this process renews while the call runs, so a leader whose process died frees its key
within one lease.

A reused reply is marked ``cached: true`` in its result and carries ``Usage(0, 0)``: no
tokens were spent for it, so the feature rows' token sums (and the dashboard's cost)
count each paid call once. It is logged as ``model_reply_reused``. Image features
(``stylize``, ``card``) are generated anew every time and pass straight through.
Redis trouble never fails a feature: the call goes to the model as if there were no memo.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
import structlog

from refract.core import deadline, interrupt
from refract.core.material import ImageBlob, VideoMaterial
from refract.gateway.base import ModelBackend, ModelReply, Usage
from refract.gateway.prompts import load_prompt
from refract.imaging.subjects import Subject

log = structlog.get_logger(__name__)

REPLY_KEY = "refract:reply:{digest}"
LOCK_KEY = "refract:reply:{digest}:lock"
# Bumped when the stored form or the key's ingredients change, so old entries are ignored.
FORMAT = 1
LEASE_S = 15.0
POLL_FIRST_S = 0.05
# A follower looks again this often at most: a crowd waiting on one answer gets it within
# a tenth of a second, each follower costing Redis ten cheap reads a second meanwhile.
POLL_MAX_S = 0.1

# Atomically: the stored reply if there is one, else the lock for this caller, else wait.
_ACQUIRE = """
local hit = redis.call('get', KEYS[1])
if hit then return {'hit', hit} end
if redis.call('set', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'lead', ''} end
return {'wait', ''}
"""
# A follower's look: the reply, or whether the leader still holds the lock.
_PEEK = """
local hit = redis.call('get', KEYS[1])
if hit then return {'hit', hit} end
if redis.call('exists', KEYS[2]) == 1 then return {'wait', ''} end
return {'gone', ''}
"""
# The leader stores its reply and frees the key in one step (the lock only if still its).
_STORE = """
redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('del', KEYS[2]) end
return 1
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def material_digest(video: VideoMaterial) -> str:
    """A hash of everything known about a video: its id and URL and the fetched content."""
    raw = json.dumps(dataclasses.asdict(video), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def image_digest(image: ImageBlob) -> str:
    """A hash of an image's bytes and media type."""
    return hashlib.sha256(image.mime_type.encode() + b"\0" + image.data).hexdigest()


def reply_key(
    backend: str, model: str, method: str, prompt_version: str, language: str, material: str
) -> str:
    """The digest naming one set of identical inputs (every ingredient of the call)."""
    raw = json.dumps([FORMAT, backend, model, method, prompt_version, language, material])
    return hashlib.sha256(raw.encode()).hexdigest()


def dump_reply(reply: ModelReply) -> str:
    """A text reply as stored (an image reply is never stored)."""
    return json.dumps(
        {
            "data": reply.data,
            "backend": reply.backend,
            "model": reply.model,
            "prompt_version": reply.prompt_version,
            "usage": [reply.usage.input_tokens, reply.usage.output_tokens],
        }
    )


def load_reused(stored: str) -> tuple[ModelReply, Usage]:
    """A stored reply as a reused one (``cached``, no tokens), and what it first cost."""
    raw = json.loads(stored)
    data = dict(raw["data"])
    data["cached"] = True
    reply = ModelReply(
        data=data,
        backend=raw["backend"],
        model=raw["model"],
        usage=Usage(input_tokens=0, output_tokens=0),
        prompt_version=raw["prompt_version"],
    )
    return reply, Usage(*raw["usage"])


class _LeaseKeeper:
    """One thread per process renewing the locks its leaders hold while their calls run."""

    def __init__(self, client: redis.Redis[str], lease_s: float) -> None:
        self._renew = client.register_script(_RENEW)
        self._lease_ms = int(lease_s * 1000)
        self._interval_s = lease_s / 3
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, key: str, token: str) -> None:
        """Keep ``key`` (locked with ``token``) alive until :meth:`drop`."""
        with self._lock:
            self._held[key] = token
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="reply-memo-leases", daemon=True
                )
                self._thread.start()

    def drop(self, key: str) -> None:
        """Stop renewing ``key``."""
        with self._lock:
            self._held.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(self._interval_s)
            with self._lock:
                held = list(self._held.items())
            for key, token in held:
                try:
                    self._renew(keys=[key], args=[token, self._lease_ms])
                except redis.RedisError as exc:  # the lease runs out; followers take over
                    log.warning("reply_memo_lease_not_renewed", error=type(exc).__name__)


class ReplyMemo(ModelBackend):
    """A backend that reuses stored replies for identical text-feature inputs."""

    def __init__(
        self,
        inner: ModelBackend,
        client: redis.Redis[str],
        *,
        model: str,
        ttl_s: int,
        lease_s: float = LEASE_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wrap ``inner``; ``model`` is its text model, replies kept ``ttl_s`` seconds in
        ``client``'s Redis; a leader's lock lasts ``lease_s`` unless renewed."""
        self.inner = inner
        self.name = inner.name
        self._model = model
        self._ttl_s = ttl_s
        self._lease_s = lease_s
        self._sleep = sleep
        self._keeper = _LeaseKeeper(client, lease_s)
        self._scripts = {
            name: client.register_script(text)
            for name, text in (
                ("acquire", _ACQUIRE),
                ("peek", _PEEK),
                ("store", _STORE),
                ("release", _RELEASE),
            )
        }

    def __getattr__(self, name: str) -> Any:
        # Whatever else the wrapped backend offers (``close``, its settings) stays reachable.
        if name == "inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    # --- memoized text features --------------------------------------------------

    def summarize_video(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """``summary``, reused for the same video material, prompt and language."""
        return self._memo(
            "summary",
            language,
            material_digest(video),
            lambda: self.inner.summarize_video(video, language=language),
        )

    def analyze_comments(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """``comments``, reused for the same video material, prompt and language."""
        return self._memo(
            "comments",
            language,
            material_digest(video),
            lambda: self.inner.analyze_comments(video, language=language),
        )

    def analyze_thumbnail(self, image: ImageBlob, *, title: str, language: str) -> ModelReply:
        """``thumbnail``, reused for the same image bytes, title, prompt and language."""
        material = hashlib.sha256(f"{image_digest(image)}\0{title}".encode()).hexdigest()
        return self._memo(
            "thumbnail",
            language,
            material,
            lambda: self.inner.analyze_thumbnail(image, title=title, language=language),
        )

    def caption_photo(self, image: ImageBlob, *, language: str) -> ModelReply:
        """``caption``, reused for a photo of identical bytes (a resubmitted upload)."""
        return self._memo(
            "caption",
            language,
            image_digest(image),
            lambda: self.inner.caption_photo(image, language=language),
        )

    # --- image features: generated anew each time ----------------------------------

    def stylize_face(self, face: ImageBlob, *, language: str = "en") -> ModelReply:
        """``stylize``, straight to the wrapped backend."""
        return self.inner.stylize_face(face, language=language)

    def stylize_photo(
        self, photo: ImageBlob, subject: Subject, *, language: str = "en"
    ) -> ModelReply:
        """``stylize`` from the whole photo, straight to the wrapped backend."""
        return self.inner.stylize_photo(photo, subject, language=language)

    def compose_card(
        self,
        portrait: ImageBlob,
        *,
        caption: str,
        prompt: str,
        language: str,
        from_photo: bool = False,
    ) -> ModelReply:
        """``card``, straight to the wrapped backend."""
        return self.inner.compose_card(
            portrait, caption=caption, prompt=prompt, language=language, from_photo=from_photo
        )

    # --- the memo ----------------------------------------------------------------

    def _memo(
        self, feature: str, language: str, material: str, call: Callable[[], ModelReply]
    ) -> ModelReply:
        """The stored reply for these inputs, else the leader's, else a call of our own."""
        version = load_prompt(feature).version
        digest = reply_key(self.name, self._model, feature, version, language, material)
        keys = (REPLY_KEY.format(digest=digest), LOCK_KEY.format(digest=digest))
        token = uuid.uuid4().hex
        started = time.monotonic()
        try:
            state, stored = self._script("acquire", keys, token, int(self._lease_s * 1000))
        except redis.RedisError as exc:
            log.warning("reply_memo_unavailable", feature=feature, error=type(exc).__name__)
            return call()
        if state == "hit":
            return self._reused(feature, stored, started)
        if state == "lead":
            return self._lead(feature, keys, token, call)
        return self._follow(feature, keys, started, call)

    def _script(self, name: str, keys: tuple[str, str], *args: Any) -> tuple[str, str]:
        state, stored = self._scripts[name](keys=list(keys), args=list(args))
        return _text(state), _text(stored)

    def _lead(
        self, feature: str, keys: tuple[str, str], token: str, call: Callable[[], ModelReply]
    ) -> ModelReply:
        """Call the model under the lock; store a success, free the lock either way."""
        self._keeper.hold(keys[1], token)
        try:
            reply = call()
        except BaseException:
            # Nothing is stored for a failure: a waiting caller calls for itself.
            self._keeper.drop(keys[1])
            self._quietly(lambda: self._scripts["release"](keys=[keys[1]], args=[token]))
            raise
        self._keeper.drop(keys[1])
        self._store(keys, token, reply)
        return reply

    def _store(self, keys: tuple[str, str], token: str, reply: ModelReply) -> None:
        # Serialised before the task adds its own fields to ``reply.data``.
        stored = dump_reply(reply)
        self._quietly(
            lambda: self._scripts["store"](keys=list(keys), args=[token, stored, self._ttl_s])
        )

    def _follow(
        self,
        feature: str,
        keys: tuple[str, str],
        started: float,
        call: Callable[[], ModelReply],
    ) -> ModelReply:
        """Wait for the leader's reply; if it failed or died, call the model ourselves."""
        log.info("model_reply_waiting", feature=feature)
        pause = POLL_FIRST_S
        while True:
            left = deadline.remaining_s()
            step = pause if left is None else max(0.0, min(pause, left))
            # Cancellation ends the wait at once; the deadline fails it like a slow call.
            interrupt.wait(step, self._sleep, "waiting for the same model call")
            deadline.check("waiting for the same model call")
            pause = min(pause * 1.5, POLL_MAX_S)
            try:
                state, stored = self._script("peek", keys)
            except redis.RedisError as exc:
                log.warning("reply_memo_unavailable", feature=feature, error=type(exc).__name__)
                return call()
            if state == "hit":
                return self._reused(feature, stored, started)
            if state == "gone":
                log.info("model_reply_leader_failed", feature=feature)
                reply = call()
                # Stored for later callers; there is no lock of ours to free.
                self._store(keys, "", reply)
                return reply

    def _reused(self, feature: str, stored: str, started: float) -> ModelReply:
        reply, first_cost = load_reused(stored)
        log.info(
            "model_reply_reused",
            feature=feature,
            model=reply.model,
            prompt_version=reply.prompt_version,
            saved_input_tokens=first_cost.input_tokens,
            saved_output_tokens=first_cost.output_tokens,
            waited_s=round(time.monotonic() - started, 3),
        )
        return reply

    def _quietly(self, action: Callable[[], object]) -> None:
        try:
            action()
        except redis.RedisError as exc:  # the entry or lease simply runs out
            log.warning("reply_memo_not_written", error=type(exc).__name__)

"""Fetched YouTube material, cached in Redis so a trending video costs one fetch.

:class:`YouTubeMaterial` is what the feature tasks call. Each kind of material (metadata,
comments, thumbnail, transcript) is cached per video id under ``refract:yt:{id}:{kind}``
as JSON (the thumbnail's bytes as base64, since the project's Redis client decodes
responses as text). Permanent failures (unknown, private video, comments off...) are
kept for a minute so a burst of jobs does not spend quota learning the same thing;
transient ones (network, quota) are not kept.

A short Redis lock per video and kind makes concurrent jobs share one fetch: the first
takes the lock and fetches, the others poll the cache until the result (or the first
job's transient failure) appears. If the lock holder dies, its lock expires and a waiter
takes over; a waiter that waited too long fetches by itself rather than fail.

Quota units spent on the Data API are added to ``refract:yt:quota:{YYYY-MM-DD}``, the day
taken in Pacific time because that is when YouTube resets the daily quota.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import redis
import structlog

from refract.core.errors import FeatureError
from refract.core.material import Comment, ImageBlob, TranscriptLine, VideoMaterial
from refract.core.settings import Settings
from refract.youtube.client import (
    PERMANENT_CODES,
    CommentsFetch,
    ThumbnailFetch,
    VideoMetadata,
    YouTubeClient,
    fetch_transcript,
)
from refract.youtube.links import VideoRef

log = structlog.get_logger(__name__)

T = TypeVar("T")

KEY_PREFIX = "refract:yt"
QUOTA_DAY_ZONE = "America/Los_Angeles"
QUOTA_KEY_TTL_S = 8 * 24 * 3600
# How long a lock holder's transient failure stays visible to the jobs that waited on it.
_FAILURE_MARK_MS = 2000

# One atomic look: KEYS = value, lock, failure mark of the holder we waited on. Checking
# all three at once closes the gap where a holder stores its result and unlocks between a
# waiter's read and its lock attempt (which would cost a second fetch).
_LOOK_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value then return {'value', value} end
local failed = redis.call('GET', KEYS[3])
if failed then return {'failed', failed} end
local holder = redis.call('GET', KEYS[2])
if holder then return {'held', holder} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'locked', ARGV[1]}
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str | None:
    """Redis answers bytes or str depending on ``decode_responses``; accept both."""
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class MaterialCache:
    """JSON values per video id and kind in Redis, with a fetch lock; ``ttl_s`` 0 disables."""

    def __init__(
        self,
        redis_client: redis.Redis[str] | None,
        ttl_s: int,
        *,
        error_ttl_s: int = 60,
        lock_ttl_s: float = 30.0,
        wait_s: float = 30.0,
        poll_s: float = 0.05,
        first_poll_s: float = 0.004,
        prefix: str = KEY_PREFIX,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``wait_s``: how long a job waits for another job's fetch before fetching itself;
        it looks again after ``first_poll_s``, then twice as long each time, up to
        ``poll_s``."""
        self.redis = redis_client
        self.ttl_s = ttl_s
        self.error_ttl_s = min(error_ttl_s, ttl_s)
        self.lock_ms = max(1, int(lock_ttl_s * 1000))
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.first_poll_s = min(first_poll_s, poll_s)
        self._sleep = sleep
        self.prefix = prefix
        self._look = redis_client.register_script(_LOOK_OR_LOCK) if redis_client else None
        self._release = redis_client.register_script(_RELEASE) if redis_client else None

    @property
    def enabled(self) -> bool:
        """Whether anything is cached at all."""
        return self.redis is not None and self.ttl_s > 0

    def key(self, video_id: str, kind: str) -> str:
        """The Redis key for one kind of material of one video."""
        return f"{self.prefix}:{video_id}:{kind}"

    def get_or_fetch(
        self,
        video_id: str,
        kind: str,
        fetch: Callable[[], T],
        *,
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
        ttl_of: Callable[[T], int] | None = None,
    ) -> T:
        """The cached value, else another job's fetch, else ``fetch()`` (then cached).

        A cached permanent failure is raised again as the same ``FeatureError``.
        ``ttl_of`` may shorten the time a particular value is kept (e.g. partial results).
        If Redis fails, the cache steps aside and ``fetch()`` runs directly.
        """
        if not self.enabled:
            return fetch()
        key = self.key(video_id, kind)
        try:
            return self._get_or_wait(key, fetch, encode, decode, ttl_of)
        except redis.RedisError as exc:
            log.warning("youtube_cache_unavailable", key=key, error=type(exc).__name__)
            return fetch()

    def _get_or_wait(
        self,
        key: str,
        fetch: Callable[[], T],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
        ttl_of: Callable[[T], int] | None,
    ) -> T:
        assert self._look is not None
        lock_key = f"{key}:lock"
        token = uuid.uuid4().hex
        seen = "-"  # the holder whose fetch we are waiting on
        deadline = time.monotonic() + self.wait_s
        # The features of one job ask for the same material at once, and a fetch often
        # takes a few milliseconds: a waiter looks again soon, then less and less often.
        pause = self.first_poll_s
        while True:
            state, payload = (
                _text(part)
                for part in self._look(
                    keys=[key, lock_key, f"{key}:failed:{seen}"], args=[token, self.lock_ms]
                )
            )
            if state == "value":
                try:
                    return self._unpack(payload or "", decode)
                except (ValueError, KeyError, TypeError) as exc:
                    # An entry written by another version of this code: refetch over it.
                    log.warning("youtube_cache_unreadable", key=key, error=type(exc).__name__)
                    return self._fetch_and_store(key, None, token, fetch, encode, ttl_of)
            if state == "failed":
                raise _error_from(json.loads(payload or ""))
            if state == "locked":
                return self._fetch_and_store(key, lock_key, token, fetch, encode, ttl_of)
            seen = payload or "-"
            if time.monotonic() >= deadline:
                log.warning("youtube_cache_wait_gave_up", key=key)
                return self._fetch_and_store(key, None, token, fetch, encode, ttl_of)
            self._sleep(pause)
            pause = min(pause * 2, self.poll_s)

    def _fetch_and_store(
        self,
        key: str,
        lock_key: str | None,
        token: str,
        fetch: Callable[[], T],
        encode: Callable[[T], Any],
        ttl_of: Callable[[T], int] | None,
    ) -> T:
        """Fetch, store the outcome, release the lock. Redis errors here are only logged:
        the fetch has happened and must not be repeated."""
        try:
            value = fetch()
        except FeatureError as exc:
            if exc.code in PERMANENT_CODES:
                self._store(key, {"error": _error_doc(exc)}, self.error_ttl_s)
            elif lock_key is not None:
                # Not cached, but the jobs that waited on this fetch share its outcome
                # instead of each trying again (a hundred timeouts in a row).
                self._mark_failure(f"{key}:failed:{token}", exc)
            raise
        else:
            ttl = min(self.ttl_s, ttl_of(value)) if ttl_of else self.ttl_s
            self._store(key, {"ok": encode(value)}, ttl)
            return value
        finally:
            if lock_key is not None:
                self._unlock(lock_key, token)

    def _store(self, key: str, doc: dict[str, Any], ttl_s: int) -> None:
        if ttl_s <= 0 or self.redis is None:
            return
        try:
            self.redis.set(key, json.dumps(doc, ensure_ascii=False), ex=ttl_s)
        except redis.RedisError as exc:
            log.warning("youtube_cache_store_failed", key=key, error=type(exc).__name__)

    def _mark_failure(self, key: str, exc: FeatureError) -> None:
        assert self.redis is not None
        try:
            self.redis.set(key, json.dumps(_error_doc(exc)), px=_FAILURE_MARK_MS)
        except redis.RedisError as err:
            log.warning("youtube_cache_failure_mark_failed", key=key, error=type(err).__name__)

    def _unlock(self, lock_key: str, token: str) -> None:
        assert self._release is not None
        try:
            self._release(keys=[lock_key], args=[token])
        except redis.RedisError as exc:
            # The lock expires by itself; waiters just wait a little longer.
            log.warning("youtube_cache_release_failed", key=lock_key, error=type(exc).__name__)

    @staticmethod
    def _unpack(entry: str, decode: Callable[[Any], T]) -> T:
        doc = json.loads(entry)
        if "error" in doc:
            raise _error_from(doc["error"])
        return decode(doc["ok"])


def _error_doc(exc: FeatureError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "details": exc.details}


def _error_from(doc: dict[str, Any]) -> FeatureError:
    return FeatureError(doc["code"], doc["message"], details=dict(doc.get("details") or {}))


def quota_day(now: datetime | None = None) -> date:
    """The YouTube quota day (Pacific time) that ``now`` (default: now) falls in."""
    zone = ZoneInfo(QUOTA_DAY_ZONE)
    return (now.astimezone(zone) if now else datetime.now(zone)).date()


# --- codecs: what each kind of material looks like in the cache ---------------------


def _metadata_from(doc: dict[str, Any]) -> VideoMetadata:
    # Served from the cache, so this call spent no quota.
    return replace(VideoMetadata(**doc), quota_units=0)


def _comments_to(value: CommentsFetch) -> dict[str, Any]:
    return {
        "comments": [asdict(c) for c in value.comments],
        "quota_units": value.quota_units,
        "pages": value.pages,
        "complete": value.complete,
    }


def _comments_from(doc: dict[str, Any]) -> CommentsFetch:
    comments = [Comment(**c) for c in doc["comments"]]
    return CommentsFetch(comments, quota_units=0, pages=doc["pages"], complete=doc["complete"])


def _thumbnail_to(value: ThumbnailFetch) -> dict[str, Any]:
    return {
        "data": base64.b64encode(value.image.data).decode("ascii"),
        "mime_type": value.image.mime_type,
        "size_name": value.size_name,
        "width": value.width,
        "height": value.height,
    }


def _thumbnail_from(doc: dict[str, Any]) -> ThumbnailFetch:
    image = ImageBlob(base64.b64decode(doc["data"]), doc["mime_type"])
    return ThumbnailFetch(image, doc["size_name"], doc["width"], doc["height"])


def _transcript_to(value: list[TranscriptLine] | None) -> list[list[Any]] | None:
    return None if value is None else [[line.start, line.text] for line in value]


def _transcript_from(doc: list[list[Any]] | None) -> list[TranscriptLine] | None:
    return None if doc is None else [TranscriptLine(float(s), str(t)) for s, t in doc]


class YouTubeMaterial:
    """The tasks' one way to get YouTube material: fetched once, cached, quota counted."""

    def __init__(
        self,
        settings: Settings,
        redis_client: redis.Redis[str] | None,
        *,
        http: httpx.Client | None = None,
        transcripts: bool = True,
    ) -> None:
        """``redis_client`` None (or ``youtube_cache_ttl_s`` 0) disables the cache;
        ``transcripts`` False never calls the transcript library."""
        self.settings = settings
        self.redis = redis_client
        self.transcripts = transcripts
        self.client = YouTubeClient(settings, http)
        # A fetch is a few requests of at most youtube_timeout_s each; waiting that long
        # for another job's fetch is still cheaper than a second fetch.
        patience = max(5.0, 3 * settings.youtube_timeout_s)
        self.cache = MaterialCache(
            redis_client, settings.youtube_cache_ttl_s, lock_ttl_s=patience, wait_s=patience
        )
        self.quota_units_spent = 0  # by this object, whatever Redis says

    def close(self) -> None:
        """Release the HTTP client (if this object made it)."""
        self.client.close()

    def __enter__(self) -> YouTubeMaterial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one method per kind of material ---------------------------------------------

    def metadata(self, video_id: str) -> VideoMetadata:
        """Title, channel, duration and counts (Data API with a key, else oEmbed)."""
        vid = VideoRef(video_id).video_id

        def fetch() -> VideoMetadata:
            value = self._counted(lambda: self.client.fetch_metadata(vid))
            self._spend(value.quota_units)
            return value

        return self.cache.get_or_fetch(vid, "metadata", fetch, encode=asdict, decode=_metadata_from)

    def comments(self, video_id: str, limit: int | None = None) -> CommentsFetch:
        """Top comments, up to ``limit`` (default and cap: ``youtube_max_comments``).

        ``quota_units`` is what this call spent: 0 when served from the cache.
        """
        vid = VideoRef(video_id).video_id
        cap = self.settings.youtube_max_comments
        wanted = max(1, min(limit or cap, cap))

        def fetch() -> CommentsFetch:
            value = self._counted(lambda: self.client.fetch_comments(vid, wanted))
            self._spend(value.quota_units)
            return value

        def ttl_of(value: CommentsFetch) -> int:
            # A partial list (a page failed) is only kept briefly, then fetched whole.
            return self.settings.youtube_cache_ttl_s if value.complete else 60

        return self.cache.get_or_fetch(
            vid,
            f"comments:{wanted}",
            fetch,
            encode=_comments_to,
            decode=_comments_from,
            ttl_of=ttl_of,
        )

    def thumbnail(self, video_id: str) -> ThumbnailFetch:
        """The largest thumbnail available, re-encoded and checked."""
        vid = VideoRef(video_id).video_id
        return self.cache.get_or_fetch(
            vid,
            "thumbnail",
            lambda: self.client.fetch_thumbnail(vid),
            encode=_thumbnail_to,
            decode=_thumbnail_from,
        )

    def transcript(
        self, video_id: str, languages: Iterable[str] = ("en",)
    ) -> list[TranscriptLine] | None:
        """Timed caption lines, or None (disabled, none exist, or YouTube refused)."""
        vid = VideoRef(video_id).video_id
        langs = tuple(languages)
        if not self.transcripts:
            return None

        def fetch() -> list[TranscriptLine] | None:
            return fetch_transcript(
                vid, langs, enabled=True, timeout_s=self.settings.youtube_timeout_s
            )

        def ttl_of(value: list[TranscriptLine] | None) -> int:
            # "None" may be a passing block on scraping; do not believe it for an hour.
            return self.settings.youtube_cache_ttl_s if value else 60

        return self.cache.get_or_fetch(
            vid,
            f"transcript:{','.join(langs)}",
            fetch,
            encode=_transcript_to,
            decode=_transcript_from,
            ttl_of=ttl_of,
        )

    def video_material(
        self,
        video_id: str,
        *,
        with_comments: bool,
        with_transcript: bool,
        languages: Iterable[str] = ("en",),
    ) -> VideoMaterial:
        """Everything a video feature needs, as the model gateway takes it.

        Metadata and (when asked) comments failures are raised as their FeatureError;
        the transcript is best effort and simply left empty when there is none.
        """
        ref = VideoRef(video_id)
        meta = self.metadata(ref.video_id)
        comments = self.comments(ref.video_id).comments if with_comments else []
        lines = self.transcript(ref.video_id, languages) if with_transcript else None
        return VideoMaterial(
            title=meta.title,
            description=meta.description,
            url=ref.canonical_url,
            video_id=ref.video_id,
            transcript=tuple(lines or ()),
            comments=tuple(comments),
            duration_s=meta.duration_s,
        )

    # --- quota -------------------------------------------------------------------------

    def quota_key(self, day: date | None = None) -> str:
        """The Redis counter of Data API units spent on ``day`` (default: today, Pacific)."""
        return f"{KEY_PREFIX}:quota:{(day or quota_day()).isoformat()}"

    def quota_used(self, day: date | None = None) -> int:
        """Units spent by every worker on ``day``, as counted in Redis (0 without Redis)."""
        if self.redis is None:
            return 0
        return int(_text(self.redis.get(self.quota_key(day))) or 0)

    def _counted(self, call: Callable[[], T]) -> T:
        """Run a fetch; a refused Data API request still costs units, so count those too."""
        try:
            return call()
        except FeatureError as exc:
            self._spend(int(exc.details.get("quota_units", 0)))
            raise

    def _spend(self, units: int) -> None:
        if units <= 0:
            return
        self.quota_units_spent += units
        if self.redis is None:
            return
        key = self.quota_key()
        try:
            pipe = self.redis.pipeline()
            pipe.incrby(key, units)
            pipe.expire(key, QUOTA_KEY_TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("youtube_quota_count_failed", units=units, error=type(exc).__name__)

"""Calls to YouTube's own endpoints: Data API v3, oEmbed, thumbnails, and transcripts.

Every URL is built here from a base URL in settings and a video id that passed
:class:`~refract.youtube.links.VideoRef`'s check; nothing a client sent is ever fetched.
Redirects are not followed (``follow_redirects=False``): a 3xx could lead off YouTube's
hosts, so it counts as an error (API, oEmbed) or a missing image (thumbnails).

Every failure becomes a :class:`~refract.core.errors.FeatureError` with a stable code:

- ``video_unavailable``: unknown or deleted video (Data API ``items: []`` or
  ``videoNotFound``, oEmbed 404).
- ``video_private``: oEmbed 401, or ``forbidden`` from a ``youtube.*`` domain — with an
  API key that is what a private video's comment threads answer.
- ``comments_disabled``, ``no_comments``, ``thumbnail_unavailable``.
- ``youtube_quota_exceeded`` (``quotaExceeded`` and rate-limit reasons, HTTP 429),
  ``youtube_key_invalid`` (bad, expired or restricted key), ``youtube_key_missing``.
- ``youtube_forbidden``: any other 403.
- ``youtube_unreachable``: network errors, timeouts, 5xx, redirects, unusable answers
  and any other refusal.

The transcript is the exception: it comes from ``youtube-transcript-api``, which scrapes
youtube.com itself and cannot be pointed elsewhere, so it is strictly best effort.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from refract.core.errors import FeatureError, ProblemError
from refract.core.material import Comment, ImageBlob, TranscriptLine
from refract.core.settings import Settings
from refract.imaging.uploads import THUMBNAIL_MAX_SIDE, sanitize_image
from refract.youtube.links import VideoRef

log = structlog.get_logger(__name__)

# Errors that will not change within a minute; the cache keeps them briefly (quota guard).
PERMANENT_CODES = frozenset(
    {
        "video_unavailable",
        "video_private",
        "comments_disabled",
        "no_comments",
        "thumbnail_unavailable",
    }
)
# Worth retrying later; never cached.
TRANSIENT_CODES = frozenset({"youtube_unreachable", "youtube_quota_exceeded"})

# Largest first; (name, width, height) as YouTube serves them.
THUMBNAIL_SIZES: tuple[tuple[str, int, int], ...] = (
    ("maxresdefault", 1280, 720),
    ("sddefault", 640, 480),
    ("hqdefault", 480, 360),
    ("mqdefault", 320, 180),
    ("default", 120, 90),
)
THUMBNAIL_MAX_BYTES = 4 * 1024 * 1024
THUMBNAIL_MAX_PIXELS = 4_000_000

PAGE_SIZE = 100  # the Data API's maximum maxResults
# A server that keeps sending page tokens must not keep us (and the quota) busy forever.
MAX_PAGES = 60

_QUOTA_REASONS = frozenset(
    {"quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded", "userRateLimitExceeded"}
)
_KEY_REASONS = frozenset({"keyInvalid", "keyExpired", "accessNotConfigured", "ipRefererBlocked"})
_DURATION_RE = re.compile(
    r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?"
)


@dataclass(frozen=True)
class VideoMetadata:
    """What YouTube says about a video. ``source`` is ``data_api`` or ``oembed``.

    oEmbed only knows the title and channel; every other field is then ``None``/empty.
    """

    title: str
    channel: str | None
    duration_s: float | None
    published_at: str | None
    view_count: int | None
    like_count: int | None
    comment_count: int | None
    description: str
    language: str | None
    source: str = "data_api"
    quota_units: int = 0


@dataclass(frozen=True)
class CommentsFetch:
    """Top-level comments in YouTube's relevance order, and what fetching them cost.

    ``complete`` is False when a later page failed and only the earlier pages are kept.
    """

    comments: list[Comment]
    quota_units: int
    pages: int
    complete: bool = True


@dataclass(frozen=True)
class ThumbnailFetch:
    """The largest thumbnail YouTube had, re-encoded by ``sanitize_image``."""

    image: ImageBlob
    size_name: str
    width: int
    height: int


def parse_iso_duration(text: str | None) -> float | None:
    """Seconds in an ISO 8601 duration (``PT4M13S``, ``P1DT2H``); None if unknown or zero.

    YouTube gives ``P0D`` for live and upcoming streams, whose length is not known yet.
    """
    if not text:
        return None
    match = _DURATION_RE.fullmatch(text.strip())
    if not match or text.strip() in ("P", "PT"):
        return None
    weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    return total or None


def _int_or_none(value: Any) -> int | None:
    """The Data API sends counts as strings, and omits them when hidden."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _failure(code: str, message: str, **details: Any) -> FeatureError:
    return FeatureError(code, message, details={k: v for k, v in details.items() if v is not None})


class YouTubeClient:
    """One HTTP client for YouTube's endpoints; share it within a process, close it after."""

    def __init__(self, settings: Settings, http: httpx.Client | None = None) -> None:
        """``http`` is injectable for tests; by default one is made and owned here."""
        self.settings = settings
        self._owns_http = http is None
        self.http = http or httpx.Client(timeout=settings.youtube_timeout_s, follow_redirects=False)

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._owns_http:
            self.http.close()

    @property
    def api_key(self) -> str | None:
        """The Data API key, or None when not configured."""
        key = self.settings.youtube_api_key
        return key.get_secret_value() if key is not None else None

    # --- metadata --------------------------------------------------------------------

    def fetch_metadata(self, video_id: str) -> VideoMetadata:
        """Title, channel, duration, counts: Data API with a key (1 unit), else oEmbed."""
        ref = VideoRef(video_id)
        if self.api_key is None:
            return self._metadata_from_oembed(ref)
        params = {"part": "snippet,contentDetails,statistics", "id": ref.video_id}
        body = self._api_json("videos", params)
        items = body.get("items")
        if not isinstance(items, list):
            raise _failure("youtube_unreachable", "YouTube sent an unusable video listing")
        if not items:
            # The Data API answers a private or unknown id with no items, not an error.
            raise _failure(
                "video_unavailable",
                "the video does not exist, was removed, or is private",
                quota_units=1,
            )
        item = items[0] if isinstance(items[0], dict) else {}
        snippet = item.get("snippet") or {}
        details = item.get("contentDetails") or {}
        stats = item.get("statistics") or {}
        return VideoMetadata(
            title=str(snippet.get("title") or ""),
            channel=snippet.get("channelTitle"),
            duration_s=parse_iso_duration(details.get("duration")),
            published_at=snippet.get("publishedAt"),
            view_count=_int_or_none(stats.get("viewCount")),
            like_count=_int_or_none(stats.get("likeCount")),
            comment_count=_int_or_none(stats.get("commentCount")),
            description=str(snippet.get("description") or ""),
            language=snippet.get("defaultAudioLanguage") or snippet.get("defaultLanguage"),
            source="data_api",
            quota_units=1,
        )

    def _metadata_from_oembed(self, ref: VideoRef) -> VideoMetadata:
        response = self._get(
            self.settings.youtube_oembed_url, {"url": ref.canonical_url, "format": "json"}
        )
        status = response.status_code
        if status == 401:
            raise _failure("video_private", "the video is private", http_status=status)
        if status == 403:
            raise _failure(
                "youtube_forbidden", "YouTube refused to describe the video", http_status=status
            )
        if status == 404:
            raise _failure(
                "video_unavailable", "the video does not exist or was removed", http_status=status
            )
        if status != 200:
            raise _failure(
                "youtube_unreachable", f"YouTube oEmbed answered HTTP {status}", http_status=status
            )
        body = _json_object(response)
        return VideoMetadata(
            title=str(body.get("title") or ""),
            channel=body.get("author_name"),
            duration_s=None,
            published_at=None,
            view_count=None,
            like_count=None,
            comment_count=None,
            description="",
            language=None,
            source="oembed",
        )

    # --- comments --------------------------------------------------------------------

    def fetch_comments(self, video_id: str, limit: int) -> CommentsFetch:
        """Up to ``limit`` (capped by ``youtube_max_comments``) top comments, 1 unit a page."""
        ref = VideoRef(video_id)
        if self.api_key is None:
            raise _failure(
                "youtube_key_missing",
                "reading comments needs a YouTube Data API key (set YOUTUBE_API_KEY)",
            )
        wanted = max(1, min(limit, self.settings.youtube_max_comments))
        comments: list[Comment] = []
        token: str | None = None
        pages = 0
        while len(comments) < wanted and pages < MAX_PAGES:
            params = {
                "part": "snippet",
                "videoId": ref.video_id,
                "maxResults": str(min(PAGE_SIZE, wanted - len(comments))),
                "order": "relevance",
                "textFormat": "plainText",
            }
            if token:
                params["pageToken"] = token
            try:
                body = self._api_json("commentThreads", params)
            except FeatureError as exc:
                if not comments:
                    raise
                # Real comments already in hand are worth more than none (e.g. the quota
                # ran out on page three); the caller learns it is partial.
                log.warning(
                    "youtube_comments_stopped", video_id=ref.video_id, page=pages + 1, code=exc.code
                )
                spent = pages + int(exc.details.get("quota_units", 0))
                return CommentsFetch(comments, quota_units=spent, pages=pages, complete=False)
            pages += 1
            items = body.get("items") or []
            comments.extend(c for c in map(_comment, items) if c is not None)
            next_token = body.get("nextPageToken")
            if not items or not isinstance(next_token, str) or next_token == token:
                break
            token = next_token
        if not comments:
            raise _failure(
                "no_comments", "the video has no comments yet", pages=pages, quota_units=pages
            )
        return CommentsFetch(comments[:wanted], quota_units=pages, pages=pages)

    # --- thumbnail -------------------------------------------------------------------

    def fetch_thumbnail(self, video_id: str) -> ThumbnailFetch:
        """The largest thumbnail that exists, from ``maxresdefault`` down to ``default``."""
        ref = VideoRef(video_id)
        base = self.settings.youtube_thumbnail_url.rstrip("/")
        for name, _, _ in THUMBNAIL_SIZES:
            data = self._download(f"{base}/{ref.video_id}/{name}.jpg")
            if data is None:
                continue
            try:
                clean = sanitize_image(
                    data,
                    field="thumbnail",
                    max_bytes=THUMBNAIL_MAX_BYTES,
                    max_pixels=THUMBNAIL_MAX_PIXELS,
                    max_side=THUMBNAIL_MAX_SIDE,
                )
            except ProblemError as exc:
                log.warning(
                    "youtube_thumbnail_refused", video_id=ref.video_id, size=name, error=str(exc)
                )
                continue
            image = ImageBlob(clean.data, clean.mime_type)
            return ThumbnailFetch(image, name, clean.width, clean.height)
        raise _failure("thumbnail_unavailable", "YouTube has no thumbnail for this video")

    def _download(self, url: str) -> bytes | None:
        """The image bytes, or None when missing (404, 3xx, too large); 5xx raises."""
        try:
            with self.http.stream("GET", url) as response:
                status = response.status_code
                if status >= 500 or status == 429:
                    raise _failure(
                        "youtube_unreachable",
                        f"YouTube's image server answered HTTP {status}",
                        http_status=status,
                    )
                if status != 200:
                    # 404 (YouTube even sends a grey placeholder with it) or a redirect
                    # we will not follow: either way this size is not there.
                    return None
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > THUMBNAIL_MAX_BYTES:
                        return None
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc

    # --- HTTP plumbing ---------------------------------------------------------------

    def _get(self, url: str, params: dict[str, str]) -> httpx.Response:
        try:
            response = self.http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        if response.is_redirect:
            raise _failure(
                "youtube_unreachable",
                "YouTube answered with a redirect, which is not followed",
                http_status=response.status_code,
            )
        return response

    def _api_json(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        """GET a Data API endpoint; an error body becomes the matching FeatureError."""
        key = self.api_key
        assert key is not None  # callers check first, with their own message
        url = f"{self.settings.youtube_api_url.rstrip('/')}/{endpoint}"
        response = self._get(url, {**params, "key": key})
        if response.status_code != 200:
            error = _api_error(response)
            # Google bills refused requests too (at least one unit), except when the quota
            # itself is what refused them.
            if error.code != "youtube_quota_exceeded":
                error.details["quota_units"] = 1
            raise error
        return _json_object(response)


def _unreachable(exc: httpx.HTTPError) -> FeatureError:
    # The exception's text is left out on purpose: the request URL carries the API key.
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    return _failure("youtube_unreachable", f"YouTube {kind} ({type(exc).__name__})")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _failure("youtube_unreachable", "YouTube sent an answer that is not JSON")
    return body


def _api_error(response: httpx.Response) -> FeatureError:
    """Map a Data API error response to a stable code, by reason first, then status."""
    status = response.status_code
    reason = domain = None
    message = ""
    try:
        error = response.json().get("error") or {}
        message = str(error.get("message") or "")
        first = (error.get("errors") or [{}])[0]
        reason, domain = first.get("reason"), first.get("domain")
    except (ValueError, AttributeError, IndexError):
        pass  # not the documented error shape: fall back on the status alone
    facts = {"http_status": status, "reason": reason}
    if reason in _QUOTA_REASONS or domain == "youtube.quota" or status == 429:
        return _failure("youtube_quota_exceeded", "the YouTube Data API quota is used up", **facts)
    if reason in _KEY_REASONS or "API key not valid" in message:
        return _failure(
            "youtube_key_invalid", "the YouTube Data API key is invalid or not allowed", **facts
        )
    if reason == "commentsDisabled":
        return _failure("comments_disabled", "comments are turned off for this video", **facts)
    if reason == "videoNotFound" or status == 404:
        return _failure("video_unavailable", "the video does not exist or was removed", **facts)
    if status == 403 and reason == "forbidden" and str(domain or "").startswith("youtube."):
        return _failure(
            "video_private", "the video is private or its comments are not public", **facts
        )
    if status == 403:
        return _failure("youtube_forbidden", "YouTube refused the request", **facts)
    return _failure(
        "youtube_unreachable",
        f"YouTube answered HTTP {status}" + (f" ({reason})" if reason else ""),
        **facts,
    )


def _comment(item: Any) -> Comment | None:
    """One ``commentThread`` item as a Comment; None when it holds no text."""
    if not isinstance(item, dict):
        return None
    thread = item.get("snippet") or {}
    top = (thread.get("topLevelComment") or {}).get("snippet") or {}
    text = str(top.get("textDisplay") or "").strip()
    if not text:
        return None
    return Comment(
        text=text,
        author=top.get("authorDisplayName"),
        likes=_int_or_none(top.get("likeCount")) or 0,
        published_at=top.get("publishedAt"),
        replies=_int_or_none(thread.get("totalReplyCount")) or 0,
    )


# --- transcripts ---------------------------------------------------------------------


def fetch_transcript(
    video_id: str, languages: Iterable[str], *, enabled: bool, timeout_s: float
) -> list[TranscriptLine] | None:
    """The video's captions as timed lines, or None: disabled, none exist, or any failure.

    Best effort by design: the library scrapes youtube.com (no key, no quota), and YouTube
    often blocks it from data-centre addresses. A missing transcript never fails a feature.
    """
    if not enabled:
        return None
    ref = VideoRef(video_id)
    try:
        lines = download_transcript(ref.video_id, tuple(languages), timeout_s)
    except Exception as exc:
        log.info("youtube_transcript_unavailable", video_id=ref.video_id, error=type(exc).__name__)
        return None
    return lines or None


def download_transcript(
    video_id: str, languages: tuple[str, ...], timeout_s: float
) -> list[TranscriptLine]:
    """Call ``youtube-transcript-api``: the wanted languages first, else any transcript.

    Tests replace this function; it is the only code that talks to youtube.com's pages.
    """
    import requests
    from youtube_transcript_api import NoTranscriptFound, YouTubeTranscriptApi

    class _TimedSession(requests.Session):
        # requests has no session-wide timeout and the library sets none: without this a
        # stalled connection would hold a worker until the task deadline.
        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", timeout_s)
            return super().request(*args, **kwargs)

    with _TimedSession() as session:
        api = YouTubeTranscriptApi(http_client=session)
        try:
            fetched = api.fetch(video_id, languages=languages or ("en",))
        except NoTranscriptFound:
            available = list(api.list(video_id))
            if not available:
                return []
            fetched = available[0].fetch()
    return [
        TranscriptLine(start=float(snippet.start), text=snippet.text.strip())
        for snippet in fetched
        if snippet.text and snippet.text.strip()
    ]

"""A fake YouTube on 127.0.0.1: Data API v3, oEmbed and the thumbnail host.

It serves the shapes documented in ``EXTERNAL_APIS.md``: ``/youtube/v3/videos``,
``/youtube/v3/commentThreads`` (pages with ``nextPageToken``, ``maxResults`` honoured,
``textFormat`` applied, the key checked), ``/oembed``, and ``/vi/<id>/<size>.jpg`` with
real JPEGs at YouTube's sizes. Errors use the Data API's error body
(``error.code``, ``error.message``, ``error.errors[0].domain/reason/message``).

Tests add videos with :meth:`FakeYouTube.add_video`, flip the global switches
(``quota_exceeded``, ``valid_keys``, ``server_error``, ``redirect_to``, ``delay_s``),
and read back every request from :attr:`FakeYouTube.requests`. With ``any_video`` set,
every well-formed id it is asked for is a video (a bench's crowd of links); run alone,
``python -m tests.support.fakes.youtube --any-video`` serves until interrupted.
"""

from __future__ import annotations

import html
import io
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from tests.support.fakes.server import FakeServer

THUMBNAIL_SIZES = {
    "maxresdefault": (1280, 720),
    "sddefault": (640, 480),
    "hqdefault": (480, 360),
    "mqdefault": (320, 180),
    "default": (120, 90),
}
DEFAULT_KEY = "yt-key"
# What YouTube's video ids look like: 11 characters of the URL-safe base64 alphabet.
VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")


@cache
def thumbnail_jpeg(width: int, height: int) -> bytes:
    """A real JPEG of the given size (a gradient, so each size decodes differently)."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


@dataclass(frozen=True)
class FakeComment:
    """A top-level comment as the fake serves it."""

    text: str
    author: str = "Viewer"
    likes: int = 0
    replies: int = 0
    published_at: str = "2024-11-05T10:00:00Z"


def make_comments(count: int, prefix: str = "comment") -> list[FakeComment]:
    """``count`` distinct comments: ``"<prefix> 0"``, ``"<prefix> 1"``, ..."""
    return [
        FakeComment(f"{prefix} {i}", author=f"viewer{i}", likes=count - i, replies=i % 3)
        for i in range(count)
    ]


@dataclass
class FakeVideo:
    """One video the fake knows."""

    video_id: str
    title: str
    channel: str
    description: str
    duration: str
    published_at: str
    view_count: int
    like_count: int
    language: str | None
    comments: list[FakeComment]
    comments_disabled: bool
    private: bool
    thumbnails: tuple[str, ...]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: path and decoded query (last value per name)."""

    method: str
    path: str
    query: dict[str, str]
    received_at: float = field(default_factory=time.monotonic)


def api_error(code: int, domain: str, reason: str, message: str) -> dict[str, Any]:
    """The Data API's error body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": domain, "reason": reason, "message": message}],
        }
    }


class FakeYouTube(FakeServer):
    """The fake server: ``with FakeYouTube() as fake: ... fake.api_url ...``."""

    name = "fake-youtube"

    def __init__(self) -> None:
        """Starts with no videos, key ``yt-key`` accepted, nothing failing."""
        super().__init__()
        self.videos: dict[str, FakeVideo] = {}
        self.valid_keys: set[str] = {DEFAULT_KEY}
        self.quota_exceeded = False
        self.server_error: int | None = None  # every request answers this 5xx
        self.redirect_to: str | None = None  # every request answers 302 to here
        self.delay_s = 0.0  # before every answer (to make concurrent callers overlap)
        # Every well-formed id not added is served as a video with this many comments.
        self.any_video: int | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    @property
    def api_url(self) -> str:
        """What REFRACT_YOUTUBE_API_URL should be."""
        return self.url + "/youtube/v3"

    @property
    def oembed_url(self) -> str:
        """What REFRACT_YOUTUBE_OEMBED_URL should be."""
        return self.url + "/oembed"

    @property
    def thumbnail_url(self) -> str:
        """What REFRACT_YOUTUBE_THUMBNAIL_URL should be."""
        return self.url + "/vi"

    # --- scripting and inspection --------------------------------------------------

    def add_video(
        self,
        video_id: str,
        *,
        title: str = "A fake video",
        channel: str = "Fake Channel",
        description: str = "What this video is about.",
        duration: str = "PT4M13S",
        published_at: str = "2024-11-05T09:00:00Z",
        view_count: int = 12345,
        like_count: int = 678,
        language: str | None = "en",
        comments: Iterable[FakeComment | str] = (),
        comments_disabled: bool = False,
        private: bool = False,
        thumbnails: Iterable[str] = ("hqdefault", "mqdefault", "default"),
    ) -> FakeVideo:
        """Make ``video_id`` known; comments are served in the given order."""
        sizes = tuple(thumbnails)
        unknown = set(sizes) - THUMBNAIL_SIZES.keys()
        if unknown:
            raise ValueError(f"unknown thumbnail sizes: {sorted(unknown)}")
        video = FakeVideo(
            video_id=video_id,
            title=title,
            channel=channel,
            description=description,
            duration=duration,
            published_at=published_at,
            view_count=view_count,
            like_count=like_count,
            language=language,
            comments=[c if isinstance(c, FakeComment) else FakeComment(c) for c in comments],
            comments_disabled=comments_disabled,
            private=private,
            thumbnails=sizes,
        )
        with self._lock:
            self.videos[video_id] = video
        return video

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        """The requests whose path ends with ``path_suffix`` (e.g. ``"/commentThreads"``)."""
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    def reset(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _video(self, video_id: str | None) -> FakeVideo | None:
        with self._lock:
            video = self.videos.get(video_id or "")
        if video is None and self.any_video is not None and VIDEO_ID.fullmatch(video_id or ""):
            assert video_id is not None
            comments = make_comments(self.any_video, prefix=f"on {video_id}")
            video = self.add_video(video_id, title=f"Video {video_id}", comments=comments)
        return video


class _Handler(BaseHTTPRequestHandler):
    owner: FakeYouTube
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        owner = self.owner
        owner._record(RecordedRequest("GET", parts.path, query))
        if owner.delay_s:
            time.sleep(owner.delay_s)
        if owner.redirect_to is not None:
            self._send(302, b"", "text/html", {"Location": owner.redirect_to + parts.path})
        elif owner.server_error is not None:
            body = api_error(owner.server_error, "global", "backendError", "Backend Error")
            self._json(owner.server_error, body)
        elif parts.path == "/youtube/v3/videos":
            self._api(query, self._videos)
        elif parts.path == "/youtube/v3/commentThreads":
            self._api(query, self._comment_threads)
        elif parts.path == "/oembed":
            self._oembed(query)
        elif parts.path.startswith("/vi/"):
            self._thumbnail(parts.path)
        else:
            self._send(404, b"Not Found", "text/plain")

    # --- Data API ------------------------------------------------------------------

    def _api(self, query: dict[str, str], serve: Any) -> None:
        key = query.get("key")
        if not key:
            message = "The request is missing a valid API key."
            self._json(403, api_error(403, "global", "forbidden", message))
        elif key not in self.owner.valid_keys:
            message = "API key not valid. Please pass a valid API key."
            self._json(400, api_error(400, "usageLimits", "keyInvalid", message))
        elif self.owner.quota_exceeded:
            message = (
                "The request cannot be completed because you have exceeded your "
                '<a href="/youtube/v3/getting-started#quota">quota</a>.'
            )
            self._json(403, api_error(403, "youtube.quota", "quotaExceeded", message))
        else:
            serve(query)

    def _videos(self, query: dict[str, str]) -> None:
        items = []
        for video_id in query.get("id", "").split(","):
            video = self.owner._video(video_id)
            if video is None or video.private:
                continue  # the real API leaves private and unknown videos out, no error
            items.append(_video_item(video, set(query.get("part", "").split(","))))
        self._json(
            200,
            {
                "kind": "youtube#videoListResponse",
                "etag": "fake-etag",
                "items": items,
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
            },
        )

    def _comment_threads(self, query: dict[str, str]) -> None:
        domain = "youtube.commentThread"
        video = self.owner._video(query.get("videoId"))
        if video is None:
            message = "The video identified by the videoId parameter could not be found."
            self._json(404, api_error(404, domain, "videoNotFound", message))
            return
        if video.private:
            message = "The comment thread could not be retrieved due to insufficient permissions."
            self._json(403, api_error(403, domain, "forbidden", message))
            return
        if video.comments_disabled:
            message = "The video identified by the videoId parameter has disabled comments."
            self._json(403, api_error(403, domain, "commentsDisabled", message))
            return
        try:
            per_page = int(query.get("maxResults", "20"))
        except ValueError:
            per_page = -1
        if not 1 <= per_page <= 100:
            message = "The maxResults parameter must be between 1 and 100."
            self._json(400, api_error(400, "youtube.parameter", "invalidParameter", message))
            return
        token = query.get("pageToken", "")
        start = _token_offset(token) if token else 0
        if start is None or start > len(video.comments):
            message = "The pageToken parameter specifies an invalid page token."
            self._json(400, api_error(400, domain, "invalidPageToken", message))
            return
        page = video.comments[start : start + per_page]
        html_format = query.get("textFormat", "html") != "plainText"
        body: dict[str, Any] = {
            "kind": "youtube#commentThreadListResponse",
            "etag": "fake-etag",
            "pageInfo": {"totalResults": len(page), "resultsPerPage": per_page},
            "items": [
                _thread_item(video.video_id, start + i, c, html_format) for i, c in enumerate(page)
            ],
        }
        if start + per_page < len(video.comments):
            body["nextPageToken"] = _offset_token(start + per_page)
        self._json(200, body)

    # --- oEmbed and thumbnails -----------------------------------------------------

    def _oembed(self, query: dict[str, str]) -> None:
        target = urlsplit(query.get("url", ""))
        video_ids = parse_qs(target.query).get("v", [])
        if target.netloc != "www.youtube.com" or target.path != "/watch" or not video_ids:
            self._send(400, b"Bad Request", "text/plain")
            return
        if query.get("format", "json") != "json":
            self._send(501, b"Not Implemented", "text/plain")
            return
        video = self.owner._video(video_ids[0])
        if video is None:
            self._send(404, b"Not Found", "text/plain")
            return
        if video.private:
            self._send(401, b"Unauthorized", "text/plain")
            return
        vid = video.video_id
        self._json(
            200,
            {
                "title": video.title,
                "author_name": video.channel,
                "author_url": "https://www.youtube.com/@fakechannel",
                "type": "video",
                "height": 113,
                "width": 200,
                "version": "1.0",
                "provider_name": "YouTube",
                "provider_url": "https://www.youtube.com/",
                "thumbnail_height": 360,
                "thumbnail_width": 480,
                "thumbnail_url": f"https://i.ytimg.com/vi/{vid}/hqdefault.jpg",
                "html": f'<iframe src="https://www.youtube.com/embed/{vid}"></iframe>',
            },
        )

    def _thumbnail(self, path: str) -> None:
        segments = path.split("/")  # "", "vi", id, "size.jpg"
        name = segments[3].removesuffix(".jpg") if len(segments) == 4 else ""
        video = self.owner._video(segments[2] if len(segments) == 4 else None)
        if video is not None and name in video.thumbnails:
            self._send(200, thumbnail_jpeg(*THUMBNAIL_SIZES[name]), "image/jpeg")
        else:
            # YouTube answers a missing size with 404 and a grey 120x90 placeholder.
            self._send(404, thumbnail_jpeg(120, 90), "image/jpeg")

    # --- sending -------------------------------------------------------------------

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json; charset=UTF-8")

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


def _offset_token(offset: int) -> str:
    return f"QURTSl{offset:08x}"


def _token_offset(token: str) -> int | None:
    if not token.startswith("QURTSl"):
        return None
    try:
        return int(token[6:], 16)
    except ValueError:
        return None


def _video_item(video: FakeVideo, parts: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": "youtube#video", "etag": "fake-etag", "id": video.video_id}
    if "snippet" in parts:
        snippet: dict[str, Any] = {
            "publishedAt": video.published_at,
            "channelId": "UCfakefakefakefakefakefa",
            "title": video.title,
            "description": video.description,
            "channelTitle": video.channel,
            "categoryId": "22",
            "liveBroadcastContent": "none",
            "thumbnails": {
                name: {
                    "url": f"https://i.ytimg.com/vi/{video.video_id}/{name}.jpg",
                    "width": THUMBNAIL_SIZES[name][0],
                    "height": THUMBNAIL_SIZES[name][1],
                }
                for name in video.thumbnails
            },
        }
        if video.language:
            snippet["defaultAudioLanguage"] = video.language
        item["snippet"] = snippet
    if "contentDetails" in parts:
        item["contentDetails"] = {
            "duration": video.duration,
            "dimension": "2d",
            "definition": "hd",
            "caption": "false",
        }
    if "statistics" in parts:
        stats = {
            "viewCount": str(video.view_count),
            "likeCount": str(video.like_count),
            "favoriteCount": "0",
        }
        if not video.comments_disabled:
            stats["commentCount"] = str(len(video.comments))
        item["statistics"] = stats
    return item


def _thread_item(video_id: str, index: int, comment: FakeComment, html_format: bool) -> Any:
    display = html.escape(comment.text).replace("\n", "<br>") if html_format else comment.text
    comment_id = f"Ugz{index:020d}"
    return {
        "kind": "youtube#commentThread",
        "etag": "fake-etag",
        "id": comment_id,
        "snippet": {
            "channelId": "UCfakefakefakefakefakefa",
            "videoId": video_id,
            "topLevelComment": {
                "kind": "youtube#comment",
                "etag": "fake-etag",
                "id": comment_id,
                "snippet": {
                    "videoId": video_id,
                    "textDisplay": display,
                    "textOriginal": comment.text,
                    "authorDisplayName": comment.author,
                    "likeCount": comment.likes,
                    "publishedAt": comment.published_at,
                    "updatedAt": comment.published_at,
                },
            },
            "canReply": True,
            "totalReplyCount": comment.replies,
            "isPublic": True,
        },
    }


__all__ = [
    "DEFAULT_KEY",
    "THUMBNAIL_SIZES",
    "FakeComment",
    "FakeYouTube",
    "RecordedRequest",
    "api_error",
    "make_comments",
    "thumbnail_jpeg",
]


FakeYouTube.handler = _Handler


def main() -> None:
    """Serve a fake YouTube until interrupted: ``python -m tests.support.fakes.youtube``.

    Prints the settings that point Refract at it, one ``NAME=value`` line each, then an
    empty line.
    """
    import argparse

    parser = argparse.ArgumentParser(description="A fake YouTube on 127.0.0.1, for manual runs.")
    parser.add_argument(
        "--any-video",
        type=int,
        metavar="COMMENTS",
        default=None,
        help="serve every well-formed video id, with this many comments",
    )
    args = parser.parse_args()
    fake = FakeYouTube()
    fake.any_video = args.any_video
    fake.start()
    fake.serve_until_interrupted(
        {
            "YOUTUBE_API_KEY": DEFAULT_KEY,
            "REFRACT_YOUTUBE_API_URL": fake.api_url,
            "REFRACT_YOUTUBE_OEMBED_URL": fake.oembed_url,
            "REFRACT_YOUTUBE_THUMBNAIL_URL": fake.thumbnail_url,
        }
    )


if __name__ == "__main__":
    main()

"""The one parser for YouTube video links.

Everything that takes a YouTube URL from a client goes through ``parse_video_url``; the
rest of Refract only ever sees the 11-character video id it returns, so the server never
fetches a URL a client chose (see API.md, Security). The parser is an allow-list: exact
hosts, known path shapes, a strict id alphabet. Anything it does not recognise is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, urlsplit

MAX_URL_LENGTH = 2048

_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
# Scheme-like prefix ("javascript:", "data:", "https:"); used to tell a scheme from a bare host.
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# t=/start= values: 90, 90s, 1m30s, 1h2m3s. Digit runs are bounded so no huge ints are built.
_START_RE = re.compile(r"(?:(\d{1,3})h)?(?:(\d{1,5})m)?(?:(\d{1,6})s?)?")

_MAIN_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"})
_SHORT_HOSTS = frozenset({"youtu.be"})
_NOCOOKIE_HOSTS = frozenset({"youtube-nocookie.com", "www.youtube-nocookie.com"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Path prefixes whose next segment is the video id.
_ID_PATH_PREFIXES = frozenset({"shorts", "embed", "live", "v", "e"})
_CHANNEL_PREFIXES = frozenset({"channel", "c", "user"})
# /embed/videoseries?list=... is an embedded playlist, and "videoseries" happens to be
# 11 characters of the id alphabet, so it must be refused by name.
_NOT_IDS = frozenset({"videoseries"})

NOT_A_VIDEO_LINK = "url is not a YouTube video link"
MALFORMED_ID = "url is a YouTube link but its video id is malformed"
PLAYLIST_PAGE = "url is a YouTube playlist page, not a video"
CHANNEL_PAGE = "url is a YouTube channel page, not a video"
TOO_LONG = f"url is too long (at most {MAX_URL_LENGTH} characters)"


class InvalidVideoLink(ValueError):
    """The text is not a link to one YouTube video; the message is fit to show a client."""


@dataclass(frozen=True)
class VideoRef:
    """A YouTube video, by id. ``start_s`` (from ``t=``/``start=``) is informational only.

    Two refs to the same video compare equal whatever their start time.
    """

    video_id: str
    start_s: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Constructing a ref by hand must not bypass the id check the parser applies.
        if not _ID_RE.fullmatch(self.video_id) or self.video_id in _NOT_IDS:
            raise InvalidVideoLink(MALFORMED_ID)

    @property
    def canonical_url(self) -> str:
        """The one URL form Refract uses for this video (e.g. as Gemini ``file_data``)."""
        return f"https://www.youtube.com/watch?v={self.video_id}"


def parse_video_url(raw: str) -> VideoRef:
    """Parse any common YouTube video link form into a ``VideoRef``.

    Raises ``InvalidVideoLink`` with a human-readable message for anything that is not a
    link to a single video on youtube.com, youtu.be or youtube-nocookie.com.
    """
    if not isinstance(raw, str):
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    if len(raw) > MAX_URL_LENGTH:
        raise InvalidVideoLink(TOO_LONG)
    text = raw.strip()
    if not text:
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    # Whitespace, control characters and backslashes are treated differently by browsers
    # and urllib (WHATWG parsers turn "\" into "/"), which is how look-alike hosts sneak in.
    if any(ch.isspace() or not ch.isprintable() or ch == "\\" for ch in text):
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    parts = _split(text)
    host = _checked_host(parts)
    segments = [s for s in parts.path.split("/") if s]
    query = parse_qsl(parts.query, keep_blank_values=True)
    params: dict[str, list[str]] = {}
    for key, value in query:
        params.setdefault(key, []).append(value)

    if host in _SHORT_HOSTS:
        video_id = _short_link_id(segments)
    elif host in _NOCOOKIE_HOSTS:
        video_id = _nocookie_id(segments)
    else:
        video_id = _main_site_id(segments, params)
    return VideoRef(video_id, start_s=_start_seconds(params, parts.fragment))


def _split(text: str) -> SplitResult:
    """Split the URL, adding ``https://`` when no scheme was given; only http(s) pass."""
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        parts = urlsplit(text)
    elif _SCHEME_RE.match(text) or text.startswith("/"):
        # javascript:, data:, ftp:, file:, "host:port/..." without a scheme, "//host" forms.
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    else:
        parts = urlsplit("https://" + text)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    return parts


def _checked_host(parts: SplitResult) -> str:
    """Return the lowercased host if it is on the allow-list, with no userinfo or odd port."""
    netloc = parts.netloc
    # "https://youtube.com@evil.com/..." has host evil.com; refuse any userinfo outright.
    if not netloc or "@" in netloc or not netloc.isascii():
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    host, sep, port = netloc.partition(":")
    if sep:
        default = _DEFAULT_PORTS[parts.scheme.lower()]
        if not port.isdigit() or int(port) != default:
            raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    host = host.lower()
    if host not in _MAIN_HOSTS | _SHORT_HOSTS | _NOCOOKIE_HOSTS:
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    return host


def _checked_id(candidate: str) -> str:
    """Return ``candidate`` if it is a well-formed video id, else raise."""
    if not _ID_RE.fullmatch(candidate):
        raise InvalidVideoLink(MALFORMED_ID)
    return candidate


def _short_link_id(segments: list[str]) -> str:
    """youtu.be/ID (query parameters such as si= and t= are ignored)."""
    if len(segments) != 1:
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    return _checked_id(segments[0])


def _nocookie_id(segments: list[str]) -> str:
    """youtube-nocookie.com only serves embeds: /embed/ID."""
    if len(segments) == 2 and segments[0] == "embed":
        if segments[1] == "videoseries":
            raise InvalidVideoLink(PLAYLIST_PAGE)
        return _checked_id(segments[1])
    raise InvalidVideoLink(NOT_A_VIDEO_LINK)


def _main_site_id(segments: list[str], params: dict[str, list[str]]) -> str:
    """youtube.com paths: /watch?v=ID, /shorts/ID, /embed/ID, /live/ID, /v/ID, /e/ID."""
    if not segments:
        raise InvalidVideoLink(NOT_A_VIDEO_LINK)
    head = segments[0]
    if head.startswith("@") or head in _CHANNEL_PREFIXES:
        raise InvalidVideoLink(CHANNEL_PAGE)
    if head == "playlist":
        raise InvalidVideoLink(PLAYLIST_PAGE)
    if head == "watch" and len(segments) == 1:
        values = params.get("v", [])
        if not values:
            raise InvalidVideoLink(PLAYLIST_PAGE if "list" in params else NOT_A_VIDEO_LINK)
        # Several different v= values leave it unclear which video the visitor meant.
        if len(set(values)) > 1:
            raise InvalidVideoLink(NOT_A_VIDEO_LINK)
        return _checked_id(values[0])
    if head in _ID_PATH_PREFIXES and len(segments) == 2:
        if segments[1] == "videoseries":
            raise InvalidVideoLink(PLAYLIST_PAGE)
        return _checked_id(segments[1])
    raise InvalidVideoLink(NOT_A_VIDEO_LINK)


def _start_seconds(params: dict[str, list[str]], fragment: str) -> int | None:
    """The start time from ``t=``/``start=`` (query or ``#t=`` fragment), if well-formed."""
    candidates = params.get("t", []) + params.get("start", [])
    fragment_params = dict(parse_qsl(fragment, keep_blank_values=True))
    if "t" in fragment_params:
        candidates.append(fragment_params["t"])
    for value in candidates:
        match = _START_RE.fullmatch(value)
        if value and match:
            hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    return None

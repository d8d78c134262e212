"""YouTube ingestion: metadata, comments, thumbnail and transcript of a parsed video id.

``YouTubeMaterial`` (cached, quota-counted) is what tasks use; ``YouTubeClient`` makes the
HTTP calls. See ``client.py`` for the stable error codes.
"""

from refract.youtube.client import (
    PERMANENT_CODES,
    TRANSIENT_CODES,
    CommentsFetch,
    ThumbnailFetch,
    VideoMetadata,
    YouTubeClient,
    fetch_transcript,
    parse_iso_duration,
)
from refract.youtube.material import MaterialCache, YouTubeMaterial

__all__ = [
    "PERMANENT_CODES",
    "TRANSIENT_CODES",
    "CommentsFetch",
    "MaterialCache",
    "ThumbnailFetch",
    "VideoMetadata",
    "YouTubeClient",
    "YouTubeMaterial",
    "fetch_transcript",
    "parse_iso_duration",
]

"""Request bodies for video jobs: by link, or with the material inline."""

from __future__ import annotations

from typing import Any

from tests.support.images import data_url, fixture_bytes

VIDEO_URL = "https://youtu.be/9bZkp7q19f0?si=abc"
CANONICAL_URL = "https://www.youtube.com/watch?v=9bZkp7q19f0"


def video_body(**overrides: Any) -> dict[str, Any]:
    """A valid video job body."""
    body: dict[str, Any] = {"kind": "video", "url": VIDEO_URL, "language": "en"}
    body.update(overrides)
    return body


def inline_source(thumbnail: str | None = None) -> dict[str, Any]:
    """A small inline video source."""
    source: dict[str, Any] = {
        "title": "Gangnam Style",
        "description": "A music video.",
        "transcript": [{"start": 0.0, "text": "Oppan"}, {"start": 4.5, "text": "Gangnam style"}],
        "comments": [
            {"text": "Still great", "author": "a", "likes": 10, "published_at": "2024-11-04"},
        ],
    }
    if thumbnail is not None:
        source["thumbnail"] = thumbnail
    return source


def thumbnail_data_url() -> str:
    """The coffee photo as a ``data:`` URL, like a client would inline it."""
    return data_url(fixture_bytes("coffee.png"))


def make_source(marker: str) -> dict[str, Any]:
    """An inline video source whose transcript carries ``marker`` (only ``summary`` sees it)."""
    return {
        "title": "Brewing better coffee at home",
        "description": "Three habits that change your morning cup.",
        "transcript": [
            {"start": 0.0, "text": f"Welcome back. Today we talk about coffee. {marker}"},
            {"start": 42.5, "text": "First, grind your beans right before brewing."},
            {"start": 95.0, "text": "Second, weigh the water; ratios matter more than gear."},
            {"start": 160.0, "text": "Finally, keep your kettle just off the boil."},
        ],
        "comments": [
            {"text": "This changed my mornings, thank you!", "author": "ana", "likes": 12},
            {"text": "What grinder do you use?", "author": "kim", "likes": 4},
            {"text": "Too long, skip to 1:35", "author": "lee", "likes": 1},
        ],
        "thumbnail": thumbnail_data_url(),
    }

"""What the bench's video jobs carry: a YouTube link (as a booth sends) or the material.

``link``: ``{"kind": "video", "url": ...}``, every job a different video, so none is
answered as another's duplicate; the stack's YouTube must know them (the bench's fake
YouTube serves any well-formed id, see :mod:`bench.stack`). ``source``: the example
video's material inline (``examples/video.json``: title, description, transcript,
comments and thumbnail), each job titled apart; such a request carries and checks a
thumbnail, and the workers fetch nothing.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from launch.targets import load_source

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FORMS = ("link", "source")


def video_bodies(count: int, form: str = "link") -> list[dict[str, Any]]:
    """``count`` bodies of ``POST /api/v1/jobs`` for video jobs, each a different job."""
    if form == "link":
        ids: set[str] = set()
        while len(ids) < count:
            # 8 random bytes are 11 URL-safe base64 characters: a video id's shape.
            ids.add(secrets.token_urlsafe(8))
        return [{"kind": "video", "url": f"https://www.youtube.com/watch?v={id_}"} for id_ in ids]
    if form == "source":
        source = load_source(EXAMPLES / "video.json")
        return [
            {"kind": "video", "source": {**source, "title": f"{source['title']} #{n}"}}
            for n in range(count)
        ]
    raise ValueError(f"no such form {form!r}: one of {', '.join(FORMS)}")

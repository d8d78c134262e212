"""What ``refract submit`` was given: a YouTube link, a photo, or a video source JSON file.

:func:`read_target` decides by content, not by name alone, and says in one line what it
could not read and why (a missing file, a file that is not an image, a JSON file that is
not a video source), before anything is sent to the API.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refract.core.errors import RefractError

# Where an image's format can be told from its first bytes: those the API takes...
ACCEPTED_IMAGES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
# ...and common ones it does not, so that such a photo is named for what it is.
OTHER_IMAGES = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP", b"II*\0": "TIFF"}
OTHER_IMAGES |= {b"MM\0*": "TIFF"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"}
# The fields of a video ``source`` (api/schemas.py, VideoSource).
SOURCE_FIELDS = ("title", "description", "transcript", "comments", "thumbnail")
USAGE = "give a YouTube link, a photo (JPEG, PNG or WebP) or a video source JSON file"


class TargetError(RefractError):
    """The target could not be read as anything ``refract submit`` can send."""


@dataclass(frozen=True)
class Target:
    """What to submit: exactly one of ``url``, ``photo`` (with ``mime``) or ``source``."""

    url: str | None = None
    photo: Path | None = None
    mime: str = ""
    source: dict[str, Any] | None = None


def image_type(data: bytes) -> str | None:
    """The MIME type of an image the API takes (JPEG, PNG, WebP), from its first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in ACCEPTED_IMAGES.items() if data.startswith(magic)), None)


def other_image_format(data: bytes) -> str | None:
    """The name of an image format the API does not take (GIF, BMP, TIFF, HEIC), if any."""
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "HEIC"
    return next((name for magic, name in OTHER_IMAGES.items() if data.startswith(magic)), None)


def looks_like_url(target: str) -> bool:
    """Whether ``target`` is meant as a link rather than a file name."""
    lowered = target.lower()
    return "://" in lowered or lowered.startswith(
        ("www.", "youtube.com/", "m.youtube.com/", "music.youtube.com/", "youtu.be/")
    )


def read_target(target: str) -> Target:
    """Read ``target``: a file if one exists by that name, else a link; else TargetError."""
    path = Path(target).expanduser()
    if not path.exists():
        if looks_like_url(target):
            return Target(url=target)
        raise TargetError(f"{target}: no such file ({USAGE})")
    if path.is_dir():
        raise TargetError(f"{target}: is a directory ({USAGE})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TargetError(f"{target}: cannot be read: {exc.strerror or exc}") from None
    mime = image_type(data)
    if mime is not None:
        return Target(photo=path, mime=mime)
    other = other_image_format(data)
    if other is not None:
        raise TargetError(f"{target}: a {other} image; the API takes JPEG, PNG or WebP photos")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise TargetError(f"{target}: not an image (its content is not JPEG, PNG or WebP)")
    return Target(source=load_source(path, data))


def load_source(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """A video ``source`` JSON file; a thumbnail given as a file name is inlined as data URL."""
    raw = path.read_bytes() if data is None else data
    try:
        source = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise TargetError(f"{path}: not an image and not a JSON text file ({USAGE})") from None
    except json.JSONDecodeError as exc:
        raise TargetError(
            f"{path}: not an image, and not JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} (a video source is a JSON object with "
            f"{', '.join(SOURCE_FIELDS)})"
        ) from None
    if not isinstance(source, dict) or not set(source) & set(SOURCE_FIELDS):
        raise TargetError(
            f"{path}: JSON, but not a video source: it needs at least one of the fields "
            f"{', '.join(SOURCE_FIELDS)}"
        )
    unknown = sorted(set(source) - set(SOURCE_FIELDS))
    if unknown:
        raise TargetError(
            f"{path}: unknown field(s) {', '.join(unknown)} in the video source "
            f"(its fields: {', '.join(SOURCE_FIELDS)})"
        )
    thumbnail = source.get("thumbnail")
    if isinstance(thumbnail, str) and thumbnail and not thumbnail.startswith("data:"):
        image = (path.parent / thumbnail).resolve()
        if not image.is_file():
            raise TargetError(f"{path}: its thumbnail file {image} does not exist")
        content = image.read_bytes()
        mime = image_type(content) or mimetypes.guess_type(image.name)[0] or "image/jpeg"
        source["thumbnail"] = f"data:{mime};base64,{base64.b64encode(content).decode()}"
    return source

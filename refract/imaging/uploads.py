"""Checking and cleaning images that clients send.

Uploads are judged by their bytes, never by file name or Content-Type: Pillow must
identify them as JPEG, PNG or WebP, their pixel count is checked from the header before
any pixel is decoded, they are then fully decoded (a truncated file is refused), turned
upright per EXIF, and re-encoded from pixels so that no metadata (EXIF, GPS, XMP, ICC
profiles, PNG text chunks) survives. An 8-bit RGB or RGBA PNG that holds nothing but its
header, pixel data and end (what a booth's canvas capture sends) already has no
metadata: once it has decoded in full it is kept as sent, which spares the request
the image's encoding (~15 ms for a 512x512 photo), the longest step of a photo's
submission.

Choices worth knowing:

- Animated PNG/WebP (and multi-picture MPO JPEGs from phones) are accepted; only the
  first frame is kept. A photo booth wants one picture, and refusing a phone's "motion"
  file would only confuse the visitor.
- The output keeps the input's format. Pixels are normalised to RGB, or RGBA when the
  image has transparency and the format can carry it (PNG, WebP), so consumers
  (face detection, the model) never meet CMYK, palette or 16-bit modes.
- Colour profiles are dropped, not applied: pixels are taken as sRGB. Parsing a hostile
  ICC profile is attack surface we do not need for a booth photo.
- Pillow's global ``Image.MAX_IMAGE_PIXELS`` and ``ImageFile.LOAD_TRUNCATED_IMAGES`` are
  never changed; our own limit comes from the caller.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import math
import re
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from refract.core.errors import (
    FieldError,
    PayloadTooLarge,
    ProblemError,
    UnsupportedMediaType,
    ValidationFailed,
)

MIN_SIDE_PX = 16
# Video thumbnails are kept (and sent to the model) at most this wide or high: YouTube's
# own standard size, and within one of Gemini's 768-pixel image tiles, so a larger one
# would cost decoding, storage and tokens for detail the model does not use.
THUMBNAIL_MAX_SIDE = 640
JPEG_QUALITY = 92
WEBP_QUALITY = 90

# Pillow's names for what we accept; MPO is a JPEG with extra pictures appended.
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP")
_FORMAT_ALIASES = {"MPO": "JPEG"}
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

# data:image/<subtype>[;name=value]*;base64,<payload>: only the header is matched by the
# regex; the payload is checked by the base64 decoder, which is far cheaper on megabytes.
_DATA_URL_HEADER_RE = re.compile(
    r"data:image/[a-z0-9.+-]{1,40}(?:;[a-z0-9_.-]{1,40}=[a-z0-9_.+-]{1,80}){0,4};base64",
    re.IGNORECASE,
)
NOT_A_DATA_URL = "must be a data: URL; the server never fetches client-chosen URLs"


@dataclass(frozen=True)
class CleanImage:
    """An image that passed every check, without metadata: re-encoded, or a PNG with
    nothing but pixels kept as sent."""

    data: bytes
    mime_type: str
    width: int
    height: int
    format: str  # "JPEG", "PNG" or "WEBP"


def _problem(cls: type[ProblemError], field: str, message: str) -> ProblemError:
    """A problem whose detail names the field and whose ``errors`` lists it."""
    return cls(f"{field}: {message}", errors=[FieldError(field, message)])


def sanitize_image(
    data: bytes,
    *,
    field: str,
    max_bytes: int,
    max_pixels: int,
    min_side: int = MIN_SIDE_PX,
    max_side: int | None = None,
) -> CleanImage:
    """Check ``data`` by content and return it re-encoded, upright and without metadata.

    With ``max_side``, a larger image is kept scaled down to fit it (a JPEG is decoded at
    the reduced size directly, which is several times cheaper than decoding it whole).

    Raises ``PayloadTooLarge`` (413) over ``max_bytes``, ``UnsupportedMediaType`` (415)
    unless Pillow identifies JPEG, PNG or WebP, and ``ValidationFailed`` (422) for too many
    pixels, tiny images, and truncated or corrupt files. ``field`` names the form field
    in the error.
    """
    if len(data) > max_bytes:
        raise _problem(PayloadTooLarge, field, f"image is larger than {max_bytes} bytes")
    if not data:
        raise _problem(UnsupportedMediaType, field, "image is empty")
    image = _open(data, field)
    try:
        return _clean(image, data, field, max_pixels, min_side, max_side)
    finally:
        image.close()


def _open(data: bytes, field: str) -> Image.Image:
    """Identify the image from its header only (no pixel is decoded here)."""
    try:
        image = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except UnidentifiedImageError as exc:
        raise _problem(UnsupportedMediaType, field, "is not a JPEG, PNG or WebP image") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own (global, higher) limit tripped while reading the header.
        raise _problem(ValidationFailed, field, "image has too many pixels") from exc
    except Exception as exc:
        # Plugins raise a wide variety of exceptions on hostile headers (ValueError for
        # oversized text chunks, OSError, ...); all of them mean "not a usable image".
        raise _problem(ValidationFailed, field, "image is truncated or corrupt") from exc
    fmt = _FORMAT_ALIASES.get(image.format or "", image.format or "")
    if fmt not in MIME_TYPES:
        image.close()
        raise _problem(UnsupportedMediaType, field, "is not a JPEG, PNG or WebP image")
    return image


def _clean(
    image: Image.Image,
    data: bytes,
    field: str,
    max_pixels: int,
    min_side: int,
    max_side: int | None,
) -> CleanImage:
    """Check dimensions, decode fully (scaled down past ``max_side``), orient, normalise
    mode and re-encode (``data``, the image's bytes, kept when they are pixels only)."""
    fmt = _FORMAT_ALIASES.get(image.format or "", image.format or "")
    width, height = image.size
    if width * height > max_pixels:
        raise _problem(
            ValidationFailed,
            field,
            f"image is {width}x{height} pixels; at most {max_pixels} pixels are allowed",
        )
    if min(width, height) < min_side:
        raise _problem(
            ValidationFailed,
            field,
            f"image is {width}x{height} pixels; each side must be at least {min_side}",
        )
    too_big = max_side is not None and max(width, height) > max_side
    if too_big and fmt == "JPEG":
        assert max_side is not None
        # JPEG decodes at 1/2, 1/4 or 1/8 scale for free (DCT scaling): ask for the
        # smallest scale that still covers max_side, then resize the rest of the way.
        scale = max_side / max(width, height)
        image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
    try:
        # Animated images: the file is positioned on frame 0 after open; load() decodes
        # only that frame, which is the one we keep.
        image.load()
    except Image.DecompressionBombError as exc:
        raise _problem(ValidationFailed, field, "image has too many pixels") from exc
    except Exception as exc:
        # Truncated data ("image file is truncated"), broken zlib/JPEG streams and plugin
        # parsing errors all surface here with different exception types.
        raise _problem(ValidationFailed, field, "image is truncated or corrupt") from exc
    pixels = _upright(image)
    scaled = max_side is not None and max(pixels.size) > max_side
    if scaled:
        assert max_side is not None
        pixels.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    pixels = _normalise_mode(pixels, fmt)
    if not scaled and pixels is image and fmt == "PNG" and _png_of_pixels_only(data):
        # Decoded in full, nothing turned, scaled or converted, no chunk but pixels.
        kept = data
    else:
        # Emptying info before encoding is what guarantees no metadata survives: some
        # encoders (PNG's iCCP) fall back to the image's info when not told otherwise.
        pixels.info = {}
        kept = _encode(pixels, fmt)
    return CleanImage(
        data=kept,
        mime_type=MIME_TYPES[fmt],
        width=pixels.width,
        height=pixels.height,
        format=fmt,
    )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Header, pixel data, end: the chunks that carry no metadata and need no conversion.
_PNG_PIXEL_CHUNKS = {b"IHDR", b"IDAT", b"IEND"}
# IHDR's colour types for truecolour and truecolour with alpha.
_PNG_RGB, _PNG_RGBA = 2, 6


def _png_of_pixels_only(data: bytes) -> bool:
    """Whether ``data`` is an 8-bit RGB or RGBA PNG of only IHDR, IDAT and IEND chunks,
    every checksum right, and nothing after its end (no metadata, nothing appended)."""
    if not data.startswith(_PNG_SIGNATURE):
        return False
    at = len(_PNG_SIGNATURE)
    kinds: list[bytes] = []
    while at + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kind = data[at + 4 : at + 8]
        end = at + 12 + length
        if kind not in _PNG_PIXEL_CHUNKS or end > len(data):
            return False
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(data[at + 4 : end - 4]) != crc:
            return False
        if kind == b"IHDR" and (length != 13 or data[at + 16] != 8):
            return False  # not 8 bits per sample
        if kind == b"IHDR" and data[at + 17] not in (_PNG_RGB, _PNG_RGBA):
            return False
        kinds.append(kind)
        at = end
        if kind == b"IEND":
            break
    return at == len(data) and kinds[:1] == [b"IHDR"] and kinds[-1:] == [b"IEND"]


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation in place, if any; corrupt EXIF leaves the image as is."""
    # Malformed EXIF from odd cameras should not cost the visitor their photo; the block
    # is dropped on re-encode anyway.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)
    return image


def _normalise_mode(image: Image.Image, fmt: str) -> Image.Image:
    """Return RGB, or RGBA when the image has transparency and ``fmt`` can store it."""
    if image.mode.startswith("I"):
        # 16/32-bit greyscale (PNG): convert("L") would clip at 255 rather than scale.
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        # A 16-bit tRNS colour key no longer matches the 8-bit values; drop it.
        image.info.pop("transparency", None)
    mode = image.mode
    keep_alpha = fmt != "JPEG" and ("A" in mode or "a" in mode or image.has_transparency_data)
    target = "RGBA" if keep_alpha else "RGB"
    return image if mode == target else image.convert(target)


def _encode(image: Image.Image, fmt: str) -> bytes:
    """Encode pixels only: no EXIF, XMP, ICC profile or text chunks are passed."""
    out = io.BytesIO()
    if fmt == "JPEG":
        # No optimize=True: a second Huffman pass costs more than half the encode (6 ms of
        # 10 for a 1280x720 thumbnail, on the submit request's path) for a file ~4 % smaller.
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
    elif fmt == "PNG":
        # Fast zlib: a visitor's 512x512 photo encodes in ~30 ms instead of ~190 ms with
        # optimize=True, on the submit request's path, for a file ~10 % larger. Run-length
        # matching only (Z_RLE) suits a photo's filtered rows: ~20 % faster again than
        # deflate's default search, and ~10 % smaller.
        image.save(out, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    else:
        image.save(out, format="WEBP", quality=WEBP_QUALITY)
    return out.getvalue()


def decode_data_url(
    value: str, *, field: str, max_bytes: int, max_pixels: int, max_side: int | None = None
) -> CleanImage:
    """Decode a ``data:image/...;base64,...`` string and sanitise the image inside it
    (kept at most ``max_side`` pixels a side when given).

    Any other URL is refused (422): the server never fetches client-chosen URLs. The
    decoded size is checked against ``max_bytes`` before the payload is decoded.
    """
    if not isinstance(value, str) or value[:5].lower() != "data:":
        raise _problem(ValidationFailed, field, NOT_A_DATA_URL)
    header, comma, payload = value.partition(",")
    if not comma:
        raise _problem(ValidationFailed, field, "data: URL has no ',' before its data")
    if not header[5:].lower().startswith("image/"):
        raise _problem(UnsupportedMediaType, field, "data: URL must hold an image/* type")
    if not _DATA_URL_HEADER_RE.fullmatch(header):
        raise _problem(
            ValidationFailed, field, "data: URL must be of the form data:image/<type>;base64,..."
        )
    # Base64 turns every 3 bytes into 4 characters; refuse before allocating the bytes.
    if (len(payload) // 4) * 3 - payload[-2:].count("=") > max_bytes:
        raise _problem(PayloadTooLarge, field, f"image is larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _problem(ValidationFailed, field, "data: URL payload is not valid base64") from exc
    return sanitize_image(
        data, field=field, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side
    )

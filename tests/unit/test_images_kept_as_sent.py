"""A PNG of pixels only is kept as sent; anything else about a PNG makes it re-encoded.

Kept: 8-bit RGB or RGBA, chunks IHDR, IDAT and IEND only, every checksum right, nothing
after IEND, not scaled down. Whatever else (a metadata chunk, bytes appended, a palette,
16 bits, a bad checksum, a size past ``max_side``) goes through the re-encoding that
``test_images.py`` checks.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from refract.imaging.uploads import CleanImage, sanitize_image
from tests.support.images import encode, noise


def sanitize(data: bytes, max_side: int | None = None) -> CleanImage:
    """``sanitize_image`` with generous limits."""
    return sanitize_image(
        data, field="photo", max_bytes=10_000_000, max_pixels=40_000_000, max_side=max_side
    )


def reopen(clean: CleanImage) -> Image.Image:
    """The sanitised bytes decoded again, as a consumer would."""
    image = Image.open(io.BytesIO(clean.data))
    image.load()
    return image


def chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, in order."""
    at, kinds = 8, []
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kinds.append(data[at + 4 : at + 8])
        at += 12 + length
    return kinds


def with_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    """``data`` with a chunk of ``kind`` inserted just after IHDR (a right checksum)."""
    chunk = struct.pack(">I", len(body)) + kind + body
    chunk += struct.pack(">I", zlib.crc32(kind + body))
    after_ihdr = 8 + 12 + 13
    return data[:after_ihdr] + chunk + data[after_ihdr:]


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_png_of_pixels_only_is_kept_byte_for_byte(mode: str) -> None:
    data = encode(noise(mode=mode), "PNG")
    assert chunks(data) == [b"IHDR", b"IDAT", b"IEND"]

    clean = sanitize(data)

    assert clean.data == data
    assert (clean.format, clean.mime_type, clean.width, clean.height) == (
        "PNG",
        "image/png",
        64,
        48,
    )


def test_a_png_with_a_harmless_looking_chunk_is_still_re_encoded() -> None:
    # pHYs says nothing about the visitor, but only the three pixel chunks are kept as
    # sent: anything else is judged by the re-encoder, not by a list of what is safe.
    data = with_chunk(encode(noise(), "PNG"), b"pHYs", struct.pack(">IIB", 2835, 2835, 1))

    clean = sanitize(data)

    assert clean.data != data
    assert chunks(clean.data) == [b"IHDR", b"IDAT", b"IEND"]
    assert reopen(clean).tobytes() == noise().tobytes()


def test_a_png_with_metadata_is_re_encoded() -> None:
    info = PngInfo()
    info.add_text("Comment", "taken at home")
    data = encode(noise(), "PNG", pnginfo=info)

    clean = sanitize(data)

    assert b"taken at home" not in clean.data
    assert chunks(clean.data) == [b"IHDR", b"IDAT", b"IEND"]


def test_bytes_after_the_end_are_not_kept() -> None:
    # A polyglot (an archive or a script behind IEND) must not be stored as it came.
    data = encode(noise(), "PNG") + b"PK\x03\x04 hidden archive"

    clean = sanitize(data)

    assert b"hidden archive" not in clean.data
    assert clean.data.endswith(b"IEND\xaeB`\x82")


def test_a_chunk_with_a_wrong_checksum_is_not_kept() -> None:
    data = bytearray(encode(noise(), "PNG"))
    # The IEND chunk's checksum (the last four bytes): Pillow stops reading before it.
    data[-1] ^= 0xFF

    clean = sanitize(bytes(data))

    assert clean.data != bytes(data)
    assert reopen(clean).tobytes() == noise().tobytes()


@pytest.mark.parametrize("mode", ["P", "L", "I;16"])
def test_other_modes_are_converted_not_kept(mode: str) -> None:
    image = noise().convert(mode) if mode != "I;16" else Image.new("I;16", (64, 48), 40_000)
    data = encode(image, "PNG")

    clean = sanitize(data)

    assert clean.data != data
    assert reopen(clean).mode == "RGB"


def test_a_png_scaled_down_is_re_encoded_at_its_new_size() -> None:
    data = encode(noise((200, 100)), "PNG")

    clean = sanitize(data, max_side=50)

    assert clean.data != data
    assert Image.open(io.BytesIO(clean.data)).size == (50, 25)

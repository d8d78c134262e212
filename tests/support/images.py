"""Images for tests: the photos under ``tests/fixtures`` and small or broken ones made here."""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    """The bytes of ``tests/fixtures/<name>``."""
    return (FIXTURES / name).read_bytes()


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """``image`` encoded as ``fmt``."""
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def noise(size: tuple[int, int] = (64, 48), mode: str = "RGB", seed: int = 1) -> Image.Image:
    """A deterministic noisy image: it compresses badly, so cutting its bytes loses pixels."""
    bands = len(mode)
    data = random.Random(seed).randbytes(size[0] * size[1] * bands)
    return Image.frombytes(mode, size, data)


def small_image(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A small real image with some structure."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    return encode(image, fmt)


def data_url(data: bytes, mime: str = "image/png") -> str:
    """``data`` as a base64 data: URL."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def truncated_jpeg() -> bytes:
    """A JPEG cut off in the middle of its scan data."""
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )

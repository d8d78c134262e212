"""Decoding and encoding images for the analyses: Pillow in, OpenCV arrays out.

Every measurement (faces, statistics, the cartoon restyle) starts from
:func:`load_rgb`, which applies the EXIF orientation, so all of them see the photo the
way the visitor took it.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageOps

ImageInput = bytes | Image.Image


class ImageDecodeError(ValueError):
    """The bytes are not an image Pillow can read."""


def load_rgb(image: ImageInput) -> Image.Image:
    """An RGB Pillow image from bytes or an image, with the EXIF orientation applied."""
    if isinstance(image, Image.Image):
        pil = image
    else:
        try:
            pil = Image.open(io.BytesIO(image))
            pil.load()
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageDecodeError(f"not a readable image: {exc}") from exc
    pil = ImageOps.exif_transpose(pil)
    return pil.convert("RGB")


def to_bgr(image: ImageInput) -> np.ndarray:
    """The image as an OpenCV BGR array."""
    return cv2.cvtColor(np.asarray(load_rgb(image)), cv2.COLOR_RGB2BGR)


def encode_png(bgr: np.ndarray) -> bytes:
    """PNG bytes of an OpenCV BGR array."""
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def encode_jpeg(bgr: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of an OpenCV BGR array (a photo's crop: a fraction of a PNG's size and
    of its encoding time, and nothing a model or a cartoon filter would miss)."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def shrink(gray: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``gray`` scaled down to at most ``max_side`` pixels a side, and the scale used."""
    height, width = gray.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray, scale

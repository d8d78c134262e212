"""How many input tokens a request will cost, estimated before it is sent.

The shared limiter books a call's tokens in its model's window before the call goes out
(``refract.gateway.limiter``) and corrects the booking with what the answer reports, so the
estimate only has to be close and rather high than low. Gemini's published rules: about
four characters of text per token; an image of at most 384 pixels a side is 258 tokens,
a larger one 258 per 768x768 tile it is cut into. A video by URL is counted at its real
cost once answered (its length is unknown here).
"""

from __future__ import annotations

import io
import math

from google.genai import types
from PIL import Image, UnidentifiedImageError

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 258
SMALL_IMAGE_PX = 384
TILE_PX = 768


def image_tokens(data: bytes) -> int:
    """The tokens Gemini counts for one image (from its header; 258 if unreadable)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return IMAGE_TOKENS
    if width <= SMALL_IMAGE_PX and height <= SMALL_IMAGE_PX:
        return IMAGE_TOKENS
    return IMAGE_TOKENS * math.ceil(width / TILE_PX) * math.ceil(height / TILE_PX)


def estimate_input_tokens(parts: list[types.Part]) -> int:
    """A high-side estimate of the input tokens ``parts`` cost."""
    total = 0
    for part in parts:
        if part.text:
            total += math.ceil(len(part.text) / CHARS_PER_TOKEN)
        if part.inline_data is not None and part.inline_data.data:
            total += image_tokens(part.inline_data.data)
    return total

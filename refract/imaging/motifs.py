"""The motifs the offline card draws around the portrait, chosen from the visitor's prompt.

Scattered motifs (stars, hearts, confetti, snow, flowers) are placed in the card's margins
by a generator seeded with the prompt, so a card is the same every time it is drawn for the
same words; ground motifs (a city skyline with lit windows, waves) fill the band under the
text panel. Everything is drawn with Pillow primitives: no image assets to ship.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]


def _star(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: RGB) -> None:
    points = []
    for i in range(10):
        angle = -math.pi / 2 + i * math.pi / 5
        radius = r if i % 2 == 0 else r * 0.42
        points.append((x + radius * math.cos(angle), y + radius * math.sin(angle)))
    draw.polygon(points, fill=fill)


def _heart(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: RGB) -> None:
    draw.ellipse((x - r, y - r * 0.6, x, y + r * 0.4), fill=fill)
    draw.ellipse((x, y - r * 0.6, x + r, y + r * 0.4), fill=fill)
    draw.polygon([(x - r * 0.97, y), (x + r * 0.97, y), (x, y + r * 1.15)], fill=fill)


def _flower(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: RGB) -> None:
    petal = r * 0.5
    for i in range(5):
        angle = i * 2 * math.pi / 5
        px, py = x + petal * math.cos(angle), y + petal * math.sin(angle)
        draw.ellipse((px - petal, py - petal, px + petal, py + petal), fill=fill)
    draw.ellipse(
        (x - petal * 0.6, y - petal * 0.6, x + petal * 0.6, y + petal * 0.6), fill=(255, 214, 90)
    )


def _confetti(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: RGB) -> None:
    draw.rounded_rectangle((x - r * 0.35, y - r, x + r * 0.35, y + r), radius=3, fill=fill)


def _snow(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: RGB) -> None:
    for i in range(3):
        angle = i * math.pi / 3
        dx, dy = r * math.cos(angle), r * math.sin(angle)
        draw.line((x - dx, y - dy, x + dx, y + dy), fill=fill, width=max(2, round(r / 6)))


_SCATTERED: dict[
    str, tuple[Callable[[ImageDraw.ImageDraw, float, float, float, RGB], None], int]
] = {
    "stars": (_star, 26),
    "hearts": (_heart, 16),
    "flowers": (_flower, 14),
    "confetti": (_confetti, 40),
    "snow": (_snow, 30),
}
_COLOURS = {
    "stars": [(255, 226, 120), (255, 255, 255), (255, 196, 80)],
    "hearts": [(232, 62, 100), (255, 120, 150), (255, 255, 255)],
    "flowers": [(255, 255, 255), (255, 170, 190), (240, 90, 130)],
    "confetti": [(255, 196, 0), (0, 200, 180), (255, 80, 120), (90, 120, 255)],
    "snow": [(255, 255, 255), (230, 242, 255)],
}


def _rng(seed: str, motif: str) -> random.Random:
    digest = hashlib.sha256(f"{motif}:{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _in_margin(x: float, y: float, keep_clear: list[Box], pad: float) -> bool:
    return not any(
        left - pad <= x <= right + pad and top - pad <= y <= bottom + pad
        for left, top, right, bottom in keep_clear
    )


def scatter(card: Image.Image, motif: str, keep_clear: list[Box], *, seed: str) -> None:
    """Scatter ``motif`` over ``card`` outside the ``keep_clear`` boxes."""
    draw_one, count = _SCATTERED[motif]
    colours = _COLOURS[motif]
    rng = _rng(seed, motif)
    draw = ImageDraw.Draw(card)
    width, height = card.size
    placed = tries = 0
    while placed < count and tries < count * 40:
        tries += 1
        r = rng.uniform(12, 30)
        x, y = rng.uniform(r, width - r), rng.uniform(r, height - r)
        if _in_margin(x, y, keep_clear, r):
            draw_one(draw, x, y, r, colours[placed % len(colours)])
            placed += 1


def city_lights(card: Image.Image, band: Box, *, seed: str) -> None:
    """A night skyline across ``band``: dark towers with lit windows, and glowing dots."""
    draw = ImageDraw.Draw(card)
    rng = _rng(seed, "city")
    left, top, right, bottom = band
    x = left
    while x < right:
        w = rng.randint(60, 130)
        h = rng.randint((bottom - top) // 3, bottom - top)
        shade = rng.randint(18, 40)
        draw.rectangle((x, bottom - h, x + w, bottom), fill=(shade, shade, shade + 22))
        for wy in range(bottom - h + 14, bottom - 10, 22):
            for wx in range(x + 10, x + w - 12, 20):
                if rng.random() < 0.55:
                    draw.rectangle((wx, wy, wx + 8, wy + 11), fill=(255, 214, 120))
        x += w + rng.randint(0, 8)
    for _ in range(30):
        gx, gy = rng.uniform(left, right), rng.uniform(top, bottom)
        r = rng.uniform(3, 7)
        draw.ellipse((gx - r, gy - r, gx + r, gy + r), fill=(255, 236, 170))


def waves(card: Image.Image, band: Box, colour: RGB) -> None:
    """Rows of rolling waves across ``band``, lighter towards the top."""
    draw = ImageDraw.Draw(card)
    left, top, right, bottom = band
    rows = 4
    for row in range(rows):
        y0 = top + (bottom - top) * row / rows
        mix = 0.55 * (rows - row) / rows
        r, g, b = (round(c + (255 - c) * mix) for c in colour)
        points: list[tuple[float, float]] = [(left, bottom)]
        for x in range(left, right + 20, 20):
            points.append((x, y0 + 18 * math.sin((x / 90) + row * 1.3)))
        points.append((right, bottom))
        draw.polygon(points, fill=(r, g, b))


GROUND = ("city_lights", "waves")
SCATTERED = tuple(_SCATTERED)

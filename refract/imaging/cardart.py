"""The photo card, drawn with Pillow: portrait, caption, the visitor's prompt and a footer.

The card is 1200x1800 px, a 4x6 inch print at 300 dpi. Text is set in the Nanum Gothic
font shipped in ``refract/fonts`` (Latin and every Hangul syllable); if it cannot be loaded
the card still renders with Pillow's built-in font. Lines are wrapped by measured width,
at spaces where there are any and between characters otherwise (Chinese, Japanese, long
Korean words), and the caption shrinks to fit its box before it is cut with an ellipsis.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps, ImageStat

CARD_SIZE = (1200, 1800)
CARD_DPI = 300
FONT_PATH = Path(__file__).parent / "fonts" / "NanumGothic.ttf"

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_MARGIN = 60
_PORTRAIT = 1000
_TEXT_WIDTH = 1000
_INK = (34, 30, 38)
_MUTED = (104, 98, 110)
_PAPER = (252, 249, 244)
_FOOTER = {"ko": "Refract · 포토 카드", "ja": "Refract · フォトカード"}


_local = threading.local()


def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    # One FreeType face per thread: a face is not safe to render from two threads at once.
    cache: dict[tuple[str, int], ImageFont.FreeTypeFont] | None = getattr(_local, "fonts", None)
    if cache is None:
        cache = _local.fonts = {}
    key = (path, size)
    if key not in cache:
        cache[key] = ImageFont.truetype(path, size)
    return cache[key]


def load_font(size: int) -> Font:
    """The card font at ``size`` px; Pillow's built-in font if the file cannot be used."""
    try:
        return _truetype(str(FONT_PATH), size)
    except OSError:
        return ImageFont.load_default(size=size)


def _visible(text: str, font: Font) -> str:
    # Characters the font lacks (emoji, rare scripts) would print as empty boxes: drop them.
    if not isinstance(font, ImageFont.FreeTypeFont):
        return text
    missing = bytes(font.getmask("\ue000"))
    kept = [c for c in text if ord(c) < 0x250 or c.isspace() or bytes(font.getmask(c)) != missing]
    return " ".join("".join(kept).split())


def wrap(text: str, font: Font, width: int) -> list[str]:
    """``text`` broken into lines no wider than ``width`` px in ``font``."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        # A word wider than the line (or unspaced CJK text) breaks between characters.
        for char in word:
            if current and font.getlength(current + char) > width:
                lines.append(current)
                current = ""
            current += char
    if current:
        lines.append(current)
    return lines


def _fit(text: str, width: int, max_lines: int, sizes: range) -> tuple[Font, list[str]]:
    font = load_font(sizes.start)
    lines: list[str] = []
    for size in sizes:
        font = load_font(size)
        lines = wrap(_visible(text, font), font, width)
        if len(lines) <= max_lines:
            return font, lines
    kept = lines[:max_lines]
    last = kept[-1] if kept else ""
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    return font, [*kept[:-1], last.rstrip() + "…"] if kept else []


def _cover(portrait: Image.Image, side: int) -> Image.Image:
    return ImageOps.fit(portrait, (side, side), method=Image.Resampling.LANCZOS)


def _rounded_mask(size: tuple[int, int], radius: int) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius, fill=255)
    return mask


def _accent(portrait: Image.Image) -> tuple[int, int, int]:
    # A deep version of the portrait's mean colour ties the frame to the picture.
    mean = ImageStat.Stat(portrait.resize((64, 64))).mean
    r, g, b = (int(v) for v in mean[:3])
    return (r * 45 // 100 + 20, g * 45 // 100 + 20, b * 45 // 100 + 30)


def _background(accent: tuple[int, int, int]) -> Image.Image:
    top = Image.new("RGB", CARD_SIZE, tuple(min(255, c + 60) for c in accent))
    bottom = Image.new("RGB", CARD_SIZE, accent)
    ramp = Image.linear_gradient("L").resize(CARD_SIZE)
    return Image.composite(bottom, top, ramp)


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[str],
    font: Font,
    top: int,
    fill: tuple[int, ...],
    *,
    bold: bool = False,
    spacing: float = 1.3,
) -> int:
    size = getattr(font, "size", 11)
    step = round(size * spacing)
    for i, line in enumerate(lines):
        x = (CARD_SIZE[0] - font.getlength(line)) / 2
        draw.text(
            (x, top + i * step),
            line,
            font=font,
            fill=fill,
            stroke_width=1 if bold else 0,
            stroke_fill=fill,
        )
    return top + len(lines) * step


def draw_card(portrait_png: bytes, caption: str, prompt: str, *, language: str) -> bytes:
    """The finished card as PNG bytes (1200x1800, tagged 300 dpi)."""
    with Image.open(io.BytesIO(portrait_png)) as source:
        portrait = ImageOps.exif_transpose(source).convert("RGB")
    accent = _accent(portrait)
    card = _background(accent)

    panel_box = (_MARGIN, _MARGIN, CARD_SIZE[0] - _MARGIN, CARD_SIZE[1] - _MARGIN)
    shadow = Image.new("L", CARD_SIZE, 0)
    ImageDraw.Draw(shadow).rounded_rectangle(
        (panel_box[0] + 8, panel_box[1] + 14, panel_box[2] + 8, panel_box[3] + 14), 40, fill=110
    )
    card.paste((0, 0, 0), (0, 0), shadow.filter(ImageFilter.GaussianBlur(18)))
    draw = ImageDraw.Draw(card)
    draw.rounded_rectangle(panel_box, 40, fill=_PAPER)

    left = (CARD_SIZE[0] - _PORTRAIT) // 2
    top = _MARGIN + 40
    draw.rounded_rectangle(
        (left - 8, top - 8, left + _PORTRAIT + 8, top + _PORTRAIT + 8), 40, fill=accent
    )
    face = _cover(portrait, _PORTRAIT)
    card.paste(face, (left, top), _rounded_mask(face.size, 34))

    y = top + _PORTRAIT + 56
    if caption.strip():
        font, lines = _fit(caption.strip(), _TEXT_WIDTH, 3, range(64, 39, -4))
        y = _draw_lines(draw, lines, font, y, _INK, bold=True, spacing=1.25) + 24
    if prompt.strip():
        font, lines = _fit(f"“{prompt.strip()}”", _TEXT_WIDTH - 80, 3, range(38, 29, -4))
        _draw_lines(draw, lines, font, y, _MUTED, spacing=1.35)

    footer_font = load_font(34)
    footer_y = CARD_SIZE[1] - _MARGIN - 80
    draw.line(
        (left + 300, footer_y - 22, left + _PORTRAIT - 300, footer_y - 22), fill=accent, width=3
    )
    label = _FOOTER.get(language.split("-")[0].lower(), "Refract · photo card")
    _draw_lines(draw, [_visible(label, footer_font)], footer_font, footer_y, accent)

    out = io.BytesIO()
    card.save(out, format="PNG", dpi=(CARD_DPI, CARD_DPI), optimize=False)
    return out.getvalue()

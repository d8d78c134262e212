"""The photo card, drawn with Pillow: portrait, caption, the visitor's prompt and a footer.

The visitor's prompt shapes the design (:mod:`refract.imaging.carddesign`: a palette and
motifs from :mod:`refract.imaging.motifs` around the portrait) and is printed under the
caption.

The card is 1200x1800 px, a 4x6 inch print at 300 dpi. Text is set in the Nanum Gothic
font shipped in ``refract/fonts`` (Latin and every Hangul syllable); if it cannot be loaded
the card still renders with Pillow's built-in font. Lines are wrapped by measured width,
at spaces where there are any and between characters otherwise (Chinese, Japanese, long
Korean words), and the caption shrinks to fit its box before it is cut with an ellipsis.
"""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps, ImageStat

from refract.imaging import motifs
from refract.imaging.carddesign import PALETTES, Design, Palette, design_from_prompt, saturate

CARD_SIZE = (1200, 1800)
CARD_DPI = 300
FONT_PATH = Path(__file__).parent / "fonts" / "NanumGothic.ttf"

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# The portrait square at the top, the paper panel with the text under it, and below the
# panel a band of background where ground motifs (a skyline, waves) show.
_PORTRAIT_BOX = (170, 100, 1030, 960)
_PANEL_BOX = (90, 1010, 1110, 1580)
_TEXT_WIDTH = 940
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


def _fit_portrait(portrait: Image.Image, side: int) -> Image.Image:
    """The portrait as a ``side`` square: a square one fills it; a wider or taller one (a
    group, a whole photo) is shown whole over a blurred, enlarged copy of itself, so that
    nobody at its edges is cut off."""
    ratio = portrait.width / max(1, portrait.height)
    cover = ImageOps.fit(portrait, (side, side), method=Image.Resampling.LANCZOS)
    if 0.9 <= ratio <= 1.1:
        return cover
    backdrop = cover.filter(ImageFilter.GaussianBlur(24))
    whole = ImageOps.contain(portrait, (side, side), method=Image.Resampling.LANCZOS)
    backdrop.paste(whole, ((side - whole.width) // 2, (side - whole.height) // 2))
    return backdrop


def _rounded_mask(size: tuple[int, int], radius: int) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius, fill=255)
    return mask


def _portrait_palette(portrait: Image.Image) -> Palette:
    # A deep version of the portrait's mean colour ties the frame to the picture.
    mean = ImageStat.Stat(portrait.resize((64, 64))).mean
    r, g, b = (int(v) for v in mean[:3])
    accent = (r * 45 // 100 + 20, g * 45 // 100 + 20, b * 45 // 100 + 30)
    top = (min(255, accent[0] + 60), min(255, accent[1] + 60), min(255, accent[2] + 60))
    return Palette(top, accent, accent, _PAPER, _INK, _MUTED)


def _palette(design: Design, portrait: Image.Image) -> Palette:
    palette = PALETTES[design.palette] if design.palette else _portrait_palette(portrait)
    if design.vivid:
        palette = replace(
            palette,
            top=saturate(palette.top),
            bottom=saturate(palette.bottom),
            accent=saturate(palette.accent),
        )
    return palette


def _background(palette: Palette) -> Image.Image:
    top = Image.new("RGB", CARD_SIZE, palette.top)
    bottom = Image.new("RGB", CARD_SIZE, palette.bottom)
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


def _shadow(card: Image.Image, box: tuple[int, int, int, int], radius: int) -> None:
    shadow = Image.new("L", CARD_SIZE, 0)
    ImageDraw.Draw(shadow).rounded_rectangle(
        (box[0] + 8, box[1] + 14, box[2] + 8, box[3] + 14), radius, fill=110
    )
    card.paste((0, 0, 0), (0, 0), shadow.filter(ImageFilter.GaussianBlur(18)))


def _motifs(card: Image.Image, design: Design, palette: Palette, seed: str) -> None:
    keep_clear = [_PORTRAIT_BOX, _PANEL_BOX]
    band = (0, _PANEL_BOX[3] - 40, CARD_SIZE[0], CARD_SIZE[1])
    for motif in design.motifs:
        if motif == "city_lights":
            motifs.city_lights(card, band, seed=seed)
        elif motif == "waves":
            motifs.waves(card, band, palette.accent)
        else:
            motifs.scatter(card, motif, keep_clear, seed=seed)


def footer_label(language: str) -> str:
    """The footer printed on a card written in ``language``."""
    return _FOOTER.get(language.split("-")[0].lower(), "Refract · photo card")


def draw_card(
    portrait_png: bytes,
    caption: str,
    prompt: str,
    *,
    language: str,
    design: Design | None = None,
) -> bytes:
    """The finished card as PNG bytes (1200x1800, tagged 300 dpi).

    ``design`` (by default read from ``prompt``, see :mod:`carddesign`) picks the palette
    and the motifs; the prompt is printed as well, under the caption.
    """
    with Image.open(io.BytesIO(portrait_png)) as source:
        portrait = ImageOps.exif_transpose(source).convert("RGB")
    design = design if design is not None else design_from_prompt(prompt)
    palette = _palette(design, portrait)
    card = _background(palette)
    _motifs(card, design, palette, seed=prompt)

    _shadow(card, _PORTRAIT_BOX, 40)
    _shadow(card, _PANEL_BOX, 40)
    draw = ImageDraw.Draw(card)
    left, top, right, bottom = _PORTRAIT_BOX
    draw.rounded_rectangle((left - 10, top - 10, right + 10, bottom + 10), 44, fill=palette.accent)
    face = _fit_portrait(portrait, right - left)
    card.paste(face, (left, top), _rounded_mask(face.size, 34))
    draw.rounded_rectangle(_PANEL_BOX, 40, fill=palette.paper)

    y = _PANEL_BOX[1] + 50
    if caption.strip():
        font, lines = _fit(caption.strip(), _TEXT_WIDTH, 3, range(60, 39, -4))
        y = _draw_lines(draw, lines, font, y, palette.ink, bold=True, spacing=1.25) + 20
    if prompt.strip():
        font, lines = _fit(f"“{prompt.strip()}”", _TEXT_WIDTH - 80, 3, range(38, 29, -4))
        _draw_lines(draw, lines, font, y, palette.muted, spacing=1.35)

    footer_font = load_font(34)
    footer_y = _PANEL_BOX[3] - 80
    centre = CARD_SIZE[0] // 2
    draw.line(
        (centre - 200, footer_y - 22, centre + 200, footer_y - 22), fill=palette.accent, width=3
    )
    label = footer_label(language)
    _draw_lines(draw, [_visible(label, footer_font)], footer_font, footer_y, palette.muted)

    out = io.BytesIO()
    card.save(out, format="PNG", dpi=(CARD_DPI, CARD_DPI), optimize=False)
    return out.getvalue()

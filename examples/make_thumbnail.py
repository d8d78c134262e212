"""Make ``examples/thumbnail.jpg``, the sample video's YouTube-style thumbnail.

Reads the CC0 coffee photo from ``tests/fixtures/coffee.png``, zooms it to 16:9 around
the cup, punches up contrast and colour, and sets a bold outlined title on the right.
Run from anywhere: ``.venv/bin/python examples/make_thumbnail.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "fixtures" / "coffee.png"
TARGET = ROOT / "examples" / "thumbnail.jpg"
SIZE = (1280, 720)

# The photo is 600x400 with the cup left of centre; this 16:9 window keeps the whole
# cup and its crema on the left and leaves saucer and table on the right for the title.
CROP = (88, 0, 600, 288)

# Searched in order. The project's own Nanum Gothic always exists, so the thumbnail
# does not depend on fonts installed on the host; DejaVu Bold just looks heavier.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    ROOT / "refract" / "fonts" / "NanumGothic.ttf",
)

YELLOW = (255, 214, 10)
RED = (214, 32, 39)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The first bold-enough TrueType font found, else Pillow's built-in scalable font."""
    for path in FONT_CANDIDATES:
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def background(photo: Image.Image) -> Image.Image:
    """The cropped, scaled and punched-up photo, darkened towards the title side."""
    image = photo.convert("RGB").crop(CROP).resize(SIZE, Image.Resampling.LANCZOS)
    image = ImageEnhance.Contrast(image).enhance(1.25)
    image = ImageEnhance.Color(image).enhance(1.4)
    # Upscaling a 600 px photo softens it; an unsharp mask brings the edges back.
    image = image.filter(ImageFilter.UnsharpMask(radius=3, percent=120, threshold=2))

    # A horizontal ramp: clear over the cup, up to ~70 % black behind the title.
    width, height = SIZE
    ramp = Image.linear_gradient("L").rotate(90).resize(SIZE)
    ramp = ramp.point(lambda v: max(0, min(180, int((v - 90) * 1.1))))
    shade = Image.new("RGB", SIZE, BLACK)
    image = Image.composite(shade, image, ramp)

    # A soft vignette pulls the eye to the centre, as most thumbnails do.
    vignette = Image.new("L", SIZE, 0)
    ImageDraw.Draw(vignette).ellipse(
        (-width // 5, -height // 4, width * 6 // 5, height * 5 // 4), fill=255
    )
    vignette = vignette.filter(ImageFilter.GaussianBlur(90))
    return Image.composite(image, Image.new("RGB", SIZE, BLACK), vignette)


def draw_title(image: Image.Image) -> None:
    """Set the outlined title and the red "IN 5 STEPS" badge on the right-hand side."""
    draw = ImageDraw.Draw(image)
    right = SIZE[0] - 48
    big = load_font(136)
    y = 64.0
    for word, colour in (("BETTER", WHITE), ("COFFEE", YELLOW)):
        _, top, end, bottom = draw.textbbox((0, 0), word, font=big, stroke_width=10)
        draw.text(
            (right - end, y - top),
            word,
            font=big,
            fill=colour,
            stroke_width=10,
            stroke_fill=BLACK,
        )
        y += bottom - top + 12

    badge_font = load_font(78)
    label = "IN 5 STEPS"
    left, top, end, bottom = draw.textbbox((0, 0), label, font=badge_font)
    pad_x, pad_y = 30, 20
    box = (right - (end - left) - 2 * pad_x, y + 24, right, y + 24 + bottom - top + 2 * pad_y)
    # A hard offset shadow reads better at small sizes than a blurred one.
    draw.rounded_rectangle((box[0] + 8, box[1] + 8, box[2] + 8, box[3] + 8), 22, fill=BLACK)
    draw.rounded_rectangle(box, 22, fill=RED, outline=WHITE, width=5)
    draw.text(
        (box[0] + pad_x - left, box[1] + pad_y - top),
        label,
        font=badge_font,
        fill=WHITE,
        stroke_width=3,
        stroke_fill=BLACK,
    )


def make_thumbnail(source: Path = SOURCE, target: Path = TARGET) -> Path:
    """Write the 1280x720 JPEG thumbnail to ``target`` and return its path."""
    with Image.open(source) as photo:
        image = background(photo)
    draw_title(image)
    image.save(target, "JPEG", quality=88, optimize=True, progressive=True)
    return target


if __name__ == "__main__":
    path = make_thumbnail()
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")

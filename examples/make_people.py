"""Make the photos without a usable frontal face: ``profile.png`` and ``group.png``.

Both are made from the public-domain astronaut portrait (``tests/fixtures/astronaut.png``)
and the CC0 coffee photo (``tests/fixtures/coffee.png``), so they carry no new rights:

- ``profile.png``: the astronaut with her head tilted 30 degrees, off-centre in a 4:5
  frame: the frontal-face detector misses a face turned that far, as it misses a profile.
- ``group.png``: five small copies of the astronaut, softly blended into a blurred cafe
  background, as in a group shot from afar: their faces (about 33 px in a 1200x800 photo)
  are below the 5% of the short side the frontal detector accepts.

Deterministic (no randomness; Pillow's resampling is exact), written to ``examples/`` for
``refract demo`` and to ``tests/fixtures/`` for the tests. Run from anywhere:
``.venv/bin/python examples/make_people.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TARGETS = (ROOT / "examples", FIXTURES)

# (left, top, side) of each person in the 1200x800 group photo, back row first.
GROUP = ((120, 330, 176), (330, 300, 186), (560, 320, 180), (790, 296, 190), (1000, 336, 170))
BACKDROP = (196, 192, 186)


def profile_photo(astronaut: Image.Image) -> Image.Image:
    """The astronaut tilted 30 degrees, framed 4:5 with her head right of centre."""
    tilted = astronaut.convert("RGB").rotate(
        30, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=BACKDROP
    )
    left, top = (tilted.width - 560) // 2 - 40, (tilted.height - 700) // 2
    return tilted.crop((left, top, left + 560, top + 700))


def group_photo(astronaut: Image.Image, cafe: Image.Image) -> Image.Image:
    """Five small astronauts in front of a blurred cafe, as if seen from across a room."""
    photo = cafe.convert("RGB").resize((1200, 800), Image.Resampling.LANCZOS)
    photo = photo.filter(ImageFilter.GaussianBlur(8))
    for left, top, side in GROUP:
        person = astronaut.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
        # An oval mask with a soft edge: a person, not a pasted square.
        mask = Image.new("L", (side, side), 0)
        ImageDraw.Draw(mask).ellipse((side * 0.08, 0, side * 0.92, side * 1.3), fill=255)
        photo.paste(person, (left, top), mask.filter(ImageFilter.GaussianBlur(side / 30)))
    return photo


def main() -> list[Path]:
    """Write both photos to every target folder; returns the paths written."""
    with (
        Image.open(FIXTURES / "astronaut.png") as astronaut,
        Image.open(FIXTURES / "coffee.png") as cafe,
    ):
        photos = {
            "profile.png": profile_photo(astronaut),
            "group.png": group_photo(astronaut, cafe),
        }
    written = []
    for folder in TARGETS:
        for name, image in photos.items():
            path = folder / name
            image.save(path, format="PNG", optimize=True)
            written.append(path)
    return written


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")

"""Make the README's card screenshots, ``docs/images/card-en.png`` and ``card-ko.png``.

Runs the local backend's real photo card features in-process, as a worker would: the
caption of ``examples/astronaut.png`` in each language, its head-and-shoulders cartoon and
the card drawn from both with a visitor's prompt, then saves the card at half size (the
real one is 1200x1800, 300 dpi). Deterministic; no services needed.
Run: ``.venv/bin/python scripts/make_card_screenshots.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from refract.core.material import ImageBlob
from refract.core.settings import Settings
from refract.gateway.local import LocalBackend
from refract.imaging.faces import crop_largest_face

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "examples" / "astronaut.png"
OUT = ROOT / "docs" / "images"
PROMPTS = {
    "en": "a retro space-mission trading card, bold colours, stars in the background",
    "ko": "서울 야경, 선명한 색",
}


def make(language: str, backend: LocalBackend) -> Path:
    """Write the card for ``language``; returns its path."""
    photo = ImageBlob(PHOTO.read_bytes(), "image/png")
    caption = backend.caption_photo(photo, language=language).data["caption"]
    face = crop_largest_face(photo.data)
    assert face is not None, "the sample photo has a face"
    portrait = backend.stylize_face(face, language=language).image
    assert portrait is not None
    card = backend.compose_card(
        portrait, caption=caption, prompt=PROMPTS[language], language=language
    ).image
    assert card is not None
    image = Image.open(io.BytesIO(card.data)).convert("RGB")
    image = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
    path = OUT / f"card-{language}.png"
    image.save(path, format="PNG", optimize=True)
    return path


def main() -> None:
    """Write both screenshots."""
    backend = LocalBackend(Settings(model_backend="local"))
    OUT.mkdir(parents=True, exist_ok=True)
    for language in PROMPTS:
        path = make(language, backend)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

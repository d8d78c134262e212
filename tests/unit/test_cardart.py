"""The Pillow-drawn photo card: size, text, wrapping and the font fallback."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from refract.imaging import cardart
from refract.imaging.cardart import CARD_SIZE, draw_card, load_font, wrap

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PORTRAIT = (FIXTURES / "astronaut.png").read_bytes()
# The band under the portrait where caption and prompt are set.
TEXT_BAND = (100, 1160, 1100, 1600)


def _open(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image


def _ink_pixels(card: Image.Image) -> int:
    band = np.asarray(card.convert("L").crop(TEXT_BAND))
    return int((band < 140).sum())


def test_card_is_a_print_sized_png_with_hangul_caption_and_prompt() -> None:
    png = draw_card(
        PORTRAIT,
        "우주를 향해 웃는 사령관, 오늘의 주인공은 바로 당신입니다",
        "Make me a space hero with a golden helmet",
        language="ko",
    )
    card = _open(png)
    assert card.size == CARD_SIZE == (1200, 1800)
    assert card.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    blank = _open(draw_card(PORTRAIT, "", "", language="ko"))
    assert _ink_pixels(blank) == 0
    assert _ink_pixels(card) > 2000
    # The portrait is on the card.
    assert np.asarray(card.convert("L").crop((150, 150, 1050, 1050))).std() > 20


def test_missing_font_file_falls_back_to_the_builtin_font(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cardart, "FONT_PATH", tmp_path / "missing.ttf")
    font = load_font(40)
    assert font is not None
    card = _open(draw_card(PORTRAIT, "한글 캡션 and English", "a prompt", language="ko"))
    assert card.size == CARD_SIZE
    assert _ink_pixels(card) > 0


def test_font_loader_failure_still_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: str, size: int) -> ImageFont.FreeTypeFont:
        raise OSError("cannot open resource")

    monkeypatch.setattr(cardart, "_truetype", broken)
    card = _open(draw_card(PORTRAIT, "Caption", "Prompt", language="en"))
    assert card.size == CARD_SIZE


def test_shipped_font_has_hangul_and_unsupported_glyphs_are_dropped() -> None:
    font = load_font(40)
    assert isinstance(font, ImageFont.FreeTypeFont)
    assert cardart._visible("안녕하세요 🚀 café", font) == "안녕하세요 café"


def test_wrap_breaks_english_at_spaces_within_the_width() -> None:
    font = load_font(48)
    text = "a long caption that certainly does not fit on one single line of the card"
    lines = wrap(text, font, 500)
    assert len(lines) > 1
    assert all(font.getlength(line) <= 500 for line in lines)
    assert " ".join(lines) == text


def test_wrap_breaks_unspaced_text_between_characters() -> None:
    font = load_font(48)
    text = "띄어쓰기없이아주길게이어지는한국어문장도카드안에서줄을바꿔야합니다"
    lines = wrap(text, font, 400)
    assert len(lines) > 1
    assert all(font.getlength(line) <= 400 for line in lines)
    assert "".join(lines) == text


def test_overlong_caption_is_cut_with_an_ellipsis() -> None:
    font, lines = cardart._fit("word " * 200, 1000, 3, range(64, 39, -4))
    assert len(lines) == 3
    assert lines[-1].endswith("…")
    assert getattr(font, "size", None) == 40

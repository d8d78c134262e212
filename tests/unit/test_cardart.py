"""The Pillow-drawn photo card: size, text, wrapping, the font fallback, and the design the
visitor's prompt chooses (palette and motifs, in English and Korean)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from refract.imaging import cardart
from refract.imaging.cardart import CARD_SIZE, draw_card, footer_label, load_font, wrap
from refract.imaging.carddesign import PALETTES, design_from_prompt

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PORTRAIT = (FIXTURES / "astronaut.png").read_bytes()
# The panel under the portrait where caption and prompt are set (above the footer).
TEXT_BAND = (130, 1040, 1070, 1470)
# The background strip left of the portrait and the band under the text panel.
LEFT_MARGIN = (0, 0, 160, 1000)
GROUND = (0, 1600, 1200, 1800)


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
    assert np.asarray(card.convert("L").crop((200, 130, 1000, 930))).std() > 20


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


def _pixels(card: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(card.convert("RGB").crop(box), dtype=np.int16)


@pytest.mark.parametrize(
    ("prompt", "palette", "motifs"),
    [
        ("a card with stars in the background", None, ("stars",)),
        ("별이 빛나는 카드", None, ("stars",)),
        ("서울 야경", "night", ("city_lights",)),
        ("at night", "night", ("city_lights",)),
        ("ocean breeze", "ocean", ("waves",)),
        ("바다에서", "ocean", ("waves",)),
        ("spring flowers", "floral", ("flowers",)),
        ("꽃다발", "floral", ("flowers",)),
        ("bold colours", "vivid", ()),
        ("선명한 색으로", "vivid", ()),
        ("특별한 하루", None, ()),  # 별 inside 특별한 is not a star
        ("a retro space-mission trading card, bold colours, stars", "retro", ("stars",)),
    ],
)
def test_prompt_words_choose_the_design(
    prompt: str, palette: str | None, motifs: tuple[str, ...]
) -> None:
    design = design_from_prompt(prompt)
    assert design.palette == palette
    assert design.motifs == motifs
    assert design.as_result()["palette"] == (palette or "portrait")


def test_bold_colours_saturate_the_chosen_palette() -> None:
    assert design_from_prompt("retro, bold colours").vivid
    assert not design_from_prompt("retro").vivid


def test_a_stars_prompt_draws_stars_around_the_portrait() -> None:
    plain = _open(draw_card(PORTRAIT, "Caption", "a card", language="en"))
    starry = _open(draw_card(PORTRAIT, "Caption", "a card with stars", language="en"))
    # The plain background is a smooth ramp; the stars are bright specks on it.
    plain_margin, starry_margin = _pixels(plain, LEFT_MARGIN), _pixels(starry, LEFT_MARGIN)
    assert np.abs(np.diff(plain_margin, axis=0)).max() < 12
    changed = np.abs(starry_margin - plain_margin).sum(axis=2) > 60
    assert changed.sum() > 500
    # Same words, same card: the motifs are placed from the prompt, not at random.
    again = _open(draw_card(PORTRAIT, "Caption", "a card with stars", language="en"))
    assert np.array_equal(_pixels(starry, LEFT_MARGIN), _pixels(again, LEFT_MARGIN))


def test_a_seoul_night_prompt_draws_a_night_sky_and_city_lights() -> None:
    card = _open(draw_card(PORTRAIT, "서울의 밤", "서울 야경", language="ko"))
    top_left = _pixels(card, (0, 0, 60, 60)).reshape(-1, 3).mean(axis=0)
    night = PALETTES["night"].top
    assert np.abs(top_left - np.array(night)).max() < 20
    ground = _pixels(card, GROUND).reshape(-1, 3)
    # Lit windows: warm yellow pixels in the skyline band.
    windows = (ground[:, 0] > 230) & (ground[:, 1] > 190) & (ground[:, 2] < 150)
    assert windows.sum() > 1000
    # The prompt is still printed.
    assert _ink_pixels(card) > 1000


def test_footer_follows_the_card_language() -> None:
    assert footer_label("ko") == "Refract · 포토 카드"
    assert footer_label("ko-KR") == "Refract · 포토 카드"
    assert footer_label("en") == "Refract · photo card"


def test_a_wide_group_portrait_is_shown_whole() -> None:
    wide = Image.new("RGB", (900, 450), (240, 240, 240))
    for x in (40, 420, 800):  # three dark "people" across the width, edges included
        wide.paste((20, 20, 20), (x, 150, x + 60, 350))
    out = io.BytesIO()
    wide.save(out, format="PNG")
    card = _open(draw_card(out.getvalue(), "", "", language="en"))
    # Contained, not cropped to a square: the people at both edges are still there.
    row = _pixels(card, (170, 520, 1030, 540)).mean(axis=(0, 2))
    dark = row < 80
    assert dark[:80].any() and dark[-80:].any()

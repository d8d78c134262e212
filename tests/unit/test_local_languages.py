"""The local backend writes in the job's language: Korean and English from templates
written for each, anything else in English with a note saying so; and its captions name
what offline analysis can tell (colours, who is in the photo)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from refract.core.material import Comment, ImageBlob, TranscriptLine, VideoMaterial
from refract.core.results import CaptionResult, CommentsResult, SummaryResult, ThumbnailResult
from refract.core.settings import Settings
from refract.gateway.local import LocalBackend
from refract.imaging.subjects import find_subject

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HANGUL = re.compile(r"[\uac00-\ud7a3]")

TOPICS = (
    ("beans", "Fresh beans keep their flavour for about two weeks after the roast date."),
    ("grind", "A burr grinder gives an even grind and an even grind gives an even brew."),
    ("water", "Water just off the boil extracts the coffee without burning the grounds."),
)


def _video() -> VideoMaterial:
    lines, t = [], 0.0
    for topic, sentence in TOPICS:
        for i in range(6):
            lines.append(TranscriptLine(t, f"Part {i} about {topic}. {sentence}"))
            t += 20.0
    comments = (
        Comment("Great video, I love this channel!", likes=40),
        Comment("Terrible audio, I hate it.", likes=2),
        Comment("What grinder do you use?", likes=5),
        Comment("정말 좋은 영상이에요", likes=3),
    )
    return VideoMaterial(title="Better coffee", transcript=tuple(lines), comments=comments)


def _blob(name: str) -> ImageBlob:
    return ImageBlob((FIXTURES / name).read_bytes(), "image/png")


@pytest.fixture
def backend() -> LocalBackend:
    return LocalBackend(Settings(model_backend="local"))


def _korean(*texts: str) -> None:
    for text in texts:
        assert HANGUL.search(text), f"no Hangul in {text!r}"


def test_every_written_text_is_korean_for_ko(backend: LocalBackend) -> None:
    summary = SummaryResult.model_validate(backend.summarize_video(_video(), language="ko").data)
    _korean(summary.tldr, *(chapter.title for chapter in summary.chapters))

    comments = CommentsResult.model_validate(backend.analyze_comments(_video(), language="ko").data)
    _korean(comments.overview, *(n.why for n in comments.notable))

    thumb = ThumbnailResult.model_validate(
        backend.analyze_thumbnail(_blob("astronaut.png"), title="Orbit", language="ko").data
    )
    _korean(thumb.description, *thumb.dominant_colors, *thumb.suggestions)
    _korean(*thumb.click_appeal.reasons)
    _korean(*(f.description for f in thumb.faces), *(f.expression for f in thumb.faces))

    for name in ("astronaut.png", "group.png", "coffee.png"):
        caption = CaptionResult.model_validate(
            backend.caption_photo(_blob(name), language="ko").data
        )
        _korean(caption.caption, caption.description, caption.mood, caption.setting)

    portrait = backend.stylize_face(_blob("astronaut.png"), language="ko")
    photo = _blob("group.png")
    group = backend.stylize_photo(photo, find_subject(photo.data), language="ko")
    card = backend.compose_card(
        _blob("astronaut.png"), caption="우주의 미소", prompt="별", language="ko"
    )
    _korean(portrait.data["note"], group.data["note"], card.data["note"])
    for reply in (portrait, group, card):
        assert reply.data["output_language"] == "ko"
        assert "language_note" not in reply.data


def test_english_stays_english(backend: LocalBackend) -> None:
    data = backend.caption_photo(_blob("astronaut.png"), language="en").data
    assert not HANGUL.search(data["caption"] + data["description"] + data["mood"])
    assert data["output_language"] == "en" and "requested_language" not in data


@pytest.mark.parametrize("language", ["fr", "ja", "es-MX"])
def test_other_languages_fall_back_to_english_and_say_so(
    backend: LocalBackend, language: str
) -> None:
    replies: list[dict[str, Any]] = [
        backend.summarize_video(_video(), language=language).data,
        backend.analyze_comments(_video(), language=language).data,
        backend.caption_photo(_blob("coffee.png"), language=language).data,
        backend.compose_card(_blob("coffee.png"), caption="Hi", prompt="", language=language).data,
    ]
    for data in replies:
        assert data["output_language"] == "en"
        assert data["requested_language"] == language
        assert "English" in data["language_note"]
    assert replies[1]["overview"].startswith("Across")


def test_korean_region_subtag_is_korean(backend: LocalBackend) -> None:
    data = backend.caption_photo(_blob("coffee.png"), language="ko-KR").data
    assert data["output_language"] == "ko" and "requested_language" not in data
    _korean(data["caption"])


def test_astronaut_caption_names_orange(backend: LocalBackend) -> None:
    en = backend.caption_photo(_blob("astronaut.png"), language="en").data
    ko = backend.caption_photo(_blob("astronaut.png"), language="ko").data
    assert "orange" in en["caption"] and "white" in en["caption"]
    assert en["caption"].startswith("A smiling person")
    assert "주황색" in ko["caption"] and "흰색" in ko["caption"]
    assert en["people_count"] == 1 and "frontal face" in en["description"]


def test_captions_say_who_is_in_the_photo(backend: LocalBackend) -> None:
    group = backend.caption_photo(_blob("group.png"), language="en").data
    assert group["people_count"] == 5
    assert group["caption"].startswith("Five people together")
    assert "group shot from afar" in group["description"]
    profile = backend.caption_photo(_blob("profile.png"), language="en").data
    assert profile["people_count"] == 1 and "tilted face" in profile["description"]
    coffee = backend.caption_photo(_blob("coffee.png"), language="en").data
    assert coffee["people_count"] == 0 and "no people" in coffee["caption"]
    assert "no person" in coffee["description"]


def test_card_records_the_design_its_prompt_chose(backend: LocalBackend) -> None:
    stars = backend.compose_card(
        _blob("astronaut.png"), caption="Hi", prompt="stars, bold colours", language="en"
    ).data
    assert stars["design"] == {
        "palette": "vivid",
        "vivid": True,
        "motifs": ["stars"],
        "matched_words": ["stars", "bold"],
    }
    seoul = backend.compose_card(
        _blob("astronaut.png"), caption="서울의 밤", prompt="서울 야경", language="ko"
    ).data
    assert seoul["design"]["palette"] == "night"
    assert seoul["design"]["motifs"] == ["city_lights"]
    from_photo = backend.compose_card(
        _blob("coffee.png"), caption="Hi", prompt="", language="en", from_photo=True
    ).data
    assert "photo itself" in from_photo["note"]

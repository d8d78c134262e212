"""The offline ``local`` backend: every feature's content, checked against its schema."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from refract.core.errors import FeatureError
from refract.core.material import Comment, ImageBlob, TranscriptLine, VideoMaterial
from refract.core.results import (
    CaptionResult,
    CommentsResult,
    SummaryResult,
    ThumbnailResult,
    format_timestamp,
    parse_timestamp,
)
from refract.core.settings import Settings
from refract.gateway.base import Usage
from refract.gateway.local import LocalBackend
from refract.imaging.cardart import CARD_SIZE, FONT_PATH

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

SECTIONS = [
    [
        "Welcome back to the channel, today we are talking about coffee from bean to cup.",
        "Every coffee bean starts as the seed of a cherry growing on a coffee plant.",
        "Arabica beans grow at high altitude in Ethiopia, Colombia and Kenya.",
        "Robusta beans grow lower, they taste more bitter and carry more caffeine.",
        "The origin of the beans shapes the flavour, so Ethiopian beans often taste of berries.",
        "Farmers pick the ripe cherries by hand and dry the beans in the sun.",
        "Washed beans from Kenya taste bright, while natural beans taste sweet and fruity.",
        "Single origin beans let you taste one farm, blends mix beans from several origins.",
    ],
    [
        "Now let us move on to roasting, where green beans turn brown in the roaster.",
        "The roaster heats the beans to around two hundred degrees for ten to fifteen minutes.",
        "At first crack the roast is light and keeps the acidity of the origin.",
        "A medium roast develops caramel sweetness as the sugars brown in the drum.",
        "Dark roasts reach second crack, the oils rise and the roast tastes smoky.",
        "Roasters watch the temperature curve closely because a few degrees change the roast.",
        "After roasting, the beans rest for a few days so the gases can escape.",
        "Buy from a roaster that prints the roast date on the bag.",
    ],
    [
        "Finally, brewing is where you control the extraction at home.",
        "Grind size matters most: espresso needs a fine grind, a French press a coarse grind.",
        "Use water just off the boil, around ninety three degrees, for a pour over brew.",
        "A good brew ratio is one gram of coffee to sixteen grams of water.",
        "If the brew tastes sour, grind finer; if it tastes bitter, grind coarser.",
        "An espresso shot should take about twenty five to thirty seconds to extract.",
        "Weigh your coffee and water with a scale so every brew is repeatable.",
        "Thanks for watching, and enjoy your next cup.",
    ],
]
SENTENCES = [s for section in SECTIONS for s in section]


def _caption_lines(*, punctuated: bool = True) -> tuple[list[TranscriptLine], list[float]]:
    """Caption-style lines of seven words every 6 s; also each section's start time."""
    lines, section_starts, t = [], [], 3.0
    for section in SECTIONS:
        section_starts.append(t)
        for sentence in section:
            words = sentence.split() if punctuated else sentence.strip(".").split()
            for i in range(0, len(words), 7):
                lines.append(TranscriptLine(start=t, text=" ".join(words[i : i + 7])))
                t += 6.0
    return lines, section_starts


@pytest.fixture
def backend() -> LocalBackend:
    return LocalBackend(Settings(model_backend="local"))


def _fixture_blob(name: str) -> ImageBlob:
    return ImageBlob((FIXTURES / name).read_bytes(), "image/png")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- summary ---------------------------------------------------------------------------


def test_summary_of_a_timed_transcript(backend: LocalBackend) -> None:
    lines, section_starts = _caption_lines()
    video = VideoMaterial(title="Coffee from bean to cup", transcript=tuple(lines))
    reply = backend.summarize_video(video, language="en")

    assert (reply.backend, reply.model) == ("local", "local-extractive-v1")
    assert reply.usage == Usage() and reply.prompt_version is None and reply.image is None
    result = SummaryResult.model_validate(reply.data)

    line_times = {format_timestamp(line.start) for line in lines}
    starts = [parse_timestamp(c.start) for c in result.chapters]
    assert all(c.start in line_times for c in result.chapters)
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert lines[0].start <= starts[0] and starts[-1] <= lines[-1].start
    # The topic shifts are found: each later chapter starts within one line of a section.
    assert len(result.chapters) >= 2
    for start in starts[1:]:
        assert min(abs(start - s) for s in section_starts[1:]) <= 6
    assert all(c.title for c in result.chapters)

    assert 3 <= len(result.key_points) <= 7
    assert all(point in SENTENCES for point in result.key_points)
    assert result.key_points != SENTENCES[: len(result.key_points)]
    order = [SENTENCES.index(p) for p in result.key_points]
    assert order == sorted(order)  # transcript order
    covered = {next(i for i, sec in enumerate(SECTIONS) if p in sec) for p in result.key_points}
    assert covered == {0, 1, 2}
    assert any(sentence in result.tldr for sentence in SENTENCES)
    assert result.language == "en"
    assert {"bean", "roast", "brew"} & set(result.topics)


def test_unpunctuated_captions_still_give_line_aligned_chapters(backend: LocalBackend) -> None:
    lines, _ = _caption_lines(punctuated=False)
    reply = backend.summarize_video(VideoMaterial(transcript=tuple(lines)), language="en")
    result = SummaryResult.model_validate(reply.data)
    line_times = {format_timestamp(line.start) for line in lines}
    assert result.chapters and all(c.start in line_times for c in result.chapters)
    transcript_text = " ".join(line.text for line in lines)
    assert all(point in transcript_text for point in result.key_points)


def test_korean_transcript_is_detected_as_korean(backend: LocalBackend) -> None:
    text = [
        "오늘은 커피 원두에 대해 이야기해 볼게요.",
        "원두는 산지에 따라 맛이 완전히 달라요.",
        "에티오피아 원두는 과일 향이 나요.",
        "로스팅을 오래 하면 쓴맛이 강해져요.",
    ]
    lines = tuple(TranscriptLine(start=i * 10.0, text=t) for i, t in enumerate(text))
    result = backend.summarize_video(VideoMaterial(transcript=lines), language="ko").data
    assert result["language"] == "ko"
    assert all(point in text for point in result["key_points"])
    assert "원두" in result["topics"]


def test_summary_without_transcript_uses_title_description_and_its_chapters(
    backend: LocalBackend,
) -> None:
    video = VideoMaterial(
        title="Coffee grinders tested",
        description=(
            "We test three grinders for espresso and filter coffee.\n"
            "0:00 Intro\n1:30 Burr grinders\n4:10 Blade grinders\n"
            "Shop: https://example.com/grinders\n"
            "The burr grinders win on consistency."
        ),
    )
    result = SummaryResult.model_validate(backend.summarize_video(video, language="en").data)
    assert [(c.start, c.title) for c in result.chapters] == [
        ("00:00", "Intro"),
        ("01:30", "Burr grinders"),
        ("04:10", "Blade grinders"),
    ]
    assert all("example.com" not in p for p in result.key_points)
    assert "grinder" in result.topics or "grinders" in result.topics


def test_summary_with_nothing_to_read_fails_clearly(backend: LocalBackend) -> None:
    with pytest.raises(FeatureError) as caught:
        backend.summarize_video(VideoMaterial(), language="en")
    assert caught.value.code == "no_transcript"


# --- comments --------------------------------------------------------------------------


def _comments(texts: list[str], likes: list[int] | None = None) -> VideoMaterial:
    likes = likes or [0] * len(texts)
    return VideoMaterial(
        comments=tuple(Comment(t, likes=n) for t, n in zip(texts, likes, strict=True))
    )


def test_positive_comments_are_mostly_positive(backend: LocalBackend) -> None:
    texts = [
        "I love this song, the chorus is amazing!",
        "Best video ever, great work",
        "The chorus is so good, I love it",
        "Wonderful dancing, this made my day",
        "Such a happy and beautiful song",
        "What camera did you use?",
    ]
    reply = backend.analyze_comments(_comments(texts, [5, 1, 40, 2, 3, 9]), language="en")
    assert (reply.backend, reply.model) == ("local", "local-vader-v1")
    result = CommentsResult.model_validate(reply.data)
    s = result.sentiment
    assert s.positive + s.neutral + s.negative == pytest.approx(1.0)
    assert s.positive > max(s.neutral, s.negative) and s.positive >= 0.6
    assert result.comment_count == 6
    assert "mostly positive" in result.overview
    chorus = next(t for t in result.themes if "chorus" in t.theme)
    assert chorus.share == pytest.approx(2 / 6, abs=0.01)
    assert chorus.example == "The chorus is so good, I love it"  # the most liked with it
    assert result.questions == ["What camera did you use?"]
    assert result.notable[0].text == "The chorus is so good, I love it"
    assert "most liked" in result.notable[0].why


def test_negative_comments_are_mostly_negative(backend: LocalBackend) -> None:
    texts = [
        "This is terrible, worst video I have seen",
        "Awful sound, I hate the mix",
        "Boring and way too long",
        "Horrible editing, so disappointing",
        "ok",
    ]
    result = CommentsResult.model_validate(
        backend.analyze_comments(_comments(texts), language="en").data
    )
    s = result.sentiment
    assert s.negative > max(s.positive, s.neutral)
    assert s.positive + s.neutral + s.negative == pytest.approx(1.0)
    assert any("critical" in n.why for n in result.notable)


def test_spam_and_toxic_comments_are_counted(backend: LocalBackend) -> None:
    texts = [
        "Great song!",
        "Check out my channel for more beats!!",
        "Free gift cards here https://spam.example.com/win",
        "Loved the choreography",
        "You are an idiot and this is stupid, shut up",
        "Nice video",
        "wowwwwwwwwwwwww",
        "Such a good melody",
        "The bridge is lovely",
        "Happy to be here",
    ]
    result = CommentsResult.model_validate(
        backend.analyze_comments(_comments(texts), language="en").data
    )
    assert result.spam_share == pytest.approx(0.3)
    assert result.toxic_share == pytest.approx(0.1)
    assert all("channel" not in n.text and "idiot" not in n.text for n in result.notable)


def test_korean_and_emoji_comments_use_the_fallback(backend: LocalBackend) -> None:
    positive = ["노래 너무 좋아요", "최고예요 👍", "정말 감동이에요", "😍😍🔥", "춤 멋있다 ㅋㅋ"]
    negative = ["재미없어요", "별로네요 👎", "최악이다", "안 좋아요"]
    result = backend.analyze_comments(_comments(positive + negative), language="ko").data
    s = CommentsResult.model_validate(result).sentiment
    assert s.positive == pytest.approx(5 / 9, abs=0.01)
    assert s.negative == pytest.approx(4 / 9, abs=0.01)
    only_negative = backend.analyze_comments(_comments(negative), language="ko").data
    assert only_negative["sentiment"]["negative"] == 1.0


def test_no_comments_fails_clearly(backend: LocalBackend) -> None:
    with pytest.raises(FeatureError) as caught:
        backend.analyze_comments(_comments(["   "]), language="en")
    assert caught.value.code == "no_comments"


# --- thumbnail and caption ---------------------------------------------------------------


def test_thumbnail_of_a_portrait(backend: LocalBackend) -> None:
    reply = backend.analyze_thumbnail(
        _fixture_blob("astronaut.png"), title="Life in orbit", language="en"
    )
    assert (reply.backend, reply.model) == ("local", "local-opencv-v1")
    result = ThumbnailResult.model_validate(reply.data)
    assert "512\u00d7512" in result.description and "one face" in result.description
    assert result.text_on_image == []
    assert len(result.faces) == 1 and result.faces[0].expression == "smiling"
    assert "centre" in result.faces[0].description
    assert result.dominant_colors and "#" in result.dominant_colors[0]
    assert 1 <= result.click_appeal.score <= 10 and result.click_appeal.reasons
    assert any("Life in orbit" in s for s in result.suggestions)  # no text on it yet


def test_dull_thumbnail_scores_lower_with_fitting_suggestions(backend: LocalBackend) -> None:
    rng = np.random.default_rng(3)
    dull = Image.fromarray(rng.integers(10, 40, (360, 640, 3), dtype=np.uint8))
    dull = dull.filter(ImageFilter.GaussianBlur(6))
    dull_result = ThumbnailResult.model_validate(
        backend.analyze_thumbnail(ImageBlob(_png(dull), "image/png"), title="", language="en").data
    )
    portrait = backend.analyze_thumbnail(_fixture_blob("astronaut.png"), title="", language="en")
    assert dull_result.click_appeal.score < portrait.data["click_appeal"]["score"]
    assert dull_result.faces == []
    joined = " ".join(dull_result.suggestions)
    assert "Brighten" in joined and "face" in joined and "sharper" in joined


def test_thumbnail_with_text_mentions_text_like_regions(backend: LocalBackend) -> None:
    image = Image.new("RGB", (1280, 720), (200, 30, 30))
    ImageDraw.Draw(image).text(
        (80, 80), "TOP 5 TIPS", font=ImageFont.truetype(str(FONT_PATH), 110), fill="white"
    )
    result = backend.analyze_thumbnail(ImageBlob(_png(image), "image/png"), title="", language="en")
    description = result.data["description"]
    assert "text-like region" in description and "not read" in description
    assert result.data["text_on_image"] == []


def test_caption_of_a_portrait_and_of_a_still_life(backend: LocalBackend) -> None:
    portrait = CaptionResult.model_validate(
        backend.caption_photo(_fixture_blob("astronaut.png"), language="en").data
    )
    assert portrait.people_count == 1
    assert portrait.caption.startswith("A smiling person")
    assert "guess" in portrait.description and "guess" in portrait.setting
    coffee = CaptionResult.model_validate(
        backend.caption_photo(_fixture_blob("coffee.png"), language="en").data
    )
    assert coffee.people_count == 0 and "no people" in coffee.caption
    assert "warm" in coffee.mood


def test_caption_guesses_outdoors_from_sky_and_grass(backend: LocalBackend) -> None:
    image = Image.new("RGB", (400, 300), (50, 150, 60))
    ImageDraw.Draw(image).rectangle((0, 0, 399, 110), fill=(120, 180, 240))
    result = backend.caption_photo(ImageBlob(_png(image), "image/png"), language="en").data
    assert result["setting"].startswith("outdoors")


def test_unreadable_image_fails_clearly(backend: LocalBackend) -> None:
    with pytest.raises(FeatureError) as caught:
        backend.caption_photo(ImageBlob(b"garbage", "image/png"), language="en")
    assert caught.value.code == "invalid_image"


# --- stylize and card --------------------------------------------------------------------


def test_stylize_returns_a_different_512_png(backend: LocalBackend) -> None:
    astronaut = (FIXTURES / "astronaut.png").read_bytes()
    reply = backend.stylize_face(ImageBlob(astronaut, "image/png"))
    assert reply.image is not None and reply.image.mime_type == "image/png"
    out = Image.open(io.BytesIO(reply.image.data))
    assert out.format == "PNG" and out.size == (512, 512)
    original = np.asarray(Image.open(io.BytesIO(astronaut)).convert("RGB"), dtype=np.int16)
    diff = np.abs(np.asarray(out.convert("RGB"), dtype=np.int16) - original).mean()
    assert diff > 5
    assert reply.data["note"] and reply.backend == "local"


def test_compose_card_returns_the_print_sized_png(backend: LocalBackend) -> None:
    portrait = (FIXTURES / "astronaut.png").read_bytes()
    reply = backend.compose_card(
        ImageBlob(portrait, "image/png"),
        caption="우주에서 웃는 사령관",
        prompt="make it gold",
        language="ko",
    )
    assert reply.image is not None
    card = Image.open(io.BytesIO(reply.image.data))
    assert card.format == "PNG" and card.size == CARD_SIZE
    assert reply.model == "local-pillow-card-v1" and reply.data["note"]

"""The Gemini backend for photos without a usable frontal face, and in Korean, through the
real SDK against the fake Gemini: the whole photo goes to the image model with the prompt
written for that case; a card with nobody to restyle uses the photo with its own prompt;
and every text prompt asks for the job's language."""

from __future__ import annotations

import re

import pytest

from refract.core.material import Comment, ImageBlob, VideoMaterial
from refract.gateway.gemini import GeminiBackend
from refract.imaging.faces import crop_largest_face
from refract.imaging.subjects import find_subject
from tests.support.fakes.gemini import FakeGemini, RecordedRequest
from tests.support.images import fixture_bytes

IMAGE_PATH = "/v1beta/models/gemini-test-flash-image:generateContent"


def only(fake: FakeGemini) -> RecordedRequest:
    [request] = fake.requests
    return request


@pytest.mark.parametrize(
    ("name", "kind", "people"), [("profile.png", "person", 1), ("group.png", "group", 5)]
)
def test_no_usable_face_sends_the_whole_photo_with_the_whole_photo_prompt(
    backend: GeminiBackend, fake: FakeGemini, name: str, kind: str, people: int
) -> None:
    photo = ImageBlob(fixture_bytes(name), "image/png")
    # What the stylize task decides before it calls the backend: no frontal face to crop,
    # but people found another way.
    assert crop_largest_face(photo.data) is None
    subject = find_subject(photo.data)
    assert (subject.kind, subject.people) == (kind, people)

    reply = backend.stylize_photo(photo, subject, language="ko")

    assert reply.image is not None and reply.prompt_version == "stylize_photo.v1"
    request = only(fake)
    assert request.path == IMAGE_PATH
    assert request.images == [("image/png", photo.data)]  # the whole photo, not a crop
    [text] = request.texts
    assert "whole picture a visitor took" in text
    assert f"found about {people} person(s)" in text
    assert "character artist" in text  # the rules travel in the prompt itself


def test_a_card_from_the_photo_itself_uses_its_own_prompt(
    backend: GeminiBackend, fake: FakeGemini
) -> None:
    photo = ImageBlob(fixture_bytes("coffee.png"), "image/png")
    reply = backend.compose_card(
        photo, caption="커피 한 잔", prompt="바다 느낌", language="ko", from_photo=True
    )
    assert reply.prompt_version == "card_photo.v1"
    [text] = only(fake).texts
    assert "do not add people" in " ".join(text.split())
    assert '<<<CAPTION\n"커피 한 잔"\nCAPTION>>>' in text
    assert "language with code ko" in text


def test_every_text_prompt_asks_for_korean(backend: GeminiBackend, fake: FakeGemini) -> None:
    photo = ImageBlob(fixture_bytes("astronaut.png"), "image/png")
    video = VideoMaterial(
        title="커피",
        url="https://www.youtube.com/watch?v=9bZkp7q19f0",
        comments=(Comment("좋아요"), Comment("Great"), Comment("별로예요")),
    )
    backend.summarize_video(video, language="ko")
    backend.analyze_comments(video, language="ko")
    backend.analyze_thumbnail(photo, title="커피", language="ko")
    backend.caption_photo(photo, language="ko")
    backend.compose_card(photo, caption="미소", prompt="별", language="ko")
    asked = re.compile(r"language with code:? ko\b")
    texts = [" ".join(" ".join(r.texts).split()) for r in fake.requests]
    assert len(texts) >= 5
    assert all(asked.search(text) for text in texts), texts

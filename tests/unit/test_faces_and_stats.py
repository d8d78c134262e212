"""Face detection, face cropping and image statistics on real photos and synthetic images."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from refract.imaging.cardart import FONT_PATH
from refract.imaging.faces import FaceBox, crop_largest_face, detect_faces
from refract.imaging.pixels import ImageDecodeError
from refract.imaging.stats import color_name, image_stats
from refract.imaging.subjects import find_subject, people_region

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _text_image(text: str, *, with_text: bool = True) -> bytes:
    image = Image.new("RGB", (1280, 720), (30, 40, 120))
    draw = ImageDraw.Draw(image)
    draw.ellipse((900, 200, 1200, 500), fill=(240, 200, 40))
    if with_text:
        font = ImageFont.truetype(str(FONT_PATH), 90)
        draw.text((80, 90), text, font=font, fill="white")
    return _png(image)


def test_astronaut_has_exactly_one_face_where_expected() -> None:
    faces = detect_faces(_fixture("astronaut.png"))
    assert len(faces) == 1
    face = faces[0]
    assert abs(face.x - 177) <= 6 and abs(face.y - 66) <= 6
    assert abs(face.w - 95) <= 8 and abs(face.h - 95) <= 8
    assert face.area == face.w * face.h


def test_large_photo_finds_the_one_face_scaled_back() -> None:
    astronaut = Image.open(io.BytesIO(_fixture("astronaut.png"))).convert("RGB")
    faces = detect_faces(astronaut.resize((2048, 2048)))
    assert len(faces) == 1  # no false positives from the upscaled texture
    assert abs(faces[0].x - 177 * 4) <= 24 and abs(faces[0].w - 95 * 4) <= 32


def test_detect_faces_accepts_a_pil_image() -> None:
    image = Image.open(io.BytesIO(_fixture("astronaut.png")))
    assert len(detect_faces(image)) == 1


@pytest.mark.parametrize("name", ["coffee.png", "chelsea.png"])
def test_no_human_face_in_coffee_or_cat(name: str) -> None:
    assert detect_faces(_fixture(name)) == []


def test_faces_are_sorted_largest_first() -> None:
    astronaut = Image.open(io.BytesIO(_fixture("astronaut.png"))).convert("RGB")
    canvas = Image.new("RGB", (1024 + 300, 560), (128, 128, 128))
    canvas.paste(astronaut.resize((256, 256)), (20, 150))
    canvas.paste(astronaut, (300, 20))
    faces = detect_faces(_png(canvas))
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].x > 300  # the full-size copy


def test_detection_is_consistent_across_threads() -> None:
    data = _fixture("astronaut.png")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: detect_faces(data), range(8)))
    assert all(result == results[0] for result in results)
    assert len(results[0]) == 1


def test_crop_largest_face_frames_head_and_shoulders() -> None:
    blob = crop_largest_face(_fixture("astronaut.png"))
    assert blob is not None
    assert blob.mime_type == "image/jpeg"
    crop = Image.open(io.BytesIO(blob.data))
    assert crop.format == "JPEG"
    assert crop.width == crop.height
    # 95 px face grown by 1.5 of its size on each side: the suit and shoulders are in.
    assert abs(crop.width - (95 * 4)) <= 16
    inner = detect_faces(blob.data)
    assert len(inner) == 1
    # The face is centred across and sits in the upper part, over the shoulders.
    cx, cy = inner[0].center
    assert abs(cx - crop.width / 2) < crop.width * 0.15
    assert cy < crop.height * 0.45
    # The orange suit fills the lower part of the crop.
    lower = np.asarray(crop.convert("RGB"))[crop.height * 3 // 4 :].reshape(-1, 3).astype(int)
    orange = (lower[:, 0] > 150) & (lower[:, 1] < 130) & (lower[:, 2] < 100)
    assert orange.mean() > 0.25


def test_crop_is_clamped_to_the_image() -> None:
    blob = crop_largest_face(_fixture("astronaut.png"), margin=5.0)
    assert blob is not None
    crop = Image.open(io.BytesIO(blob.data))
    assert crop.size == (512, 512)


def test_crop_is_none_without_a_face() -> None:
    assert crop_largest_face(_fixture("coffee.png")) is None


@pytest.mark.parametrize(
    ("name", "kind", "people"),
    [
        ("astronaut.png", "face", 1),
        ("profile.png", "person", 1),  # head tilted 30 degrees: no usable frontal face
        ("group.png", "group", 5),  # five small faces, as from across a room
        ("coffee.png", "none", 0),
        ("chelsea.png", "none", 0),  # a cat is not a person
    ],
)
def test_find_subject_tells_face_person_group_and_nobody(name: str, kind: str, people: int) -> None:
    subject = find_subject(_fixture(name))
    assert (subject.kind, subject.people) == (kind, people)
    if kind in ("person", "group"):
        assert detect_faces(_fixture(name)) == []  # the frontal search alone finds nobody
        assert subject.method


def test_people_region_covers_every_head_with_their_shoulders() -> None:
    subject = find_subject(_fixture("group.png"))
    x0, y0, x1, y1 = people_region(subject.heads, 1200, 800)
    for head in subject.heads:
        assert x0 <= head.x and head.x + head.w <= x1
        assert y0 <= head.y and head.y + 3 * head.h <= y1
    assert (x0, y0) >= (0, 0) and (x1, y1) <= (1200, 800)


def test_astronaut_colours_are_orange_first() -> None:
    names = [c.name for c in image_stats(_fixture("astronaut.png")).dominant_colors]
    assert names[0] == "orange"
    assert "white" in names[:3]


def test_image_stats_orders_brightness_and_measures_size() -> None:
    rng = np.random.default_rng(7)
    dark = Image.fromarray(rng.integers(0, 30, (300, 400, 3), dtype=np.uint8))
    coffee = image_stats(_fixture("coffee.png"))
    night = image_stats(dark)
    assert (coffee.width, coffee.height) == (600, 400)
    assert (night.width, night.height) == (400, 300)
    assert coffee.brightness > night.brightness
    assert night.brightness < 0.12
    assert 0 <= night.contrast < coffee.contrast <= 1
    assert coffee.faces == [] and coffee.smiles == []


def test_astronaut_stats_include_the_smiling_face() -> None:
    stats = image_stats(_fixture("astronaut.png"))
    assert stats.faces == detect_faces(_fixture("astronaut.png"))
    assert stats.smiles == [True]
    assert stats.sharpness > 100


def test_dominant_colours_of_a_two_colour_image() -> None:
    image = Image.new("RGB", (200, 100), (220, 20, 30))
    ImageDraw.Draw(image).rectangle((100, 0, 199, 99), fill=(250, 250, 250))
    colours = image_stats(image).dominant_colors
    names = {c.name: c.share for c in colours}
    assert set(names) == {"red", "white"}
    assert names["red"] == pytest.approx(0.5, abs=0.05)
    assert sum(c.share for c in colours) == pytest.approx(1.0, abs=0.01)
    assert all(c.hex.startswith("#") and len(c.hex) == 7 for c in colours)


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((250, 250, 250), "white"),
        ((5, 5, 5), "black"),
        ((128, 128, 128), "grey"),
        ((220, 20, 30), "red"),
        ((30, 60, 200), "blue"),
        ((40, 160, 60), "green"),
        ((250, 220, 40), "yellow"),
        ((64, 18, 8), "brown"),
        ((220, 103, 69), "orange"),  # the astronaut's suit, hue 13.5
        ((200, 196, 190), "white"),  # an off-white studio backdrop
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert color_name(*rgb) == name


def test_text_like_regions_found_only_where_text_is() -> None:
    assert image_stats(_text_image("HOW I MADE IT")).text_regions >= 1
    assert image_stats(_text_image("오늘의 커피 리뷰")).text_regions >= 1
    assert image_stats(_text_image("", with_text=False)).text_regions == 0
    for name in ("astronaut.png", "coffee.png", "chelsea.png"):
        assert image_stats(_fixture(name)).text_regions == 0


def test_blur_lowers_sharpness() -> None:
    coffee = Image.open(io.BytesIO(_fixture("coffee.png"))).convert("RGB")
    blurred = coffee.filter(ImageFilter.GaussianBlur(4))
    assert image_stats(blurred).sharpness < image_stats(coffee).sharpness / 5


def test_outdoor_cues_from_sky_and_foliage() -> None:
    image = Image.new("RGB", (300, 300), (40, 140, 50))
    ImageDraw.Draw(image).rectangle((0, 0, 299, 120), fill=(110, 170, 235))
    stats = image_stats(image)
    assert stats.sky_share > 0.9
    assert stats.green_share > 0.5
    assert image_stats(_fixture("coffee.png")).green_share < 0.05


def test_unreadable_bytes_raise_a_decode_error() -> None:
    with pytest.raises(ImageDecodeError):
        detect_faces(b"not an image")


def test_facebox_geometry() -> None:
    box = FaceBox(10, 20, 30, 40)
    assert box.area == 1200
    assert box.center == (25.0, 40.0)

"""The offline ``thumbnail`` and ``caption``: plain-language readings of image statistics.

Nothing here recognises objects or reads text: the words come from measured brightness,
contrast, saturation, colour warmth, dominant colours, detected faces (and smiles), the
count of text-like regions and sharpness, and say so where they guess.

Click appeal starts at 5 and moves by fixed steps: a face +1.5 (no face -0.5), a face
filling at least 5% of the frame +0.5, a smile +0.5, high contrast (luma std >= 0.22) +1 or
low (< 0.12) -1, vivid colour (mean saturation >= 0.45) +1 or muted (< 0.2) -1, too dark
(brightness < 0.25) or washed out (> 0.85) -1, one to four text-like regions +0.5 or more
than six -0.5, crisp (Laplacian variance >= 300) +0.5 or blurry (< 50) -1.5; rounded and
kept within 1-10.
"""

from __future__ import annotations

from refract.core.results import CaptionResult, ThumbnailResult
from refract.imaging.faces import FaceBox
from refract.imaging.stats import ImageStats

_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _count(n: int, noun: str) -> str:
    word = _NUMBERS.get(n, str(n))
    return f"{word} {noun}" if n == 1 else f"{word} {noun}s"


def position_words(face: FaceBox, width: int, height: int) -> str:
    """Where a face sits, in thirds: ``"on the left third, near the top"`` and the like."""
    cx, cy = face.center
    columns = ("on the left third", "in the centre", "on the right third")
    rows = ("near the top", "at mid-height", "near the bottom")
    column = columns[min(2, int(3 * cx / max(1, width)))]
    row = rows[min(2, int(3 * cy / max(1, height)))]
    return f"{column}, {row}"


def tone_words(stats: ImageStats) -> tuple[str, str]:
    """Words for brightness and contrast, e.g. ``("bright", "high-contrast")``."""
    b = stats.brightness
    light = "dark" if b < 0.25 else "dim" if b < 0.4 else "evenly lit" if b < 0.6 else "bright"
    c = stats.contrast
    contrast = "low-contrast" if c < 0.12 else "moderate-contrast" if c < 0.22 else "high-contrast"
    return light, contrast


def colour_list(stats: ImageStats, limit: int = 3) -> list[str]:
    """The main colour names, most common first, skipping slivers under 5%."""
    return [c.name for c in stats.dominant_colors if c.share >= 0.05][:limit]


def _a(phrase: str) -> str:
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" and {words[-1]}"


def click_appeal(stats: ImageStats, *, title: str = "") -> tuple[int, list[str], list[str]]:
    """The click-appeal score, its reasons and suggestions for the weaknesses found."""
    score, reasons, fixes = 5.0, [], []
    area = stats.width * stats.height
    if stats.faces:
        score += 1.5
        reasons.append("a human face draws the eye (+1.5)")
        if stats.faces[0].area >= 0.05 * area:
            score += 0.5
            reasons.append("the main face is large enough to read at thumbnail size (+0.5)")
        else:
            fixes.append("Crop tighter so the main face fills more of the frame.")
        if any(stats.smiles):
            score += 0.5
            reasons.append("a visible smile adds emotion (+0.5)")
        else:
            fixes.append("Use a shot with a clear facial expression.")
    else:
        score -= 0.5
        reasons.append("no face detected (-0.5)")
        fixes.append("Add a close-up of a face showing a clear emotion.")
    if stats.contrast >= 0.22:
        score += 1
        reasons.append(f"high contrast (luma spread {stats.contrast:.2f}) (+1)")
    elif stats.contrast < 0.12:
        score -= 1
        reasons.append(f"low contrast (luma spread {stats.contrast:.2f}) (-1)")
        fixes.append("Raise contrast or separate the subject from the background.")
    if stats.saturation >= 0.45:
        score += 1
        reasons.append(f"vivid colour (saturation {stats.saturation:.2f}) (+1)")
    elif stats.saturation < 0.2:
        score -= 1
        reasons.append(f"muted colour (saturation {stats.saturation:.2f}) (-1)")
        fixes.append("Use bolder, more saturated colours, e.g. a bright background.")
    if stats.brightness < 0.25:
        score -= 1
        reasons.append(f"too dark (brightness {stats.brightness:.2f}) (-1)")
        fixes.append("Brighten the image; dark thumbnails disappear in a feed.")
    elif stats.brightness > 0.85:
        score -= 1
        reasons.append(f"washed out (brightness {stats.brightness:.2f}) (-1)")
        fixes.append("Darken the highlights so the subject does not wash out.")
    if 1 <= stats.text_regions <= 4:
        score += 0.5
        reasons.append(
            f"{_count(stats.text_regions, 'text-like region')}, short overlay text (+0.5)"
        )
    elif stats.text_regions > 6:
        score -= 0.5
        reasons.append(f"{stats.text_regions} text-like regions make it busy (-0.5)")
        fixes.append("Cut the text down to a few large words.")
    elif title.strip():
        fixes.append(f"Add two to four large words from the title (“{title.strip()[:60]}”).")
    else:
        fixes.append("Add two to four large words of overlay text.")
    if stats.sharpness >= 300:
        score += 0.5
        reasons.append("crisp detail (+0.5)")
    elif stats.sharpness < 50:
        score -= 1.5
        reasons.append(f"blurry (sharpness {stats.sharpness:.0f}) (-1.5)")
        fixes.append("Use a sharper source image; blur reads as low quality.")
    return max(1, min(10, round(score))), reasons, fixes


def _faces_phrase(stats: ImageStats) -> str:
    if not stats.faces:
        return "no visible faces"
    where = position_words(stats.faces[0], stats.width, stats.height).split(",")[0]
    if len(stats.faces) == 1:
        return f"one face {where}"
    return f"{_count(len(stats.faces), 'face')}, the largest {where}"


def thumbnail_result(stats: ImageStats, *, title: str) -> dict[str, object]:
    """A :class:`ThumbnailResult` (as a dict) from the thumbnail's statistics."""
    light, contrast = tone_words(stats)
    colours = colour_list(stats)
    text_note = (
        f"{_count(stats.text_regions, 'text-like region')} (shapes like printed words; "
        "the text itself is not read offline)"
        if stats.text_regions
        else "no text-like regions"
    )
    description = (
        f"{_a(light).capitalize()}, {contrast} {stats.width}\u00d7{stats.height} image "
        f"dominated by {_join(colours) or 'mixed colours'}, "
        f"with {_faces_phrase(stats)} and {text_note}."
    )
    faces = [
        {
            "description": f"face {position_words(face, stats.width, stats.height)}, "
            f"{face.area / (stats.width * stats.height):.0%} of the frame",
            "expression": "smiling" if smiling else "no smile detected",
        }
        for face, smiling in zip(stats.faces, stats.smiles, strict=True)
    ]
    score, reasons, fixes = click_appeal(stats, title=title)
    if not fixes:
        fixes.append("No weakness found by the offline checks; test a variant against it.")
    result = ThumbnailResult.model_validate(
        {
            "description": description,
            "text_on_image": [],
            "faces": faces,
            "dominant_colors": [f"{c.name} {c.hex} ({c.share:.0%})" for c in stats.dominant_colors],
            "click_appeal": {"score": score, "reasons": reasons},
            "suggestions": fixes,
        }
    )
    return result.model_dump()


def mood_words(stats: ImageStats) -> str:
    """A mood from brightness and colour warmth (and smiles)."""
    warm = stats.warmth > 0.08
    cool = stats.warmth < -0.03
    if stats.saturation < 0.15:
        base = "quiet and muted"
    elif stats.brightness >= 0.55:
        base = "cheerful and warm" if warm else "fresh and airy" if cool else "light and open"
    elif stats.brightness < 0.35:
        base = "cozy and intimate" if warm else "moody" if cool else "low-key"
    else:
        base = "warm and relaxed" if warm else "calm and cool" if cool else "balanced"
    return f"happy, {base}" if any(stats.smiles) else base


def _outdoors(stats: ImageStats) -> bool:
    return stats.sky_share >= 0.3 or stats.green_share >= 0.25


def caption_result(stats: ImageStats) -> dict[str, object]:
    """A :class:`CaptionResult` (as a dict) from the photo's statistics."""
    people = len(stats.faces)
    outdoors = _outdoors(stats)
    place = "outdoor" if outdoors else "indoor"
    mood = mood_words(stats)
    colours = colour_list(stats, 2)
    light_words = mood.removeprefix("happy, ").replace(" and ", ", ")
    tones = _join(colours) or "mixed"
    if people == 0:
        caption = f"{light_words.capitalize()} light in {tones} tones, no people in view"
    else:
        if people == 1:
            who = "A smiling person" if stats.smiles[0] else "A person"
        else:
            who = _count(people, "person").replace("persons", "people").capitalize()
        caption = f"{who} in {light_words} light, with {tones} tones"
    light, contrast = tone_words(stats)
    faces = (
        "no faces are detected"
        if not people
        else f"{_count(people, 'face')} detected, {'' if people == 1 else 'the largest '}"
        f"{position_words(stats.faces[0], stats.width, stats.height)}"
    )
    cue = (
        f"{stats.sky_share:.0%} of the top is sky-coloured and {stats.green_share:.0%} is "
        "foliage green"
    )
    description = (
        f"{_a(light).capitalize()}, {contrast} {stats.width}\u00d7{stats.height} photo in "
        f"{_join(colour_list(stats)) or 'mixed colours'}; {faces}. "
        f"It looks like {_a(place)} scene — a guess from colour statistics ({cue}), "
        "not scene recognition."
    )
    setting = f"{'outdoors' if outdoors else 'indoors'} (guessed from colours)"
    result = CaptionResult.model_validate(
        {
            "caption": caption,
            "description": description,
            "people_count": people,
            "mood": mood,
            "setting": setting,
        }
    )
    return result.model_dump()

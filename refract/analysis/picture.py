"""The offline ``thumbnail``: a plain-language reading of image statistics, in English or
Korean.

Nothing here recognises objects or reads text: the words come from measured brightness,
contrast, saturation, dominant colours, detected faces (and smiles), the count of
text-like regions and sharpness, and say so where they guess.

Click appeal starts at 5 and moves by fixed steps: a face +1.5 (no face -0.5), a face
filling at least 5% of the frame +0.5, a smile +0.5, high contrast (luma std >= 0.22) +1 or
low (< 0.12) -1, vivid colour (mean saturation >= 0.45) +1 or muted (< 0.2) -1, too dark
(brightness < 0.25) or washed out (> 0.85) -1, one to four text-like regions +0.5 or more
than six -0.5, crisp (Laplacian variance >= 300) +0.5 or blurry (< 50) -1.5; rounded and
kept within 1-10.
"""

from __future__ import annotations

from refract.analysis.wording import Templates, article, colour, count, join, say
from refract.core.results import ThumbnailResult
from refract.imaging.faces import FaceBox
from refract.imaging.stats import ImageStats

_COLUMNS = {
    "en": ("on the left third", "in the centre", "on the right third"),
    "ko": ("왼쪽", "가운데", "오른쪽"),
}
_ROWS = {"en": ("near the top", "at mid-height", "near the bottom"), "ko": ("위", "중간", "아래")}
_LIGHT = {
    "en": ("dark", "dim", "evenly lit", "bright"),
    "ko": ("어두운", "조금 어두운", "고르게 밝은", "밝은"),
}
# Korean joins two descriptions with a connective ending ("밝고 대비가 강한").
_LIGHT_AND_KO = ("어둡고", "조금 어둡고", "고르게 밝고", "밝고")
_CONTRAST = {
    "en": ("low-contrast", "moderate-contrast", "high-contrast"),
    "ko": ("대비가 약한", "대비가 적당한", "대비가 강한"),
}

T: Templates = {
    "face": {"en": "a human face draws the eye (+1.5)", "ko": "사람 얼굴이 시선을 끕니다 (+1.5)"},
    "big_face": {
        "en": "the main face is large enough to read at thumbnail size (+0.5)",
        "ko": "주인공 얼굴이 작은 썸네일에서도 알아볼 만큼 큽니다 (+0.5)",
    },
    "tighter": {
        "en": "Crop tighter so the main face fills more of the frame.",
        "ko": "주인공 얼굴이 화면을 더 채우도록 가까이 잘라 보세요.",
    },
    "smile": {
        "en": "a visible smile adds emotion (+0.5)",
        "ko": "웃는 얼굴이 감정을 더합니다 (+0.5)",
    },
    "expression": {
        "en": "Use a shot with a clear facial expression.",
        "ko": "표정이 또렷한 장면을 골라 보세요.",
    },
    "no_face": {"en": "no face detected (-0.5)", "ko": "얼굴이 보이지 않습니다 (-0.5)"},
    "add_face": {
        "en": "Add a close-up of a face showing a clear emotion.",
        "ko": "감정이 잘 드러나는 얼굴 클로즈업을 넣어 보세요.",
    },
    "high_contrast": {
        "en": "high contrast (luma spread {v:.2f}) (+1)",
        "ko": "명암 대비가 강합니다 (밝기 편차 {v:.2f}) (+1)",
    },
    "low_contrast": {
        "en": "low contrast (luma spread {v:.2f}) (-1)",
        "ko": "명암 대비가 약합니다 (밝기 편차 {v:.2f}) (-1)",
    },
    "raise_contrast": {
        "en": "Raise contrast or separate the subject from the background.",
        "ko": "대비를 높이거나 주인공을 배경에서 또렷이 떼어 보세요.",
    },
    "vivid": {
        "en": "vivid colour (saturation {v:.2f}) (+1)",
        "ko": "색이 선명합니다 (채도 {v:.2f}) (+1)",
    },
    "muted": {
        "en": "muted colour (saturation {v:.2f}) (-1)",
        "ko": "색이 흐릿합니다 (채도 {v:.2f}) (-1)",
    },
    "bolder": {
        "en": "Use bolder, more saturated colours, e.g. a bright background.",
        "ko": "밝은 배경처럼 더 진하고 선명한 색을 써 보세요.",
    },
    "too_dark": {
        "en": "too dark (brightness {v:.2f}) (-1)",
        "ko": "너무 어둡습니다 (밝기 {v:.2f}) (-1)",
    },
    "brighten": {
        "en": "Brighten the image; dark thumbnails disappear in a feed.",
        "ko": "이미지를 밝게 해 보세요. 어두운 썸네일은 목록에서 묻힙니다.",
    },
    "washed": {
        "en": "washed out (brightness {v:.2f}) (-1)",
        "ko": "너무 밝아 색이 바랬습니다 (밝기 {v:.2f}) (-1)",
    },
    "darken": {
        "en": "Darken the highlights so the subject does not wash out.",
        "ko": "밝은 부분을 눌러 주인공이 하얗게 날아가지 않게 해 보세요.",
    },
    "some_text": {
        "en": "{n}, short overlay text (+0.5)",
        "ko": "글자처럼 보이는 영역이 {n}로 문구가 짧습니다 (+0.5)",
    },
    "busy_text": {
        "en": "{n} text-like regions make it busy (-0.5)",
        "ko": "글자처럼 보이는 영역이 {n}개나 되어 복잡합니다 (-0.5)",
    },
    "cut_text": {
        "en": "Cut the text down to a few large words.",
        "ko": "문구를 큼직한 몇 단어로 줄여 보세요.",
    },
    "title_words": {
        "en": "Add two to four large words from the title (“{title}”).",
        "ko": "제목(“{title}”)에서 두세 단어를 골라 크게 넣어 보세요.",
    },
    "any_words": {
        "en": "Add two to four large words of overlay text.",
        "ko": "큼직한 문구를 두세 단어 넣어 보세요.",
    },
    "crisp": {"en": "crisp detail (+0.5)", "ko": "디테일이 선명합니다 (+0.5)"},
    "blurry": {
        "en": "blurry (sharpness {v:.0f}) (-1.5)",
        "ko": "흐릿합니다 (선명도 {v:.0f}) (-1.5)",
    },
    "sharper": {
        "en": "Use a sharper source image; blur reads as low quality.",
        "ko": "더 선명한 원본을 써 보세요. 흐린 이미지는 품질이 낮아 보입니다.",
    },
    "no_weakness": {
        "en": "No weakness found by the offline checks; test a variant against it.",
        "ko": "오프라인 검사로는 약점이 보이지 않습니다. 다른 버전과 비교해 시험해 보세요.",
    },
    "text_note": {
        "en": "{n} (shapes like printed words; the text itself is not read offline)",
        "ko": "글자처럼 보이는 영역 {n}(글자 모양만 찾았고, 오프라인에서는 내용을 읽지 않습니다)",
    },
    "no_text": {"en": "no text-like regions", "ko": "글자처럼 보이는 영역은 없습니다"},
    "no_faces": {"en": "no visible faces", "ko": "보이는 얼굴이 없고"},
    "one_face": {"en": "one face {where}", "ko": "얼굴 하나가 {where}에 있고"},
    "faces": {
        "en": "{n}, the largest {where}",
        "ko": "얼굴 {n}가 있으며 가장 큰 얼굴은 {where}에 있고",
    },
    "description": {
        "en": "{light_a}, {contrast} {size} image dominated by {colours}, with {faces} and {text}.",
        "ko": "{size} 크기의 {light_and} {contrast} 이미지로, {colours}이 주를 이룹니다. "
        "{faces}, {text}.",
    },
    "mixed": {"en": "mixed colours", "ko": "여러 색"},
    "face_desc": {
        "en": "face {where}, {share} of the frame",
        "ko": "{where}의 얼굴, 화면의 {share}",
    },
    "smiling": {"en": "smiling", "ko": "웃는 얼굴"},
    "no_smile": {"en": "no smile detected", "ko": "미소는 보이지 않음"},
}


def position_words(face: FaceBox, width: int, height: int, lang: str = "en") -> str:
    """Where a face sits, in thirds: ``"on the left third, near the top"`` / ``"왼쪽 위"``."""
    cx, cy = face.center
    column = _COLUMNS.get(lang, _COLUMNS["en"])[min(2, int(3 * cx / max(1, width)))]
    row = _ROWS.get(lang, _ROWS["en"])[min(2, int(3 * cy / max(1, height)))]
    return f"{column} {row}" if lang == "ko" else f"{column}, {row}"


def tone_words(stats: ImageStats, lang: str = "en") -> tuple[str, str]:
    """Words for brightness and contrast, e.g. ``("bright", "high-contrast")``."""
    b, c = stats.brightness, stats.contrast
    light = _LIGHT.get(lang, _LIGHT["en"])[0 if b < 0.25 else 1 if b < 0.4 else 2 if b < 0.6 else 3]
    contrast = _CONTRAST.get(lang, _CONTRAST["en"])[0 if c < 0.12 else 1 if c < 0.22 else 2]
    return light, contrast


def colour_list(stats: ImageStats, limit: int = 3, lang: str = "en") -> list[str]:
    """The main colour names, most prominent first, skipping slivers under 5%."""
    return [colour(c.name, lang) for c in stats.dominant_colors if c.share >= 0.05][:limit]


def click_appeal(
    stats: ImageStats, *, title: str = "", lang: str = "en"
) -> tuple[int, list[str], list[str]]:
    """The click-appeal score, its reasons and suggestions for the weaknesses found."""
    score, reasons, fixes = 5.0, [], []

    def reason(delta: float, key: str, **values: object) -> None:
        nonlocal score
        score += delta
        reasons.append(say(T, key, lang, **values))

    def fix(key: str, **values: object) -> None:
        fixes.append(say(T, key, lang, **values))

    if stats.faces:
        reason(1.5, "face")
        if stats.faces[0].area >= 0.05 * stats.width * stats.height:
            reason(0.5, "big_face")
        else:
            fix("tighter")
        if any(stats.smiles):
            reason(0.5, "smile")
        else:
            fix("expression")
    else:
        reason(-0.5, "no_face")
        fix("add_face")
    if stats.contrast >= 0.22:
        reason(1, "high_contrast", v=stats.contrast)
    elif stats.contrast < 0.12:
        reason(-1, "low_contrast", v=stats.contrast)
        fix("raise_contrast")
    if stats.saturation >= 0.45:
        reason(1, "vivid", v=stats.saturation)
    elif stats.saturation < 0.2:
        reason(-1, "muted", v=stats.saturation)
        fix("bolder")
    if stats.brightness < 0.25:
        reason(-1, "too_dark", v=stats.brightness)
        fix("brighten")
    elif stats.brightness > 0.85:
        reason(-1, "washed", v=stats.brightness)
        fix("darken")
    if 1 <= stats.text_regions <= 4:
        reason(0.5, "some_text", n=count(stats.text_regions, "text-like region", lang))
    elif stats.text_regions > 6:
        reason(-0.5, "busy_text", n=stats.text_regions)
        fix("cut_text")
    elif title.strip():
        fix("title_words", title=title.strip()[:60])
    else:
        fix("any_words")
    if stats.sharpness >= 300:
        reason(0.5, "crisp")
    elif stats.sharpness < 50:
        reason(-1.5, "blurry", v=stats.sharpness)
        fix("sharper")
    return max(1, min(10, round(score))), reasons, fixes


def _faces_phrase(stats: ImageStats, lang: str) -> str:
    if not stats.faces:
        return say(T, "no_faces", lang)
    where = position_words(stats.faces[0], stats.width, stats.height, lang)
    where = where if lang == "ko" else where.split(",")[0]
    if len(stats.faces) == 1:
        return say(T, "one_face", lang, where=where)
    return say(T, "faces", lang, n=count(len(stats.faces), "face", lang), where=where)


def thumbnail_result(stats: ImageStats, *, title: str, lang: str = "en") -> dict[str, object]:
    """A :class:`ThumbnailResult` (as a dict) from the thumbnail's statistics."""
    light, contrast = tone_words(stats, lang)
    text = (
        say(T, "text_note", lang, n=count(stats.text_regions, "text-like region", lang))
        if stats.text_regions
        else say(T, "no_text", lang)
    )
    description = say(
        T,
        "description",
        lang,
        light_and=_LIGHT_AND_KO[_LIGHT.get(lang, _LIGHT["en"]).index(light)],
        light_a=article(light).capitalize(),
        contrast=contrast,
        size=f"{stats.width}\u00d7{stats.height}",
        colours=join(colour_list(stats, lang=lang), lang) or say(T, "mixed", lang),
        faces=_faces_phrase(stats, lang),
        text=text,
    )
    area = stats.width * stats.height
    faces = [
        {
            "description": say(
                T,
                "face_desc",
                lang,
                where=position_words(face, stats.width, stats.height, lang),
                share=f"{face.area / area:.0%}",
            ),
            "expression": say(T, "smiling" if smiling else "no_smile", lang),
        }
        for face, smiling in zip(stats.faces, stats.smiles, strict=True)
    ]
    score, reasons, fixes = click_appeal(stats, title=title, lang=lang)
    if not fixes:
        fixes.append(say(T, "no_weakness", lang))
    result = ThumbnailResult.model_validate(
        {
            "description": description,
            "text_on_image": [],
            "faces": faces,
            "dominant_colors": [
                f"{colour(c.name, lang)} {c.hex} ({c.share:.0%})" for c in stats.dominant_colors
            ],
            "click_appeal": {"score": score, "reasons": reasons},
            "suggestions": fixes,
        }
    )
    return result.model_dump()

"""The offline ``caption``: what a photo shows, as far as offline analysis can tell, in
English or Korean.

The words come from the photo's statistics (:mod:`refract.imaging.stats`: light, contrast,
the dominant colours ranked with saturated areas first) and from who is in it
(:func:`refract.imaging.subjects.find_subject`: a frontal face, a tilted or profile face,
several small faces, or nobody). The setting is a guess from sky- and foliage-coloured
pixels and says so.
"""

from __future__ import annotations

from refract.analysis.picture import position_words, tone_words
from refract.analysis.wording import Templates, article, colour, count, join, say
from refract.core.results import CaptionResult
from refract.imaging.stats import ImageStats
from refract.imaging.subjects import Subject

_MOODS = {
    "quiet and muted": "차분하고 수수한",
    "cheerful and warm": "밝고 따뜻한",
    "fresh and airy": "산뜻하고 시원한",
    "light and open": "밝고 탁 트인",
    "cozy and intimate": "아늑하고 포근한",
    "moody": "분위기 있는",
    "low-key": "은은한",
    "warm and relaxed": "따뜻하고 편안한",
    "calm and cool": "차분하고 시원한",
    "balanced": "균형 잡힌",
}
_LIGHT_AND_KO = {"어두운": "어둡고", "조금 어두운": "조금 어둡고", "고르게 밝은": "고르게 밝고"}
_METHODS_KO = {"small faces": "작은 얼굴", "tilted face": "기울어진 얼굴", "profile face": "옆얼굴"}

T: Templates = {
    "smiling_person": {
        "en": "A smiling person in {colours}",
        "ko": "{colours}이 어우러진 미소 띤 인물 사진",
    },
    "person": {"en": "A person in {colours}", "ko": "{colours}이 어우러진 인물 사진"},
    "people": {"en": "{n} together, in {colours}", "ko": "{colours} 속에 {n}이 함께한 사진"},
    "nobody": {
        "en": "{light} scene in {colours}, no people in view",
        "ko": "사람 없이 {colours}이 어우러진 {light} 장면",
    },
    "who_face": {
        "en": "one frontal face{smile}, {where}",
        "ko": "{where}에 정면 얼굴이 하나 있습니다{smile}",
    },
    "who_faces": {
        "en": "{n} frontal faces, the largest {where}",
        "ko": "정면 얼굴이 {n} 있고, 가장 큰 얼굴은 {where}에 있습니다",
    },
    "who_person": {
        "en": "one person, found from a {method} (no usable frontal face)",
        "ko": "정면 얼굴은 없지만 {method}로 한 사람을 찾았습니다",
    },
    "who_group": {
        "en": "{n}, found as {method} (as in a group shot from afar)",
        "ko": "{method}로 {n}을 찾았습니다(멀리서 찍은 단체 사진처럼 보입니다)",
    },
    "who_nobody": {"en": "no person is found", "ko": "사람은 보이지 않습니다"},
    "description": {
        "en": "{light_a}, {contrast} {size} photo in {colours}; {who}. It looks like {place} "
        "scene — a guess from colour statistics ({sky} of the top is sky-coloured and "
        "{green} is foliage green), not scene recognition.",
        "ko": "{size} 크기의 {light_and} {contrast} 사진으로, {colours}이 주를 이룹니다. {who}. "
        "색 통계로 짐작하면 {place} 장면으로 보입니다(장면 인식이 아닌 추정: 위쪽의 {sky}가 "
        "하늘색, 전체의 {green}가 초록 잎 색).",
    },
    "indoor": {"en": "an indoor", "ko": "실내"},
    "outdoor": {"en": "an outdoor", "ko": "야외"},
    "setting_in": {"en": "indoors (guessed from colours)", "ko": "실내 (색으로 짐작)"},
    "setting_out": {"en": "outdoors (guessed from colours)", "ko": "야외 (색으로 짐작)"},
    "mixed": {"en": "mixed colours", "ko": "여러 색"},
    "smiling": {"en": ", smiling", "ko": "(웃는 얼굴)"},
    "happy": {"en": "happy, {base}", "ko": "웃음 가득, {base}"},
}


def mood_words(stats: ImageStats, lang: str = "en") -> str:
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
    base = _MOODS[base] if lang == "ko" else base
    return say(T, "happy", lang, base=base) if any(stats.smiles) else base


def _outdoors(stats: ImageStats) -> bool:
    return stats.sky_share >= 0.3 or stats.green_share >= 0.25


def _colours(stats: ImageStats, lang: str, limit: int = 3) -> str:
    names = [colour(c.name, lang) for c in stats.dominant_colors if c.share >= 0.05][:limit]
    return join(names, lang) or say(T, "mixed", lang)


def _methods(subject: Subject, lang: str) -> str:
    parts = subject.method.split(", ")
    if lang == "ko":
        return join([_METHODS_KO.get(p, p) for p in parts], lang)
    return join(parts, lang)


def _who(stats: ImageStats, subject: Subject, lang: str) -> str:
    if stats.faces:
        where = position_words(stats.faces[0], stats.width, stats.height, lang)
        if len(stats.faces) == 1:
            smile = say(T, "smiling", lang) if stats.smiles[0] else ""
            return say(T, "who_face", lang, smile=smile, where=where)
        return say(T, "who_faces", lang, n=count(len(stats.faces), "face", lang), where=where)
    if subject.kind == "person":
        return say(T, "who_person", lang, method=_methods(subject, lang))
    if subject.kind == "group":
        n = count(subject.people, "person", lang, counter="명")
        return say(
            T, "who_group", lang, n=n.replace("persons", "people"), method=_methods(subject, lang)
        )
    return say(T, "who_nobody", lang)


def caption_result(stats: ImageStats, subject: Subject, lang: str = "en") -> dict[str, object]:
    """A :class:`CaptionResult` (as a dict) from the photo's statistics and its subject."""
    people = max(len(stats.faces), subject.people)
    colours = _colours(stats, lang)
    light, contrast = tone_words(stats, lang)
    if people == 0:
        scene = light if lang == "ko" else article(light).capitalize()
        caption = say(T, "nobody", lang, light=scene, colours=colours)
    elif people == 1:
        smiling = bool(stats.smiles and stats.smiles[0])
        caption = say(T, "smiling_person" if smiling else "person", lang, colours=colours)
    else:
        n = count(people, "person", lang, counter="명").replace("persons", "people")
        caption = say(T, "people", lang, n=n.capitalize() if lang == "en" else n, colours=colours)
    outdoors = _outdoors(stats)
    description = say(
        T,
        "description",
        lang,
        light_a=article(light).capitalize(),
        light_and=_LIGHT_AND_KO.get(light, "밝고"),
        contrast=contrast,
        size=f"{stats.width}\u00d7{stats.height}",
        colours=colours,
        who=_who(stats, subject, lang),
        place=say(T, "outdoor" if outdoors else "indoor", lang),
        sky=f"{stats.sky_share:.0%}",
        green=f"{stats.green_share:.0%}",
    )
    result = CaptionResult.model_validate(
        {
            "caption": caption,
            "description": description,
            "people_count": people,
            "mood": mood_words(stats, lang),
            "setting": say(T, "setting_out" if outdoors else "setting_in", lang),
        }
    )
    return result.model_dump()

"""The notes the local backend puts beside its images, in English or Korean: what was
made, how, and what the visitor's prompt changed."""

from __future__ import annotations

from refract.imaging.cardart import CARD_SIZE
from refract.imaging.carddesign import Design

_PALETTES_KO = {
    "vivid": "선명한 원색",
    "night": "밤하늘",
    "space": "우주",
    "ocean": "바다",
    "floral": "꽃",
    "pastel": "파스텔",
    "gold": "황금빛",
    "retro": "레트로",
    "forest": "숲",
    "sunset": "노을",
    "winter": "겨울",
    "mono": "흑백",
}
_MOTIFS_KO = {
    "stars": "별",
    "city_lights": "도시 불빛",
    "waves": "파도",
    "flowers": "꽃",
    "hearts": "하트",
    "confetti": "색종이",
    "snow": "눈송이",
}


def stylize_note(lang: str, size: int, *, region: tuple[int, int, int, int] | None = None) -> str:
    """How the offline portrait was made (``region``: the part of the photo restyled)."""
    if lang == "ko":
        where = (
            f"사진에서 사람들이 있는 부분({region[0]},{region[1]}-{region[2]},{region[3]})을 "
            if region
            else "얼굴과 어깨를 담은 부분을 "
        )
        return (
            f"{where}OpenCV로 오프라인 카툰 처리했습니다(긴 변 {size}px): 경계를 살린 "
            "평활화, 색 단순화로 만든 평평한 면, 깔끔한 윤곽선. 생성형 3D 모델은 아닙니다."
        )
    where = (
        f"the part of the photo where the people are ({region[0]},{region[1]}-"
        f"{region[2]},{region[3]})"
        if region
        else "the head-and-shoulders crop"
    )
    return (
        f"Offline cartoon restyle of {where} (long side {size}px): edge-preserving "
        "smoothing, flat colour areas from a reduced palette and clean ink outlines, drawn "
        "with OpenCV; not a generated 3D model."
    )


def card_note(lang: str, design: Design, *, from_photo: bool) -> str:
    """What the offline card is and how the visitor's prompt shaped it."""
    width, height = CARD_SIZE
    if lang == "ko":
        source = "방문객의 사진을 그대로 써서 " if from_photo else ""
        styled = "프롬프트에 디자인 단어가 없어 사진의 색으로 꾸몄습니다."
        if design.palette or design.motifs:
            palette = _PALETTES_KO.get(design.palette or "", design.palette or "")
            motifs = ", ".join(_MOTIFS_KO.get(m, m) for m in design.motifs)
            if design.palette and design.motifs:
                how = f"{palette} 색 조합에 {motifs} 무늬를 더해"
            elif design.palette:
                how = f"{palette} 색 조합으로"
            else:
                how = f"{motifs} 무늬를 더해"
            words = ", ".join(f"“{w}”" for w in design.matched)
            styled = f"프롬프트의 {words}에 맞춰 {how} 꾸몄습니다."
        return (
            f"{source}오프라인으로 그린 카드입니다({width}x{height}px, 300dpi 4x6인치). "
            f"{styled} 프롬프트 문구도 카드에 함께 인쇄했습니다."
        )
    source = "made from the visitor's photo itself, " if from_photo else ""
    styled = "no design words in the prompt, so the colours come from the picture."
    if design.palette or design.motifs:
        parts = []
        if design.palette:
            parts.append(f"the {design.palette} palette")
        if design.motifs:
            plural = "s" if len(design.motifs) > 1 else ""
            parts.append(f"{', '.join(m.replace('_', ' ') for m in design.motifs)} motif{plural}")
        styled = f"{' and '.join(parts)} chosen from the prompt ({', '.join(design.matched)})."
    return (
        f"Card drawn offline ({source}{width}x{height} px, 4x6 in at 300 dpi): {styled} "
        "The prompt is printed on the card too."
    )

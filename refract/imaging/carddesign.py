"""The visitor's prompt, read as design choices for the offline card: a palette and motifs.

Words in English and Korean map to a palette (``night``, ``ocean``, ``floral``...) and
motifs drawn around the portrait (``stars``, ``city_lights``, ``waves``...). When several
palette words appear, the one written first wins; "bold colours" / "선명한" makes whatever
palette is chosen more saturated (and is the ``vivid`` palette on its own). Korean words are
matched at the start of a word, with any particle after them ("별이", "바다에서"), so that
"특별한" is not a star. A prompt with none of these words keeps the portrait's own colours.
The choices are returned with the words that made them, and recorded in the card's result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """A card's colours: the background ramp, the accent (frame, rules), text on paper."""

    top: RGB
    bottom: RGB
    accent: RGB
    paper: RGB = (252, 249, 244)
    ink: RGB = (34, 30, 38)
    muted: RGB = (104, 98, 110)


PALETTES: dict[str, Palette] = {
    "vivid": Palette((255, 64, 129), (48, 79, 254), (255, 179, 0)),
    "night": Palette((14, 22, 58), (44, 24, 84), (255, 196, 80), (246, 244, 252)),
    "space": Palette((18, 24, 72), (70, 24, 96), (255, 140, 60), (246, 244, 252)),
    "ocean": Palette((72, 202, 228), (2, 62, 138), (0, 150, 199), (244, 251, 253)),
    "floral": Palette((255, 204, 213), (255, 143, 171), (214, 51, 108), (255, 250, 251)),
    "pastel": Palette((205, 232, 255), (255, 214, 232), (150, 120, 200)),
    "gold": Palette((250, 220, 140), (140, 94, 20), (184, 134, 11), (255, 252, 240)),
    "retro": Palette((244, 162, 97), (42, 157, 143), (231, 111, 81), (253, 246, 232)),
    "forest": Palette((149, 213, 178), (27, 67, 50), (45, 106, 79), (248, 252, 246)),
    "sunset": Palette((255, 183, 94), (190, 54, 110), (230, 90, 70), (255, 248, 240)),
    "winter": Palette((220, 236, 250), (120, 160, 210), (70, 110, 170), (250, 252, 255)),
    "mono": Palette((235, 235, 235), (40, 40, 40), (20, 20, 20), (255, 255, 255)),
}
MOTIFS = ("stars", "city_lights", "waves", "flowers", "hearts", "confetti", "snow")

_KO = r"(?<![가-힣])"  # a Korean word starts here (nothing Hangul right before it)
# (pattern, palette or None, motifs): English words whole (plural and -y forms allowed).
_RULES: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    (
        r"\b(bold|vivid|vibrant|colou?rful|saturated|neon|pop)\b|선명|강렬|화려|비비드|원색",
        "vivid",
        (),
    ),
    (
        r"\b(night|nights|evening|nightscape|night-time)\b|야경|(?<![가-힣])밤|야간",
        "night",
        ("city_lights",),
    ),
    (r"\b(city|cities|skyline|downtown|seoul|urban)\b|도시|서울|도심", None, ("city_lights",)),
    (
        r"\b(stars?|starry|galaxy|galaxies|constellations?)\b|" + _KO + r"별|은하|밤하늘",
        None,
        ("stars",),
    ),
    (
        r"\b(space|rocket|astronauts?|cosmic|planets?|space-mission)\b|우주|로켓",
        "space",
        ("stars",),
    ),
    (r"\b(ocean|sea|beach|waves?|marine|surf)\b|바다|해변|파도", "ocean", ("waves",)),
    (r"\b(flowers?|floral|blossoms?|spring|bloom)\b|꽃|" + _KO + r"봄", "floral", ("flowers",)),
    (r"\b(hearts?|love|romantic)\b|하트|사랑", None, ("hearts",)),
    (r"\b(party|birthday|celebrat\w*|confetti|festive)\b|생일|축하|파티", None, ("confetti",)),
    (r"\b(snow\w*|winter|christmas|xmas)\b|겨울|눈송이|크리스마스|성탄", "winter", ("snow",)),
    (r"\b(pastel|soft)\b|파스텔", "pastel", ()),
    (r"\b(gold|golden|luxury|luxurious)\b|황금|금빛|금색|골드", "gold", ()),
    (r"\b(retro|vintage|classic|old-school)\b|레트로|복고|빈티지", "retro", ()),
    (r"\b(forest|nature|jungle|leaves|leafy)\b|숲|자연", "forest", ()),
    (r"\b(sunset|sunrise|dusk|dawn)\b|노을|석양|일출", "sunset", ()),
    (r"\b(black and white|monochrome|grayscale|greyscale|noir)\b|흑백", "mono", ()),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), pal, m) for p, pal, m in _RULES)
_MAX_MOTIFS = 3


@dataclass(frozen=True)
class Design:
    """What the card looks like and which of the visitor's words chose it."""

    palette: str | None = None
    vivid: bool = False
    motifs: tuple[str, ...] = ()
    matched: tuple[str, ...] = field(default_factory=tuple)

    def as_result(self) -> dict[str, object]:
        """The design as recorded in the card's result."""
        return {
            "palette": self.palette or "portrait",
            "vivid": self.vivid,
            "motifs": list(self.motifs),
            "matched_words": list(self.matched),
        }


def design_from_prompt(prompt: str) -> Design:
    """The card's design choices from the visitor's prompt (see the module docstring)."""
    palettes: list[tuple[int, str]] = []
    motifs: list[tuple[int, str]] = []
    matched: list[tuple[int, str]] = []
    vivid = False
    for pattern, palette, rule_motifs in _COMPILED:
        found = pattern.search(prompt)
        if found is None:
            continue
        matched.append((found.start(), found.group(0)))
        if palette == "vivid":
            vivid = True
        elif palette is not None:
            palettes.append((found.start(), palette))
        motifs.extend((found.start(), m) for m in rule_motifs)
    chosen = min(palettes)[1] if palettes else ("vivid" if vivid else None)
    ordered = list(dict.fromkeys(m for _, m in sorted(motifs)))[:_MAX_MOTIFS]
    words = tuple(word for _, word in sorted(matched))
    return Design(chosen, vivid, tuple(ordered), words)


def saturate(colour: RGB, amount: float = 1.35) -> RGB:
    """``colour`` with its distance from grey scaled by ``amount`` (kept in 0-255)."""
    grey = sum(colour) / 3
    r, g, b = (round(min(255.0, max(0.0, grey + (c - grey) * amount))) for c in colour)
    return r, g, b

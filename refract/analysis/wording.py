"""Words the offline analyses share, in each language they write (``en``, ``ko``).

Messages are looked up by key in a module's own table of templates (one string per
language, ``str.format`` fields); :func:`say` fills them. The Korean is written as a person
would say it, not translated word for word: lists join with "와/과" or commas, counts take
their counters (``세 명``), and the sentences end in the plain polite ``-습니다``/``-요``
style a booth screen uses.
"""

from __future__ import annotations

from collections.abc import Mapping

Templates = Mapping[str, Mapping[str, str]]

_COLOURS_KO = {
    "white": "흰색",
    "black": "검은색",
    "grey": "회색",
    "light grey": "밝은 회색",
    "dark grey": "짙은 회색",
    "beige": "베이지색",
    "brown": "갈색",
    "red": "빨간색",
    "orange": "주황색",
    "yellow": "노란색",
    "green": "초록색",
    "teal": "청록색",
    "blue": "파란색",
    "purple": "보라색",
    "pink": "분홍색",
}
_NUMBERS_EN = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
_NUMBERS_KO = {1: "한", 2: "두", 3: "세", 4: "네", 5: "다섯"}


def say(templates: Templates, key: str, lang: str, **values: object) -> str:
    """The ``key`` message in ``lang`` (English if that language has none), filled in."""
    entry = templates[key]
    return entry.get(lang, entry["en"]).format(**values)


def colour(name: str, lang: str) -> str:
    """A colour name from :func:`~refract.imaging.stats.color_name` in ``lang``."""
    if lang != "ko":
        return name
    if name.startswith("dark ") and name not in _COLOURS_KO:
        return "짙은 " + _COLOURS_KO.get(name.removeprefix("dark "), name)
    return _COLOURS_KO.get(name, name)


def count(n: int, noun: str, lang: str, *, counter: str = "개") -> str:
    """``n`` things: ``"three faces"`` / ``"세 개"`` (``counter`` is the Korean counter)."""
    if lang == "ko":
        return f"{_NUMBERS_KO.get(n, str(n))} {counter}" if n <= 5 else f"{n}{counter}"
    word = _NUMBERS_EN.get(n, str(n))
    return f"{word} {noun}" if n == 1 else f"{word} {noun}s"


def has_final_consonant(word: str) -> bool:
    """Whether a Korean word ends in a consonant (batchim), which picks its particles."""
    last = word.rstrip()[-1:] if word.strip() else ""
    if "가" <= last <= "힣":
        return (ord(last) - 0xAC00) % 28 != 0
    return last.isdigit() and last in "013678"


def join(words: list[str], lang: str) -> str:
    """``a, b and c`` in English; ``a, b와 c`` in Korean (the particle follows the word)."""
    if len(words) <= 1:
        return "".join(words)
    if lang == "ko":
        head = ", ".join(words[:-1])
        particle = "과" if has_final_consonant(words[-2]) else "와"
        return f"{head}{particle} {words[-1]}"
    return ", ".join(words[:-1]) + f" and {words[-1]}"


def article(phrase: str) -> str:
    """``phrase`` with "a" or "an" in front (English only)."""
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"

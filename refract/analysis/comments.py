"""The offline ``comments``: sentiment, themes, questions, spam and toxicity of comments.

Sentiment: comments in Latin script are scored with VADER (a maintained lexicon and rule
analyser for English, which also reads emoticons), its compound score averaged with the
emoji table in :mod:`refract.analysis.lexicon` when the comment has emoji. When VADER finds
nothing in a Latin-script comment, or the comment is in another script (Korean, Japanese,
...), the fallback scores it: hits in the emoji table and the small multilingual word lists,
``(positive - negative) / (positive + negative)``; no hits means neutral. Either way a
score >= 0.05 is positive and <= -0.05 negative (VADER's own thresholds).

Themes are the terms and two-word phrases that the most (non-spam) comments use; questions
are comments with a question mark or a question word; spam and toxic comments are matched
by the patterns in the lexicon module, and a comment with an insult is toxic only when its
tone is clearly negative (score <= -0.3).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from refract.analysis import lexicon
from refract.analysis.textstats import bigrams, fold_inflections, script_of, tokenize
from refract.core.errors import FeatureError
from refract.core.material import Comment
from refract.core.results import CommentsResult

_THRESHOLD = 0.05
_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_MAX_TEXT = 220


@lru_cache(maxsize=1)
def _vader() -> SentimentIntensityAnalyzer:
    # Read-only after construction, so one instance serves every thread.
    return SentimentIntensityAnalyzer()


@dataclass(frozen=True)
class ScoredComment:
    """A comment with its sentiment score (-1..1) and flags."""

    comment: Comment
    score: float
    spam: bool
    toxic: bool
    terms: frozenset[str]


def _emoji_score(text: str) -> tuple[int, int]:
    positive = sum(1 for c in text if c in lexicon.POSITIVE_EMOJI)
    negative = sum(1 for c in text if c in lexicon.NEGATIVE_EMOJI)
    return positive, negative


def _fallback_hits(text: str) -> tuple[int, int]:
    positive, negative = _emoji_score(text)
    words = [w.lower() for w in _WORDS.findall(text)]
    for i, word in enumerate(words):
        negated = i > 0 and words[i - 1] in lexicon.LATIN_NEGATORS
        is_pos = any(word in group for group in lexicon.POSITIVE_WORDS.values())
        is_neg = any(word in group for group in lexicon.NEGATIVE_WORDS.values())
        if is_pos or is_neg:
            if is_pos != negated:
                positive += 1
            else:
                negative += 1
    for stems, sign in ((lexicon.POSITIVE_STEMS, 1), (lexicon.NEGATIVE_STEMS, -1)):
        for stem in stems:
            for match in re.finditer(re.escape(stem), text):
                before = text[max(0, match.start() - 2) : match.start()]
                after = text[match.end() : match.end() + 3]
                negated = before.endswith(lexicon.KOREAN_NEGATION_BEFORE) or after.startswith(
                    lexicon.KOREAN_NEGATION_AFTER
                )
                if (sign > 0) != negated:
                    positive += 1
                else:
                    negative += 1
    return positive, negative


def sentiment_score(text: str) -> float:
    """A sentiment score in -1..1 for one comment (see the module docstring)."""
    letters = [c for c in text if c.isalpha()]
    latin = letters and sum(script_of(c) == "latin" for c in letters) / len(letters) >= 0.5
    score = 0.0
    if latin or not letters:
        # Emoji in the table are scored by the table: VADER reads 🔥 as "fire", a negative.
        words = "".join(
            c for c in text if c not in lexicon.POSITIVE_EMOJI and c not in lexicon.NEGATIVE_EMOJI
        )
        score = float(_vader().polarity_scores(words)["compound"]) if words.strip() else 0.0
        positive, negative = _emoji_score(text)
        if positive or negative:
            emoji = (positive - negative) / (positive + negative)
            score = (score + emoji) / 2 if score else emoji
    if score == 0.0:
        positive, negative = _fallback_hits(text)
        if positive or negative:
            score = (positive - negative) / (positive + negative)
    return max(-1.0, min(1.0, score))


def is_spam(text: str) -> bool:
    """Self-promotion, links, giveaways or character floods."""
    if any(p.search(text) for p in lexicon.SPAM_PATTERNS):
        return True
    emoji = sum(1 for c in text if ord(c) >= 0x1F000 or 0x2600 <= ord(c) <= 0x27BF)
    visible = sum(1 for c in text if not c.isspace())
    return emoji >= 10 and emoji >= 0.8 * visible


def is_toxic(text: str, score: float) -> bool:
    """Severe abuse always; an insult when the comment's tone is clearly negative."""
    if any(p.search(text) for p in lexicon.SEVERE_TOXIC):
        return True
    return score <= -0.3 and any(p.search(text) for p in lexicon.INSULTS)


def is_question(text: str) -> bool:
    """A question mark, an opening question word, or a Korean question ending."""
    return (
        "?" in text
        or "\uff1f" in text  # full-width question mark
        or bool(lexicon.QUESTION_START.search(text))
        or bool(lexicon.KOREAN_QUESTION.search(text))
    )


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1].rstrip() + "…"


def _score_all(comments: tuple[Comment, ...]) -> list[ScoredComment]:
    token_lists = fold_inflections([tokenize(c.text) for c in comments])
    copies = Counter(" ".join(c.text.lower().split()) for c in comments)
    scored = []
    for comment, tokens in zip(comments, token_lists, strict=True):
        score = sentiment_score(comment.text)
        # The same text posted three or more times is a copy-paste campaign.
        spam = is_spam(comment.text) or copies[" ".join(comment.text.lower().split())] >= 3
        terms = frozenset(tokens) | frozenset(bigrams(tokens))
        scored.append(ScoredComment(comment, score, spam, is_toxic(comment.text, score), terms))
    return scored


def _themes(scored: list[ScoredComment], total: int, limit: int = 5) -> list[dict[str, object]]:
    useful = [s for s in scored if not s.spam]
    df = Counter(term for s in useful for term in s.terms)
    unigrams = [(n, t) for t, n in df.items() if " " not in t and n >= 2]
    themes: list[dict[str, object]] = []
    taken: set[str] = set()
    for n, term in sorted(unigrams, key=lambda item: (-item[0], item[1])):
        if len(themes) == limit:
            break
        # A word used mostly inside one phrase is shown as that phrase.
        phrases = [(m, p) for p, m in df.items() if " " in p and term in p.split() and m >= 2]
        best_n, best = max(phrases, default=(0, term))
        label, count = (best, best_n) if best_n >= 0.5 * n else (term, n)
        if taken.intersection(label.split()):
            continue
        taken.update(label.split())
        holders = [s for s in useful if label in s.terms]
        example = max(holders, key=lambda s: (s.comment.likes, -len(s.comment.text)))
        themes.append(
            {
                "theme": label,
                "share": round(count / total, 4),
                "example": _shorten(example.comment.text),
            }
        )
    return themes


def _questions(scored: list[ScoredComment]) -> list[str]:
    seen: set[str] = set()
    found = []
    for s in sorted(scored, key=lambda s: -s.comment.likes):
        if s.spam or not is_question(s.comment.text):
            continue
        key = re.sub(r"[\W_]+", "", s.comment.text.lower())
        if key and key not in seen:
            seen.add(key)
            found.append(_shorten(s.comment.text))
    return found


_MOODS_KO = {
    "mostly positive": "대체로 긍정적",
    "mostly negative": "대체로 부정적",
    "divided": "엇갈립니다",
    "mostly neutral": "대체로 중립적",
    "mixed": "뒤섞여 있습니다",
}
_WHY = {
    "liked": {"en": "most liked ({n} likes)", "ko": "가장 많은 좋아요 ({n}개)"},
    "positive": {
        "en": "most positive in tone (score {score:+.2f})",
        "ko": "가장 긍정적인 어조 (점수 {score:+.2f})",
    },
    "critical": {
        "en": "most critical in tone (score {score:+.2f})",
        "ko": "가장 비판적인 어조 (점수 {score:+.2f})",
    },
}


def _why(key: str, lang: str, **values: object) -> str:
    return _WHY[key].get(lang, _WHY[key]["en"]).format(**values)


def _notable(scored: list[ScoredComment], lang: str = "en") -> list[dict[str, str]]:
    useful = [s for s in scored if not s.spam and not s.toxic]
    picks: list[tuple[ScoredComment, str]] = []
    if useful:
        liked = max(useful, key=lambda s: s.comment.likes)
        if liked.comment.likes > 0:
            picks.append((liked, _why("liked", lang, n=liked.comment.likes)))
        happiest = max(useful, key=lambda s: s.score)
        if happiest.score >= _THRESHOLD:
            picks.append((happiest, _why("positive", lang, score=happiest.score)))
        harshest = min(useful, key=lambda s: s.score)
        if harshest.score <= -_THRESHOLD:
            picks.append((harshest, _why("critical", lang, score=harshest.score)))
    notable: list[dict[str, str]] = []
    for s, why in picks:
        text = _shorten(s.comment.text)
        if any(n["text"] == text for n in notable):
            continue
        notable.append({"text": text, "why": why})
    return notable


def _mood(shares: dict[str, float]) -> str:
    pos, neu, neg = shares["positive"], shares["neutral"], shares["negative"]
    if pos >= 0.5 and pos >= 2 * neg:
        return "mostly positive"
    if neg >= 0.5 and neg >= 2 * pos:
        return "mostly negative"
    if pos >= 0.25 and neg >= 0.25:
        return "divided"
    return "mostly neutral" if neu >= max(pos, neg) else "mixed"


def _overview(
    total: int,
    shares: dict[str, float],
    themes: list[dict[str, object]],
    questions: int,
    spam: float,
    toxic: float,
    lang: str = "en",
) -> str:
    pos, neu, neg = shares["positive"], shares["neutral"], shares["negative"]
    mood = _mood(shares)
    names = [f"“{t['theme']}”" for t in themes[:3]]
    if lang == "ko":
        verb = _MOODS_KO[mood]
        verb = verb if verb.endswith("니다") else f"{verb}입니다"
        parts = [f"댓글 {total}개의 반응은 {verb}: 긍정 {pos:.0%}, 중립 {neu:.0%}, 부정 {neg:.0%}."]
        if names:
            parts.append(f"시청자들은 {', '.join(names)}에 대해 가장 많이 이야기합니다.")
        if questions:
            parts.append(f"서로 다른 질문이 {questions}개 있습니다.")
        parts.append(f"스팸으로 보이는 댓글은 {spam:.0%}, 악성 댓글은 {toxic:.0%}입니다.")
        return " ".join(parts)
    noun = "comment" if total == 1 else "comments"
    parts = [
        f"Across {total} {noun}, the reaction is {mood}: {pos:.0%} positive, "
        f"{neu:.0%} neutral and {neg:.0%} negative."
    ]
    if names:
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        parts.append(f"Viewers talk most about {listed}.")
    if questions:
        parts.append(f"{questions} distinct question{'s' if questions != 1 else ''} asked.")
    parts.append(f"{spam:.0%} look like spam and {toxic:.0%} are toxic.")
    return " ".join(parts)


def analyze(comments: tuple[Comment, ...], lang: str = "en") -> dict[str, object]:
    """A :class:`CommentsResult` (as a dict) for the comments; the overview and the reasons
    comments are notable are written in ``lang`` (``en`` or ``ko``)."""
    comments = tuple(c for c in comments if c.text.strip())
    if not comments:
        raise FeatureError("no_comments", "the video has no comments to analyse")
    scored = _score_all(comments)
    total = len(scored)
    positive = round(sum(s.score >= _THRESHOLD for s in scored) / total, 4)
    negative = round(sum(s.score <= -_THRESHOLD for s in scored) / total, 4)
    shares = {
        "positive": positive,
        "neutral": round(1 - positive - negative, 4),
        "negative": negative,
    }
    themes = _themes(scored, total)
    questions = _questions(scored)
    spam = round(sum(s.spam for s in scored) / total, 4)
    toxic = round(sum(s.toxic for s in scored) / total, 4)
    result = CommentsResult.model_validate(
        {
            "overview": _overview(total, shares, themes, len(questions), spam, toxic, lang),
            "sentiment": shares,
            "themes": themes,
            "questions": questions[:5],
            "notable": _notable(scored, lang),
            "spam_share": spam,
            "toxic_share": toxic,
            "comment_count": total,
        }
    )
    return result.model_dump()

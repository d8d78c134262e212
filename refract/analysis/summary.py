"""The offline ``summary``: an extractive summary of a video's transcript.

Sentences are ranked by TextRank centrality over their TF-IDF similarity (a sentence that
shares vocabulary with many others states what the video is about), with short fragments
damped. Key points are the best sentences with near-duplicates skipped, in transcript order.
Chapters come from topic shifts: the transcript is cut where the vocabulary of the
sentences before and after a point overlaps least (TextTiling's idea), at least a minimum
time apart, so every chapter starts at the time of a real transcript line. Without a
transcript the title and description are summarised, and chapters are taken from
timestamps written in the description, if any. In Korean the TL;DR frames the quoted
sentence and chapter titles read "<terms> 이야기"; quoted sentences are never translated.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, replace

import numpy as np

from refract.analysis.textstats import (
    TfIdf,
    bigrams,
    detect_language,
    fold_inflections,
    split_sentences,
    textrank,
    tokenize,
)
from refract.core.errors import FeatureError
from refract.core.material import TranscriptLine, VideoMaterial
from refract.core.results import SummaryResult, format_timestamp, parse_timestamp

# Sentence ends: . ! ? and the CJK full stop, full-width ! and ?, then closing quotes.
_PIECE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"')\]]*$")
_PIECE_SPLIT = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"')\]]*\s+")
# Auto-generated captions have no punctuation: cut those runs at a line end past this.
_MAX_UNPUNCTUATED_WORDS = 35
# "0:00 Intro", "1:02:03 - Outro": a time, an optional separator (dashes included), a title.
_DESCRIPTION_CHAPTER = re.compile(r"^\s*((?:\d+:)?\d{1,2}:\d{2})\s*[-\u2013\u2014:|)]?\s*(.+?)\s*$")
_NOISE_LINE = re.compile(r"https?://|www\.|^#|@\w+", re.IGNORECASE)
_MAX_POINT_CHARS = 280


@dataclass(frozen=True)
class Sentence:
    """A sentence, the time of the transcript line it starts in, and its content words."""

    text: str
    start: float | None
    tokens: tuple[str, ...]


def transcript_sentences(lines: tuple[TranscriptLine, ...]) -> list[Sentence]:
    """Sentences re-assembled from caption lines, each timed by the line it starts in."""
    sentences: list[Sentence] = []
    buffer: list[str] = []
    buffer_start = 0.0

    def flush() -> None:
        text = " ".join(buffer).strip()
        if text:
            sentences.append(Sentence(text, buffer_start, tuple(tokenize(text))))
        buffer.clear()

    for line in sorted(lines, key=lambda item: item.start):
        text = " ".join(line.text.split())
        if not text:
            continue
        for piece in _PIECE_SPLIT.split(text):
            if not piece:
                continue
            if not buffer:
                buffer_start = line.start
            buffer.append(piece)
            if _PIECE_END.search(piece):
                flush()
        if sum(len(p.split()) for p in buffer) >= _MAX_UNPUNCTUATED_WORDS:
            flush()
    flush()
    return sentences


def _description_material(video: VideoMaterial) -> tuple[list[Sentence], list[tuple[int, str]]]:
    sentences: list[Sentence] = []
    marks: list[tuple[int, str]] = []
    for raw in video.description.splitlines():
        match = _DESCRIPTION_CHAPTER.match(raw)
        if match:
            with suppress(ValueError):
                marks.append((parse_timestamp(match.group(1)), match.group(2)))
            continue
        if not raw.strip() or _NOISE_LINE.search(raw):
            continue
        sentences.extend(Sentence(s, None, tuple(tokenize(s))) for s in split_sentences(raw))
    if video.title.strip():
        sentences.insert(0, Sentence(video.title.strip(), None, tuple(tokenize(video.title))))
    return sentences, marks


def _shorten(text: str) -> str:
    if len(text) <= _MAX_POINT_CHARS:
        return text
    cut = text[:_MAX_POINT_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;: ") + "…"


def _rank(sentences: list[Sentence], tfidf: TfIdf) -> np.ndarray:
    scores = textrank(tfidf.similarity())
    lengths = np.array([len(s.tokens) for s in sentences], dtype=np.float64)
    # Short fragments ("Right.", "Let's go.") are central to nothing; damp them.
    return scores * np.minimum(1.0, lengths / 6.0)


def _key_points(
    scores: np.ndarray, similarity: np.ndarray, count: int, chapters: list[range]
) -> list[int]:
    chosen: list[int] = []

    def eligible(index: int) -> bool:
        return scores[index] > 0 and all(similarity[index, other] < 0.5 for other in chosen)

    # The best sentence of each chapter first, so that the points cover the whole video
    # rather than the one section whose vocabulary dominates; then the best of the rest.
    for chapter in sorted(chapters, key=lambda c: -max(scores[i] for i in c)):
        if len(chosen) == count:
            break
        pick = next((i for i in sorted(chapter, key=lambda i: -scores[i]) if eligible(i)), None)
        if pick is not None:
            chosen.append(pick)
    for index in np.argsort(-scores, kind="stable"):
        if len(chosen) == count:
            break
        if int(index) not in chosen and eligible(int(index)):
            chosen.append(int(index))
    return sorted(chosen)


def _depths(similarities: list[float]) -> list[float]:
    # TextTiling's depth score: how far a gap dips below the nearest peaks on both sides.
    depths = []
    for i, value in enumerate(similarities):
        left = i
        while left > 0 and similarities[left - 1] >= similarities[left]:
            left -= 1
        right = i
        while right < len(similarities) - 1 and similarities[right + 1] >= similarities[right]:
            right += 1
        depths.append(similarities[left] + similarities[right] - 2 * value)
    return depths


def _boundaries(sentences: list[Sentence], tfidf: TfIdf) -> list[int]:
    """Indices of the sentences that start a chapter (always including 0)."""
    times = [s.start or 0.0 for s in sentences]
    span = times[-1] - times[0]
    count = len(sentences)
    if count < 6 or span < 90:
        return [0]
    target = int(min(8, max(2, round(span / 120)), count // 3))
    min_gap = max(30.0, span / (target * 2))
    window = max(2, min(6, count // (target * 3)))
    candidates = list(range(2, count - 1))
    similarities = []
    for i in candidates:
        left = tfidf.raw[max(0, i - window) : i].sum(axis=0)
        right = tfidf.raw[i : i + window].sum(axis=0)
        denom = float(np.linalg.norm(left) * np.linalg.norm(right))
        similarities.append(float(left @ right) / denom if denom else 0.0)
    ranked = sorted(
        zip(_depths(similarities), similarities, candidates, strict=True),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    starts = [0]
    for _, _, index in ranked:
        if len(starts) == target:
            break
        if times[-1] - times[index] < min_gap:
            continue
        if all(abs(times[index] - times[s]) >= min_gap and abs(index - s) >= 2 for s in starts):
            starts.append(index)
    return sorted(starts)


def _title(terms: list[str], fallback: str, lang: str = "en") -> str:
    if not terms:
        return " ".join(fallback.split()[:6])
    if lang == "ko":
        # "coffee, grind 이야기": the chapter's own words, framed as what it talks about.
        return f"{', '.join(terms)} 이야기"
    words = terms[0].capitalize() if len(terms) == 1 else ", ".join(terms[:-1]).capitalize()
    return words if len(terms) == 1 else f"{words} and {terms[-1]}"


def _tldr(text: str, lang: str) -> str:
    # The sentence is the video's own (in its language); the frame around it is ours.
    return f"이 영상의 핵심을 가장 잘 담은 문장: “{text}”" if lang == "ko" else text


def _chapter_titles(sentences: list[Sentence], starts: list[int], lang: str = "en") -> list[str]:
    ends = [*starts[1:], len(sentences)]
    docs = [
        [t for s in sentences[a:b] for t in s.tokens] for a, b in zip(starts, ends, strict=True)
    ]
    if len(docs) > 1:
        # A word every chapter uses names the video, not the chapter.
        shared = set(docs[0]).intersection(*docs[1:])
        docs = [[t for t in doc if t not in shared] for doc in docs]
    # Chapters as documents: a chapter's title favours words the other chapters lack.
    chapter_tfidf = TfIdf(docs)
    return [
        _title(chapter_tfidf.top_terms([i], k=3), sentences[starts[i]].text, lang)
        for i in range(len(starts))
    ]


def _topics(sentences: list[Sentence], tfidf: TfIdf, limit: int = 6) -> list[str]:
    sentence_counts = Counter(t for s in sentences for t in set(s.tokens))
    pair_counts = Counter(p for s in sentences for p in set(bigrams(s.tokens)))
    topics: list[str] = []
    for term in tfidf.top_terms(k=limit * 2):
        # A word that mostly occurs in one phrase is better shown as that phrase.
        pairs = [(n, p) for p, n in pair_counts.items() if term in p.split() and n >= 2]
        phrase = max(pairs, default=(0, term))
        if phrase[0] >= 0.5 * sentence_counts[term]:
            term = phrase[1]
        taken = {word for topic in topics for word in topic.split()}
        if not taken.intersection(term.split()):
            topics.append(term)
        if len(topics) == limit:
            break
    return topics


def summarize(video: VideoMaterial, lang: str = "en") -> dict[str, object]:
    """A :class:`SummaryResult` (as a dict) for the video's transcript or description.

    The TL;DR and chapter titles are framed in ``lang`` (``en`` or ``ko``); the sentences
    and terms quoted in them stay in the video's own language.
    """
    sentences = transcript_sentences(video.transcript)
    marks: list[tuple[int, str]] = []
    from_transcript = bool(sentences)
    if not from_transcript:
        sentences, marks = _description_material(video)
    sentences = [s for s in sentences if s.text]
    if not sentences:
        raise FeatureError(
            "no_transcript", "the video has no transcript, title or description to summarise"
        )
    folded = fold_inflections([s.tokens for s in sentences])
    sentences = [replace(s, tokens=tuple(t)) for s, t in zip(sentences, folded, strict=True)]
    tfidf = TfIdf([s.tokens for s in sentences])
    scores = _rank(sentences, tfidf)
    starts = _boundaries(sentences, tfidf) if from_transcript else [0]
    groups = [range(a, b) for a, b in zip(starts, [*starts[1:], len(sentences)], strict=True)]
    count = min(len(sentences), max(3, len(starts), min(7, round(len(sentences) / 6))), 7)
    points = _key_points(scores, tfidf.similarity(), count, groups) or [0]
    best = max(points, key=lambda i: scores[i])
    tldr = sentences[best].text
    if len(tldr.split()) < 12 and len(points) > 1:
        runner_up = max((i for i in points if i != best), key=lambda i: scores[i])
        first, second = sorted((best, runner_up))
        tldr = f"{sentences[first].text} {sentences[second].text}"
    if from_transcript:
        titles = _chapter_titles(sentences, starts, lang)
        chapters = [
            {"start": format_timestamp(sentences[i].start or 0.0), "title": title}
            for i, title in zip(starts, titles, strict=True)
        ]
    else:
        chapters = [{"start": format_timestamp(t), "title": title} for t, title in marks]
    text = " ".join(s.text for s in sentences)
    result = SummaryResult.model_validate(
        {
            "tldr": _tldr(_shorten(tldr), lang),
            "key_points": [_shorten(sentences[i].text) for i in points],
            "chapters": chapters,
            "topics": _topics(sentences, tfidf),
            "language": detect_language(text),
        }
    )
    return result.model_dump()

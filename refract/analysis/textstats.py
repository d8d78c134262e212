"""Text statistics shared by the offline summary and comment analyses: language guess,
sentence splitting, tokenising with stopwords, TF-IDF."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

import numpy as np


# Spoken filler is included: transcripts are speech, and "gonna" is not a topic.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EN = """a about above after again against all also am an and any are aren't as at be
because been before being below between both but by can can't cannot could couldn't did
didn't do does doesn't doing don't down during each few for from further had hadn't has
hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his
how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
mustn't my myself no nor not of off on once only or other ought our ours ourselves out over
own same shan't she she'd she'll she's should shouldn't so some such than that that's the
their theirs them themselves then there there's these they they'd they'll they're they've
this those through to too under until up very was wasn't we we'd we'll we're we've were
weren't what what's when when's where where's which while who who's whom why why's with
won't would wouldn't you you'd you'll you're you've your yours yourself yourselves just
like really actually okay ok yeah yes um uh oh gonna wanna gotta get got go going know
think thing things lot kind sort right well now also even still much many one two way want
make made see say said let us will can today video guys really dont im thats youre its
lol also every something anything everything someone really pretty maybe"""

# Distinctive function words, used both to guess the language and as stopwords.
LATIN_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(_EN),
    "es": _words(
        """el la los las un una unos unas y o pero que de del al en con por para
        es son está están este esta estos estas ese esa muy más como lo le les se
        su sus mi mis yo tú él ella nosotros ellos qué porque cuando donde también hay
        fue ser sin sobre ya todo"""
    ),
    "fr": _words(
        """le la les un une des et ou mais que qui de du au aux en dans avec pour par
        est sont ce cet cette ces très plus comme il elle ils elles nous vous je tu
        mon ma mes son sa ses leur pas ne sur aussi c'est j'ai être avoir tout"""
    ),
    "de": _words(
        """der die das den dem des ein eine einen einem und oder aber dass von zu mit
        für auf ist sind war nicht ich du er sie es wir ihr sehr auch wie noch nur
        im am zum zur bei aus nach wenn mein dein sein"""
    ),
    "pt": _words(
        """o a os as um uma uns umas e ou mas que de do da dos das em no na nos nas com
        por para é são está estão este esta muito mais como se seu sua eu você ele ela
        nós eles não também quando onde foi ser"""
    ),
    "it": _words(
        """il lo la i gli le un uno una e o ma che di del della dei delle in nel nella
        con per è sono questo questa molto più come si suo sua io tu lui lei noi loro
        non anche quando dove era essere"""
    ),
}
ALL_STOPWORDS: frozenset[str] = frozenset().union(*LATIN_STOPWORDS.values())
# English's stopword list is long (it doubles as the topic filter), so the language guess
# counts only these core function words for English.
_EN_CORE = _words(
    "the and is are was were this that with have has you your it's i'm don't not of to for "
    "what how why they we be"
)

# Korean particles and endings glued to words; stripped so "커피를" and "커피가" are "커피".
_KO_SUFFIXES = sorted(
    _words(
        """은 는 이 가 을 를 에 에서 에게 의 도 로 으로 와 과 랑 이랑 한테 께서 까지 부터 만
        보다 처럼 이나 나 요 입니다 습니다 했어요 해요 에요 예요 이에요 네요 어요 아요
        했다 이다"""
    ),
    key=len,
    reverse=True,
)
_KO_STOPWORDS = _words(
    """그리고 그런데 하지만 그래서 정말 진짜 너무 이거 그거 저거 이번 오늘 우리 저희 여러분
    영상 그냥 근데 제가 이제"""
)

_SCRIPTS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("hangul", ((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F))),
    ("kana", ((0x3040, 0x30FF),)),
    ("han", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))),
    ("cyrillic", ((0x0400, 0x04FF),)),
    ("arabic", ((0x0600, 0x06FF),)),
    ("thai", ((0x0E00, 0x0E7F),)),
    ("devanagari", ((0x0900, 0x097F),)),
    ("greek", ((0x0370, 0x03FF),)),
)
_SCRIPT_LANGUAGE = {
    "cyrillic": "ru",
    "arabic": "ar",
    "thai": "th",
    "devanagari": "hi",
    "greek": "el",
}

# Sentence ends include the CJK full stop and full-width ! and ?.
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"')\]]*\s+|\n+")
# Words may carry an apostrophe, straight or typographic (U+2019).
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")


def script_of(char: str) -> str:
    """The script a letter belongs to (``latin``, ``hangul``, ``kana``, ``han``, ...)."""
    code = ord(char)
    for name, ranges in _SCRIPTS:
        if any(lo <= code <= hi for lo, hi in ranges):
            return name
    return "latin" if char.isalpha() else "other"


def detect_language(text: str) -> str:
    """A best-effort language code for ``text``; ``und`` when there is nothing to go on.

    Non-Latin scripts decide by their share of the letters: Hangul -> ko, any Kana -> ja
    (Japanese mixes Kana with Han), Han -> zh, Cyrillic -> ru, and so on. Latin text is
    scored by counts of distinctive function words for en/es/fr/de/pt/it; the winner needs
    at least two hits. Unaccented Latin with too few hits is reported as ``en`` only when
    English function words were seen, otherwise ``und``.
    """
    scripts = Counter(script_of(c) for c in text if c.isalpha())
    letters = sum(scripts.values())
    if not letters:
        return "und"
    if scripts["hangul"] / letters >= 0.3:
        return "ko"
    if scripts["kana"] / letters >= 0.05:
        return "ja"
    if scripts["han"] / letters >= 0.3:
        return "zh"
    for script, code in _SCRIPT_LANGUAGE.items():
        if scripts[script] / letters >= 0.3:
            return code
    words = [w.lower() for w in _WORD.findall(text)]
    hits = {lang: sum(1 for w in words if w in stop) for lang, stop in LATIN_STOPWORDS.items()}
    hits["en"] = sum(1 for w in words if w in _EN_CORE)
    ranked = sorted(hits.items(), key=lambda kv: -kv[1])
    (best, best_hits), (_, second_hits) = ranked[0], ranked[1]
    if best_hits >= 2 and best_hits >= 1.2 * second_hits:
        return best
    return "en" if hits["en"] >= 1 else "und"


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: split after ., !, ? (and CJK full stops) or at line breaks."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _strip_korean(token: str) -> str:
    for suffix in _KO_SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 2:
            return token[: -len(suffix)]
    return token


def tokenize(text: str) -> list[str]:
    """Content words of ``text``: lowercased, stopwords dropped, Korean particles stripped,
    Chinese/Japanese runs cut into character bigrams (they have no spaces)."""
    text = unicodedata.normalize("NFKC", text)
    tokens: list[str] = []
    for raw in _WORD.findall(text):
        word = raw.lower().replace("\u2019", "'")
        if _CJK_RUN.fullmatch(word):
            tokens.extend(word[i : i + 2] for i in range(max(1, len(word) - 1)))
            continue
        if script_of(word[0]) == "hangul":
            word = _strip_korean(word)
            if len(word) >= 2 and word not in _KO_STOPWORDS:
                tokens.append(word)
            continue
        if len(word) >= 2 and word not in ALL_STOPWORDS and not word.endswith("'s"):
            tokens.append(word)
    return tokens


def fold_inflections(docs: Sequence[Sequence[str]]) -> list[list[str]]:
    """Documents with English plural and -ing/-ed forms folded onto a root seen elsewhere.

    Only folds onto a word the documents themselves use ("beans" -> "bean" when "bean"
    occurs), which keeps this crude stemmer from inventing words.
    """
    vocabulary = {token for doc in docs for token in doc}

    def root(token: str) -> str:
        for suffix in ("ies", "es", "s", "ing", "ed"):
            if token.endswith(suffix) and len(token) - len(suffix) >= 3:
                stem = token[: -len(suffix)] + ("y" if suffix == "ies" else "")
                if stem in vocabulary and not token.endswith("ss"):
                    return stem
        return token

    mapping = {token: root(token) for token in vocabulary}
    return [[mapping[token] for token in doc] for doc in docs]


def bigrams(tokens: Sequence[str]) -> list[str]:
    """Adjacent pairs of content words, as ``"a b"``."""
    return [f"{a} {b}" for a, b in pairwise(tokens) if a != b]


class TfIdf:
    """TF-IDF vectors of a list of documents (rows are L2-normalised).

    The vocabulary is capped at ``max_terms`` by document frequency so that long
    transcripts stay small in memory.
    """

    def __init__(self, docs: Sequence[Sequence[str]], *, max_terms: int = 2000) -> None:
        df = Counter(term for doc in docs for term in set(doc))
        self.terms = [t for t, _ in df.most_common(max_terms)]
        self.index = {t: i for i, t in enumerate(self.terms)}
        n_docs = len(docs)
        self.idf = np.array(
            [math.log((1 + n_docs) / (1 + df[t])) + 1 for t in self.terms], dtype=np.float32
        )
        matrix = np.zeros((n_docs, len(self.terms)), dtype=np.float32)
        for row, doc in enumerate(docs):
            for term, count in Counter(doc).items():
                col = self.index.get(term)
                if col is not None:
                    matrix[row, col] = count
        self.raw = matrix * self.idf
        norms = np.linalg.norm(self.raw, axis=1, keepdims=True)
        self.matrix = self.raw / np.where(norms == 0, 1, norms)

    def similarity(self) -> np.ndarray:
        """Cosine similarity between every pair of documents."""
        return self.matrix @ self.matrix.T

    def top_terms(self, rows: Iterable[int] | None = None, k: int = 5) -> list[str]:
        """The terms with the most TF-IDF weight over ``rows`` (all rows by default)."""
        block = self.raw if rows is None else self.raw[list(rows)]
        if block.size == 0:
            return []
        weight = block.sum(axis=0)
        order = np.argsort(-weight, kind="stable")
        return [self.terms[i] for i in order[:k] if weight[i] > 0]


def textrank(similarity: np.ndarray, *, damping: float = 0.85, iterations: int = 50) -> np.ndarray:
    """PageRank centrality over a similarity graph (self-loops removed)."""
    n = similarity.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    weights = similarity.astype(np.float64).copy()
    np.fill_diagonal(weights, 0.0)
    out_weight = weights.sum(axis=1, keepdims=True)
    # A sentence sharing no words with any other links to every sentence equally.
    transition = np.where(out_weight > 0, weights / np.where(out_weight == 0, 1, out_weight), 1 / n)
    scores = np.full(n, 1.0 / n)
    for _ in range(iterations):
        updated = (1 - damping) / n + damping * (transition.T @ scores)
        if np.abs(updated - scores).sum() < 1e-6:
            scores = updated
            break
        scores = updated
    return scores

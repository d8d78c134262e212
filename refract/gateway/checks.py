"""Checks a model's result must pass beyond its JSON schema.

A schema cannot say that sentiment shares add up to one or that a chapter starts inside
the video; these functions do. Each returns the result (tidied where the fix is certain,
e.g. shares off by rounding are rescaled) or raises :class:`ResultCheckFailed`, which the
Gemini backend answers by asking once more and then failing the feature with
``invalid_model_output``.
"""

from __future__ import annotations

from refract.core.results import CommentsResult, SummaryResult, parse_timestamp

# Shares may be off by this much (rounding to two decimals, three shares) and be rescaled.
SHARE_TOLERANCE = 0.03


class ResultCheckFailed(ValueError):
    """The result parsed but says something impossible."""


def check_summary(result: SummaryResult, *, duration_s: float | None) -> SummaryResult:
    """Chapters must start inside the video, in order, without repeats."""
    if not result.key_points:
        raise ResultCheckFailed("the summary has no key points")
    starts = [parse_timestamp(chapter.start) for chapter in result.chapters]
    if duration_s:
        outside = [
            c.start for c, s in zip(result.chapters, starts, strict=True) if s > duration_s + 1
        ]
        if outside:
            raise ResultCheckFailed(
                f"chapters {', '.join(outside)} start after the end of the video "
                f"({int(duration_s)} s)"
            )
    if len(set(starts)) != len(starts):
        raise ResultCheckFailed("two chapters start at the same time")
    result.chapters = [
        c for _, c in sorted(zip(starts, result.chapters, strict=True), key=lambda pair: pair[0])
    ]
    return result


def check_comments(result: CommentsResult, *, comment_count: int) -> CommentsResult:
    """Sentiment shares add up to one, themes are given, the count is the real one."""
    sentiment = result.sentiment
    total = sentiment.positive + sentiment.neutral + sentiment.negative
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ResultCheckFailed(f"sentiment shares add up to {total:.2f}, not 1")
    sentiment.positive, sentiment.neutral, sentiment.negative = (
        sentiment.positive / total,
        sentiment.neutral / total,
        sentiment.negative / total,
    )
    if result.spam_share + result.toxic_share > 1 + SHARE_TOLERANCE:
        raise ResultCheckFailed("spam and toxic shares together exceed 1")
    if not result.themes:
        raise ResultCheckFailed("no themes were given")
    result.comment_count = comment_count
    return result

"""Word lists for the offline comment analysis: emoji sentiment, a small multilingual
sentiment list for comments VADER cannot read, spam patterns and a toxic lexicon.

The lists are deliberately small and explicit; each entry is a surface form matched as a
whole word (Latin scripts) or as a substring (Korean and Japanese, whose words carry
particles and endings).
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Emoji whose use in comments is clearly positive or negative. 😭 is left out on purpose:
# viewers use it as often for "so moving" as for sadness.
POSITIVE_EMOJI = frozenset("😀😃😄😁😆😂🤣😊🙂😍🥰😘😎🤩👍👏🙌💯🔥❤♥💕💖💗💓💞😻✨🎉🥳👌💪⭐🌟🫶")
NEGATIVE_EMOJI = frozenset("😡😠🤬👎💩😢😞😔😒🙄😤😩😫🤮🤢💔")

POSITIVE_WORDS: dict[str, frozenset[str]] = {
    "es": _words(
        "encanta genial increíble excelente bueno buena hermoso hermosa gracias mejor amo "
        "bonito bonita perfecto perfecta maravilloso"
    ),
    "fr": _words(
        "génial magnifique excellent super merci adore j'adore parfait beau belle bravo incroyable"
    ),
    "de": _words("toll super wunderbar danke liebe großartig genial schön perfekt klasse"),
    "pt": _words(
        "incrível ótimo ótima lindo linda obrigado obrigada amei adoro perfeito maravilhoso"
    ),
    "it": _words("bellissimo bellissima fantastico grazie adoro perfetto ottimo stupendo bravo"),
}
NEGATIVE_WORDS: dict[str, frozenset[str]] = {
    "es": _words("malo mala horrible terrible odio peor aburrido basura asco"),
    "fr": _words("nul nulle horrible déteste pire ennuyeux mauvais décevant"),
    "de": _words("schlecht schrecklich langweilig hasse mist enttäuschend"),
    "pt": _words("ruim horrível péssimo odeio chato lixo"),
    "it": _words("brutto orribile pessimo odio noioso schifo"),
}
LATIN_NEGATORS = _words("no non nicht kein pas não nunca jamais")

# Substrings (stems) for Korean and Japanese.
POSITIVE_STEMS = _words(
    "최고 좋아 좋다 좋네 좋은 좋았 좋습 감사 고마 고맙 사랑 멋지 멋있 멋져 대박 짱 훌륭 재밌 "
    "재미있 귀엽 귀여 예쁘 예뻐 이쁘 행복 감동 추천 응원 유익 완벽 기대 ㅋㅋ "
    "最高 好き すごい 凄い 素晴らしい ありがとう かわいい 可愛い 感動 神"
)
NEGATIVE_STEMS = _words(
    "싫어 싫다 별로 최악 실망 짜증 지루 노잼 재미없 구리 쓰레기 화나 화가 나쁘 나빠 망했 어이없 "
    "불편 후회 거짓 사기 嫌い 最悪 つまらない ひどい 酷い 残念"
)
# A Korean stem right after these, or followed by 않/없, is negated ("안 좋아", "좋지 않").
KOREAN_NEGATION_BEFORE = ("안 ", "못 ", "안", "못")
KOREAN_NEGATION_AFTER = ("지 않", "지않", "않", "없")

SPAM_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"https?://|www\.|\b[\w-]+\.(?:com|net|org|ly|io|me|gg|xyz|link|shop)/",
        r"check (?:out )?my (?:channel|video|page|profile|music|content)",
        r"subscribe to (?:me|my)",
        r"\bsub ?(?:4|for) ?sub\b",
        r"\bfollow me\b",
        r"\bvisit my\b",
        r"\bmy (?:channel|youtube)\b",
        r"\bfree (?:gift|robux|v-?bucks|iphone|money)\b",
        r"\bgiveaway\b",
        r"\b(?:whatsapp|telegram)\b",
        r"\b(?:crypto|bitcoin|forex)\b",
        r"\bearn \$?\d+",
        r"\bdm me\b",
        r"click (?:the |my )?link",
        r"\bpromo code\b",
        r"제 채널|내 채널|맞구독|구독 부탁|구독해 주세요|놀러 오세요|홍보",
        r"(.)\1{7,}",  # the same character eight times in a row
    )
)

SEVERE_TOXIC = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bkill (?:your ?self|urself)\b",
        r"\bkys\b",
        r"\bgo die\b",
        r"\bfuck (?:you|off)\b",
        r"\bpiece of shit\b",
        r"씨발|시발|ㅅㅂ|병신|ㅂㅅ|개새끼|죽어라|꺼져",
    )
)
# Insults aimed at people; toxic only when the comment's tone is clearly negative too.
INSULTS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:idiot|idiots|stupid|moron|morons|dumb|dumbass|loser|losers|pathetic|clown|"
        r"jerk|ugly)\b",
        r"\bshut up\b",
        r"\bhate (?:you|u|him|her|them)\b",
        r"멍청|바보|닥쳐|한심",
    )
)

QUESTION_START = re.compile(
    r"^\s*(?:what|why|how|when|where|who|which|can|could|does|do|is|are|will|would|should|"
    r"did|anyone|any)\b|¿",
    re.IGNORECASE,
)
KOREAN_QUESTION = re.compile(
    r"(?:나요|까요|어때요|뭐예요|인가요|있나요|할까|는지)\s*[.!~]*\s*$|^\s*(?:왜|어떻게)"
)

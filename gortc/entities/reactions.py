"""Reactions to messages: which text counts as an emoji, and how many kinds
one message may collect."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from gortc.entities.errors import InvalidInput

EMOJI_MAX_CODE_POINTS = 16
# Distinct emojis on one message; more people may add one already there.
MAX_REACTIONS_PER_MESSAGE = 20

_KEYCAP = 0x20E3  # combining enclosing keycap: 1️⃣ is "1", U+FE0F, U+20E3
_KEYCAP_BASES = frozenset("0123456789#*")
# The pieces emoji sequences are built with, besides their symbols.
_JOINERS = frozenset(
    [
        0x200D,  # zero-width joiner: 👩‍💻
        0xFE0E,  # variation selector 15 (text style)
        0xFE0F,  # variation selector 16 (emoji style)
        _KEYCAP,
        *range(0x1F3FB, 0x1F400),  # skin tones (category Sk, unlike the rest of Sk we refuse)
        *range(0xE0020, 0xE0080),  # tags: subdivision flags (🏴 + tags + cancel tag)
    ]
)


@dataclass(frozen=True, slots=True)
class Reaction:
    """One emoji on a message and who put it there, in the order they did."""

    emoji: str
    user_ids: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.user_ids)


def check_emoji(raw: str) -> str:
    """An emoji as reactions take it, else InvalidInput ``invalid_emoji``.

    The rule: 1 to 16 code points, each of them either a pictographic symbol
    (Unicode category So, which holds the emoji, regional indicators
    included), or one of the pieces emoji sequences are built from (the
    zero-width joiner, variation selectors 15 and 16, skin-tone modifiers,
    tag characters, and a digit, ``#`` or ``*`` directly followed by the
    keycap mark U+20E3, with or without U+FE0F between); and at least one
    symbol or keycap among them. So "👍", "👍🏽", "👩‍💻", "🇫🇷", "1️⃣" and "❤️"
    are emojis; "abc", "<b>", " " and "^" are not. The text is kept as sent
    (no normalisation): "❤" and "❤️" are two different reactions.
    """
    code_points = [ord(ch) for ch in raw]
    if not 1 <= len(code_points) <= EMOJI_MAX_CODE_POINTS:
        raise InvalidInput(
            f"a reaction is one emoji, 1 to {EMOJI_MAX_CODE_POINTS} code points long",
            code="invalid_emoji",
        )
    pictographic = False
    for index, point in enumerate(code_points):
        symbol = unicodedata.category(chr(point)) == "So"
        keycap = chr(point) in _KEYCAP_BASES and _keycap_follows(code_points, index)
        if not (symbol or keycap or point in _JOINERS):
            raise InvalidInput(
                f"a reaction must be an emoji; {_shown(point)} is not part of one",
                code="invalid_emoji",
            )
        pictographic = pictographic or symbol or keycap
    if not pictographic:
        raise InvalidInput("a reaction must be an emoji", code="invalid_emoji")
    return raw


def _keycap_follows(code_points: list[int], index: int) -> bool:
    rest = code_points[index + 1 : index + 3]
    return rest[:1] == [_KEYCAP] or rest == [0xFE0F, _KEYCAP]


def _shown(point: int) -> str:
    ch = chr(point)
    return repr(ch) if ch.isprintable() and not ch.isspace() else f"U+{point:04X}"

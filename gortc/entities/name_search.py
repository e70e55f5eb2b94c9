"""Finding people by name: what matches, and in which order.

A search for people must forgive: a part of a name (``lic`` finds alice), a
name typed without its accents (``zoe`` finds Zoë), a letter left out or two
swapped (``alce``, ``alcie`` find alice). Names are compared *folded* (case
and diacritics removed, spaces collapsed), as ``search_key`` stores them in
the trigram index that proposes the candidates; ``score_name`` then decides,
for each candidate, whether and how well it matches:

====  ==========================================  ============================
tier  the folded query is…                        example (query → name)
====  ==========================================  ============================
0     the username                                ``alice`` → alice
1     the start of the username or of a word of   ``ali`` → alice,
      the display name                            ``lid`` → Alice Liddell
2     inside the username or the display name     ``lic`` → alice
3     similar enough to the username, a word of   ``alce`` → alice
      the display name, or the display name
====  ==========================================  ============================

Within a tier, the more similar first. Similarity is the larger of the
trigram Dice coefficient (words padded with a space on each side, as in the
index) and the edit similarity (1 − Damerau–Levenshtein distance / the
longer length). A candidate below ``SIMILARITY_THRESHOLD`` on every field is
no match. Candidates come from the index only when the query shares at least
one padded trigram with the name, so a typo is found when two letters at
the start or end of a word, or three in a row anywhere, are right
(``bbo`` does not find bob: it shares none).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# The longest query taken into account: display names are at most 64 characters.
QUERY_MAX_LENGTH = 64
# Below three characters there is no trigram: the username's prefix is used.
TRIGRAM_MIN_LENGTH = 3
# With the edit similarity this allows one typo in a word of 3 to 5
# letters, two from 6 letters, three from 9 (like the "AUTO" fuzziness of
# Lucene-based engines): "lidel" finds liddell, not ride.
SIMILARITY_THRESHOLD = 0.65
# Edit distances are computed only between strings whose lengths differ by
# at most this: a longer gap cannot reach the threshold on short names, and
# skipping it keeps ranking cheap.
_EDIT_LENGTH_GAP = 3


def fold(text: str) -> str:
    """Lower case, no diacritics, no control characters, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(_folded_char(char) for char in decomposed)
    return " ".join(unicodedata.normalize("NFC", kept).casefold().split())


def _folded_char(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cc" or category[0] == "Z":
        return " "  # controls and every kind of space separate words
    if category == "Mn" or category[0] == "C":
        return ""  # accents, and invisible characters (zero-width spaces…)
    return char


def search_key(text: str) -> str:
    """What the trigram index stores for a name: folded, padded with a space
    at each end so the first and last letters form trigrams of their own
    (``" alice "``); empty for an empty name."""
    folded = fold(text)
    return f" {folded} " if folded else ""


def query_trigrams(folded_query: str) -> list[str]:
    """The padded trigrams of a folded query, each once, in order."""
    return list(dict.fromkeys(_trigrams(f" {folded_query} ")))


@dataclass(frozen=True, slots=True, order=True)
class NameScore:
    """Sorts best first: lower tier, then higher similarity."""

    tier: int
    dissimilarity: float  # 1 - similarity, so that the natural order is best first

    @property
    def similarity(self) -> float:
        return 1.0 - self.dissimilarity


def score_name(folded_query: str, username: str, display_name: str) -> NameScore | None:
    """How ``folded_query`` (see ``fold``) matches a person; None for no match.

    In tiers 0 to 2 the query is part of a name, and the larger the part of
    the shortest such name it covers, the better (``ali`` ranks the user ali
    before alice); in tier 3 the similarity decides."""
    if not folded_query:
        return None
    user = fold(username)
    name = fold(display_name)
    if folded_query == user:
        return NameScore(0, 0.0)
    words = name.split()
    containing = [field for field in (user, name) if folded_query in field]
    if containing:
        coverage = len(folded_query) / min(len(field) for field in containing)
        starts = (
            user.startswith(folded_query)
            or name.startswith(folded_query)
            or any(word.startswith(folded_query) for word in words)
        )
        return NameScore(1 if starts else 2, 1.0 - coverage)
    fields = [user, *words, name] if len(words) > 1 else [user, *words]
    best = max(similarity(folded_query, field) for field in fields if field)
    if best < SIMILARITY_THRESHOLD:
        return None
    return NameScore(3, 1.0 - best)


def similarity(a: str, b: str) -> float:
    """From 0 (nothing alike) to 1 (equal): the larger of the padded-trigram
    Dice coefficient and the edit similarity."""
    if a == b:
        return 1.0
    grams_a = set(_trigrams(f" {a} "))
    grams_b = set(_trigrams(f" {b} "))
    dice = 2 * len(grams_a & grams_b) / (len(grams_a) + len(grams_b))
    if abs(len(a) - len(b)) > _EDIT_LENGTH_GAP:
        return dice
    edit = 1.0 - _edit_distance(a, b) / max(len(a), len(b))
    return max(dice, edit)


def _trigrams(padded: str) -> list[str]:
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


def _edit_distance(a: str, b: str) -> int:
    """Damerau–Levenshtein distance (optimal string alignment): insertions,
    deletions, substitutions and swaps of neighbours cost one each."""
    before_previous: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], before_previous[j - 2] + 1)
        before_previous, previous = previous, current
    return previous[-1]

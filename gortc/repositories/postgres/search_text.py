"""Words, highlights and passages for search on PostgreSQL, cut as SQLite's
FTS5 ``unicode61`` tokenizer cuts them.

A word is a run of letters and digits; everything else separates words
(``budget.txt`` is "budget" and "txt", ``e-mail`` is "e" and "mail").
PostgreSQL's own parser would keep file names, hosts, e-mail addresses and
version numbers whole, so a search for "budget" would not find
"budget.txt"; documents and queries are therefore cut here and handed to
``to_tsvector``/``to_tsquery`` as plain words, and ``gortc_search`` only
folds case and accents. Highlights are made here too, on the original text,
by the same cut and an equivalent fold, so that what is marked is what
matched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+")
_ELLIPSIS = "…"


def words_of(text: str) -> str:
    """The words of ``text``, one space between each: what to_tsvector gets."""
    return " ".join(_WORD.findall(text))


def fold(word: str) -> str:
    """Case and accents removed, as unaccent + lower do in gortc_search."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").casefold()


@dataclass(frozen=True, slots=True)
class Wanted:
    """The words a query looks for, folded: whole words and prefixes."""

    words: frozenset[str]
    prefixes: tuple[str, ...]

    def matches(self, word: str) -> bool:
        folded = fold(word)
        return folded in self.words or any(folded.startswith(p) for p in self.prefixes)


def highlight(text: str, wanted: Wanted, start: str, end: str) -> str:
    """``text`` with every matching word between ``start`` and ``end``."""
    return _marked(text, list(_WORD.finditer(text)), wanted, start, end, 0, len(text))


def passage(text: str, wanted: Wanted, start: str, end: str, *, words: int = 20) -> str:
    """The ``words`` consecutive words holding the most matches (the first
    such run), marked, with an ellipsis where the text goes on; the start of
    the text if nothing matches."""
    found = list(_WORD.finditer(text))
    if not found:
        return text
    hits = [1 if wanted.matches(match.group()) else 0 for match in found]
    best_first, best_count = 0, sum(hits[:words])
    count = best_count
    for first in range(1, max(1, len(found) - words + 1)):
        count += hits[first + words - 1] - hits[first - 1]
        if count > best_count:
            best_first, best_count = first, count
    last = min(len(found), best_first + words) - 1
    begin = 0 if best_first == 0 else found[best_first].start()
    finish = len(text) if last == len(found) - 1 else found[last].end()
    marked = _marked(text, found[best_first : last + 1], wanted, start, end, begin, finish)
    if begin > 0:
        marked = _ELLIPSIS + marked
    if finish < len(text):
        marked += _ELLIPSIS
    return marked


def _marked(
    text: str,
    found: Sequence[re.Match[str]],
    wanted: Wanted,
    start: str,
    end: str,
    begin: int,
    finish: int,
) -> str:
    parts = []
    at = begin
    for match in found:
        if wanted.matches(match.group()):
            parts += [text[at : match.start()], start, match.group(), end]
            at = match.end()
    parts.append(text[at:finish])
    return "".join(parts)

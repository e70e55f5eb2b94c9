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
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice

_WORD = re.compile(r"[^\W_]+")
_ELLIPSIS = "…"
# Past this length an ASCII text's passage is found by one regular
# expression over the text rather than word by word in Python (a page of
# hits in 40 KB texts cost over 100 ms that way).
_LONG_TEXT = 4096
# The hits of a long text a passage may start at (the first ones): enough
# to find a dense run, few enough that a common word costs little.
_CANDIDATES = 32


def words_of(text: str) -> str:
    """The words of ``text``, one space between each: what to_tsvector gets."""
    return " ".join(_WORD.findall(text))


def fold(word: str) -> str:
    """Case and accents removed, as unaccent + lower do in gortc_search."""
    if word.isascii():
        return word.lower()  # (most words: nothing to decompose)
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").casefold()


@dataclass(frozen=True, slots=True)
class Wanted:
    """The words a query looks for, folded: whole words and prefixes."""

    words: frozenset[str]
    prefixes: tuple[str, ...]
    # A passage looks at up to 256 KiB of text, tens of thousands of words
    # but few distinct ones: folding each distinct word once makes the
    # passage of a long text cost milliseconds instead of a third of a second.
    _seen: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def pattern(self) -> re.Pattern[str] | None:
        """Finds, in ASCII text, the words ``matches`` accepts (whole ones,
        or starting with a prefix); None when nothing is wanted."""
        parts = [re.escape(word) for word in sorted(self.words)]
        parts += [re.escape(prefix) + r"[^\W_]*" for prefix in self.prefixes]
        if not parts:
            return None
        return re.compile(r"(?<![^\W_])(?:" + "|".join(parts) + r")(?![^\W_])", re.IGNORECASE)

    def matches(self, word: str) -> bool:
        known = self._seen.get(word)
        if known is None:
            folded = fold(word)
            known = folded in self.words or any(folded.startswith(p) for p in self.prefixes)
            self._seen[word] = known
        return known


def highlight(text: str, wanted: Wanted, start: str, end: str) -> str:
    """``text`` with every matching word between ``start`` and ``end``."""
    return _marked(text, list(_WORD.finditer(text)), wanted, start, end, 0, len(text))


def passage(text: str, wanted: Wanted, start: str, end: str, *, words: int = 20) -> str:
    """The ``words`` consecutive words holding the most matches (the first
    such run), marked, with an ellipsis where the text goes on; the start of
    the text if nothing matches."""
    if len(text) > _LONG_TEXT and text.isascii():
        pattern = wanted.pattern()
        if pattern is not None:
            return _long_passage(text, pattern, wanted, start, end, words)
    # Words as strings first (much cheaper than match objects); match
    # objects only for the chosen run.
    all_words = _WORD.findall(text)
    if not all_words:
        return text
    hits = [1 if wanted.matches(word) else 0 for word in all_words]
    best_first, best_count = 0, sum(hits[:words])
    count = best_count
    for first in range(1, max(1, len(all_words) - words + 1)):
        count += hits[first + words - 1] - hits[first - 1]
        if count > best_count:
            best_first, best_count = first, count
    last = min(len(all_words), best_first + words) - 1
    found = list(islice(_WORD.finditer(text), best_first, last + 1))
    begin = 0 if best_first == 0 else found[0].start()
    finish = len(text) if last == len(all_words) - 1 else found[-1].end()
    marked = _marked(text, found, wanted, start, end, begin, finish)
    if begin > 0:
        marked = _ELLIPSIS + marked
    if finish < len(text):
        marked += _ELLIPSIS
    return marked


def _long_passage(
    text: str, pattern: re.Pattern[str], wanted: Wanted, start: str, end: str, words: int
) -> str:
    """``passage`` for a long ASCII text: the run of ``words`` words that
    begins at a match and holds the most matches (the first such run)."""
    # Only the hits a run from a candidate can reach are looked for.
    hits = [match.start() for match in islice(pattern.finditer(text), _CANDIDATES + words)]
    if not hits:  # (the match was in the name): the start of the text
        finish = list(islice(_WORD.finditer(text), words))[-1].end()
        return text[:finish] + (_ELLIPSIS if finish < len(text) else "")
    best_begin, best_finish, best_count = 0, 0, 0
    for begin in hits[:_CANDIDATES]:
        run = list(islice(_WORD.finditer(text, begin), words))
        finish = run[-1].end()
        count = bisect_left(hits, finish) - bisect_left(hits, begin)
        if count > best_count:
            best_begin, best_finish, best_count = begin, finish, count
    found = list(_WORD.finditer(text, best_begin, best_finish))
    marked = _marked(text, found, wanted, start, end, best_begin, best_finish)
    if best_begin > 0:
        marked = _ELLIPSIS + marked
    if best_finish < len(text):
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

"""A parsed search query (entities/query_syntax.py) as a PostgreSQL tsquery.

Only what is built here reaches SQL: every term the user typed is cut into
words as documents are (search_text.py) and bound as a parameter, folded by
the same text search configuration (``gortc_search``) that built the
documents' tsvectors; the operators (``&&``, ``||``, ``!!``, ``<->``) and
parentheses are ours. Nothing typed can act as tsquery syntax: a word passed
to ``to_tsquery`` is letters and digits only, and quoted by
``quote_literal`` as well.
"""

from __future__ import annotations

from gortc.entities.query_syntax import AnyOf, Query, Term
from gortc.repositories.postgres.search_text import Wanted, fold, words_of

CONFIG = "'gortc_search'::regconfig"
# The weights of the file index's columns (see migrations/0001_schema.sql).
_WEIGHTS = {"name": "A", "body": "B"}


class TsQuery:
    """Builds one tsquery expression, collecting its parameters; the first
    is ``$first``."""

    def __init__(self, first: int) -> None:
        self._first = first
        self.params: list[str] = []
        self._words: set[str] = set()
        self._prefixes: set[str] = set()

    @property
    def wanted(self) -> Wanted:
        """The words to highlight in what the expression finds."""
        return Wanted(frozenset(self._words), tuple(sorted(self._prefixes)))

    def expression(self, query: Query, *, columns: bool = True) -> str:
        """``columns=False`` for a one-column document (messages): the
        parser's ``name:``/``body:`` filters are dropped, their words kept."""
        if isinstance(query, Term):
            return self._term(query, columns)
        if isinstance(query, AnyOf):
            return "(" + " || ".join(self.expression(p, columns=columns) for p in query.parts) + ")"
        included = " && ".join(self.expression(p, columns=columns) for p in query.include)
        if not query.exclude:
            return f"({included})"
        # Excluded words are in no hit: nothing of theirs to highlight.
        shown = (set(self._words), set(self._prefixes))
        excluded = " || ".join(self.expression(p, columns=columns) for p in query.exclude)
        self._words, self._prefixes = shown
        return f"(({included}) && !!({excluded}))"

    def _term(self, term: Term, columns: bool) -> str:
        weight = _WEIGHTS[term.column] if columns and term.column is not None else ""
        words = words_of(term.text).split()
        if not words:
            return "''::tsquery"
        self._words.update(fold(word) for word in words[:-1])
        if term.prefix:
            self._prefixes.add(fold(words[-1]))
        else:
            self._words.add(fold(words[-1]))
        if not term.prefix and not weight:
            return f"phraseto_tsquery({CONFIG}, {self._param(' '.join(words))})"
        lexemes = []
        for index, word in enumerate(words):
            star = "*" if term.prefix and index == len(words) - 1 else ""
            marks = f":{star}{weight}" if star or weight else ""
            lexemes.append(f"to_tsquery({CONFIG}, quote_literal({self._param(word)}) || '{marks}')")
        return "(" + " <-> ".join(lexemes) + ")" if len(lexemes) > 1 else lexemes[0]

    def _param(self, value: str) -> str:
        self.params.append(value)
        return f"${self._first + len(self.params) - 1}::text"

"""A parsed search query (entities/query_syntax.py) as a PostgreSQL tsquery.

Only what is built here reaches SQL: every term the user typed is a bound
parameter, turned into lexemes by the same text search configuration
(``gortc_search``) that built the documents' tsvectors, so a word is cut
and folded the same way on both sides; the operators (``&&``, ``||``,
``!!``, ``<->``) and parentheses are ours. Nothing typed can act as
tsquery syntax: a lexeme passed to ``to_tsquery`` is quoted by
``quote_literal`` first.
"""

from __future__ import annotations

from gortc.entities.query_syntax import AnyOf, Query, Term

CONFIG = "'gortc_search'::regconfig"
# The weights of the file index's columns (see migrations/0001_schema.sql).
_WEIGHTS = {"name": "A", "body": "B"}


class TsQuery:
    """Builds one tsquery expression, collecting its parameters; the first
    is ``$first``."""

    def __init__(self, first: int) -> None:
        self._first = first
        self.params: list[str] = []

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
        excluded = " || ".join(self.expression(p, columns=columns) for p in query.exclude)
        return f"(({included}) && !!({excluded}))"

    def _term(self, term: Term, columns: bool) -> str:
        weight = _WEIGHTS[term.column] if columns and term.column is not None else ""
        if not term.prefix and not weight:
            # The phrase as the document's own parser reads it.
            return f"phraseto_tsquery({CONFIG}, {self._param(term.text)})"
        words = term.text.split()
        lexemes = []
        for index, word in enumerate(words):
            star = "*" if term.prefix and index == len(words) - 1 else ""
            marks = f":{star}{weight}" if star or weight else ""
            lexemes.append(f"to_tsquery({CONFIG}, quote_literal({self._param(word)}) || '{marks}')")
        return "(" + " <-> ".join(lexemes) + ")" if len(lexemes) > 1 else lexemes[0]

    def _param(self, value: str) -> str:
        self.params.append(value)
        return f"${self._first + len(self.params) - 1}::text"

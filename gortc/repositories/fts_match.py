"""A parsed search query as an SQLite FTS5 MATCH expression.

Only what is built here reaches MATCH: every term is a double-quoted FTS5
string (inner quotes doubled), so nothing a user typed can act as FTS5
syntax; the operators, parentheses, ``*`` and column names are ours.
"""

from __future__ import annotations

from gortc.entities.query_syntax import AnyOf, Query, Term

# The FTS5 columns of the file index (see file_index.py), by query column.
_FTS_COLUMNS = {"name": "name", "body": "body"}


def match_expression(query: Query, *, columns: bool = True) -> str:
    """``columns=False`` for a one-column index (messages): the parser's
    ``name:``/``body:`` filters are dropped and their words searched."""
    if isinstance(query, Term):
        return _term(query, columns)
    if isinstance(query, AnyOf):
        return "(" + " OR ".join(match_expression(p, columns=columns) for p in query.parts) + ")"
    expression = (
        "(" + " AND ".join(match_expression(p, columns=columns) for p in query.include) + ")"
    )
    if not query.exclude:
        return expression
    # FTS5's NOT is binary, and a chain of them nests one level per
    # exclusion: ~100 overflow its parser stack. One NOT of an OR stays flat.
    excluded = " OR ".join(match_expression(p, columns=columns) for p in query.exclude)
    return f"({expression} NOT ({excluded}))"


def _term(term: Term, columns: bool) -> str:
    quoted = '"' + term.text.replace('"', '""') + '"'
    if term.prefix:
        quoted += " *"
    if columns and term.column is not None:
        quoted = f"{_FTS_COLUMNS[term.column]} : {quoted}"
    return quoted


def order_score(position: int) -> float:
    """The relevance shown to clients for the hit at ``position`` (0-based,
    in the whole result): 1, 1/2, 1/3 … bm25's own value is not shown: it
    depends on how many documents of the table hold each word, and a table
    holds other people's files (search shards) or other groups' messages,
    so it would tell a user something about data they cannot see."""
    return 1.0 / (position + 1)

"""What people type into a search box, as a tree of words and operators.

Any text parses; nothing in it is ever passed on as syntax. The grammar:

- words: every word must match (AND); ``AND`` between them is allowed too;
- ``"a phrase"``: these words next to each other, in this order; an
  unclosed quote runs to the end;
- ``prefix*``: any word starting so (``"phr"*`` for a phrase's last word);
- ``a OR b``: either (``OR`` in capitals; binds looser than AND, so
  ``a b OR c`` is ``(a b) OR c``);
- ``-word``, ``NOT word``: exclude (a word, phrase or group); a query that
  only excludes matches nothing, as there is nothing to exclude from;
- ``( … )``: grouping, at most 8 deep; unbalanced parentheses are ignored;
- ``name:word``, ``body:word`` (also before a phrase or a group): only in
  the file name or only in the text (``name:`` with nothing after it is the
  word "name"). Any other ``x:y`` is just words.

Everything else (``^``, ``NEAR(``, ``{col}``, lone operators, punctuation,
emoji) carries no meaning: punctuation separates words, and terms without a
letter or digit are dropped. Lower-case ``and``/``or``/``not`` are words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Column = Literal["name", "body"]
MAX_DEPTH = 8

_COLUMNS: dict[str, Column] = {"name": "name", "body": "body"}
# Characters that end a bare word: quotes and parentheses are syntax.
_WORD = re.compile(r'[^\s"()]+')
_COLUMN_PREFIX = re.compile(r"(?i)(name|body):")


@dataclass(frozen=True, slots=True)
class Term:
    """Words that must appear together, in order (one word is a phrase of one)."""

    text: str
    prefix: bool = False
    column: Column | None = None


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every one of ``include`` and none of ``exclude`` (include is never empty)."""

    include: tuple[Query, ...]
    exclude: tuple[Query, ...] = ()


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Query, ...]


Query = Term | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class _Not:
    """An exclusion while parsing; placed into an AllOf's ``exclude``."""

    part: Query


_Node = Query | _Not | None


def parse_query(text: str) -> Query | None:
    """The query tree of ``text``; None when nothing searchable is left."""
    return _Parser(_tokens(_clean(text))).parse()


def has_searchable_character(text: str) -> bool:
    """Whether a term holds something a word index keeps: a letter, a digit
    or a private-use character (what SQLite's unicode61 tokenizer indexes)."""
    return any(char.isalnum() or unicodedata.category(char) == "Co" for char in text)


def _clean(text: str) -> str:
    # Controls become spaces (a NUL would end the query early in SQLite);
    # lone surrogates, from a broken client, cannot be stored or searched.
    return "".join(
        " " if unicodedata.category(char) == "Cc" else char
        for char in text
        if not 0xD800 <= ord(char) <= 0xDFFF
    )


# -- tokens -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "phrase", "(", ")", "AND", "OR", "NOT", "-", "column"]
    text: str = ""
    prefix: bool = False


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char.isspace():
            at += 1
        elif char == "-" and at + 1 < len(text) and not text[at + 1].isspace():
            # At the start of a term: exclude it (a word, phrase or group).
            while at < len(text) and text[at] == "-":
                at += 1
            tokens.append(_Token("-"))
        elif char in "()":
            tokens.append(_Token(char))  # type: ignore[arg-type]
            at += 1
        elif char == '"':
            end = text.find('"', at + 1)
            end = len(text) if end < 0 else end
            phrase = text[at + 1 : end]
            at = end + 1
            prefix = at < len(text) and text[at] == "*"
            while at < len(text) and text[at] == "*":
                at += 1
            tokens.append(_Token("phrase", phrase, prefix))
        else:
            match = _WORD.match(text, at)
            assert match is not None  # char is neither space, quote nor paren
            at = match.end()
            tokens.extend(_word_tokens(match.group()))
    return tokens


def _word_tokens(word: str) -> list[_Token]:
    if word in ("AND", "OR", "NOT"):
        return [_Token(word)]  # type: ignore[arg-type]
    tokens: list[_Token] = []
    column = _COLUMN_PREFIX.match(word)
    if column:
        tokens.append(_Token("column", column.group(1).lower()))
        word = word[column.end() :]
    if word:
        stem = word.rstrip("*")
        tokens.append(_Token("word", stem, prefix=stem != word))
    return tokens


# -- tree -----------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens; every token is consumed, none is
    an error. Depth is bounded, so no input can exhaust the stack."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._at = 0
        self._depth = 0

    def parse(self) -> Query | None:
        parts: list[_Node] = []
        while self._peek() is not None:
            parts.append(self._any_of())
            if self._peek_kind() == ")":  # a stray closing parenthesis
                self._at += 1
        return _positive(_all_of(parts))

    def _peek(self) -> _Token | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _peek_kind(self) -> str | None:
        token = self._peek()
        return None if token is None else token.kind

    def _any_of(self) -> _Node:
        parts = [self._all_of()]
        while self._peek_kind() == "OR":
            self._at += 1
            parts.append(self._all_of())
        kept = [part for part in (_positive(part) for part in parts) if part is not None]
        if len(kept) > 1:
            return AnyOf(tuple(kept))
        if len(parts) == 1:
            return parts[0]  # keep a lone exclusion for the enclosing AllOf
        return kept[0] if kept else None

    def _all_of(self) -> _Node:
        parts: list[_Node] = []
        while (kind := self._peek_kind()) not in (None, ")", "OR"):
            if kind == "AND":
                self._at += 1
                continue
            parts.append(self._unary())
        return _all_of(parts)

    def _unary(self) -> _Node:
        negate = False
        while self._peek_kind() in ("-", "NOT"):
            self._at += 1
            negate = not negate
        if self._peek_kind() in (None, ")", "OR", "AND"):
            return None
        node = self._primary()
        if negate and node is not None:
            return _Not(node) if not isinstance(node, _Not) else node.part
        return node

    def _primary(self) -> _Node:
        token = self._peek()
        assert token is not None
        self._at += 1
        if token.kind == "column":
            while self._peek_kind() == "column":  # "name: body: x": the last one wins
                token = self._tokens[self._at]
                self._at += 1
            if self._peek_kind() in (None, ")", "OR", "AND", "NOT", "-"):
                return _term(token.text, prefix=False, column=None)  # "name:" alone
            return _in_column(self._primary(), _COLUMNS[token.text])
        if token.kind == "(":
            if self._depth >= MAX_DEPTH:
                return None  # deeper parentheses just group at this level
            self._depth += 1
            node = self._any_of()
            self._depth -= 1
            if self._peek_kind() == ")":
                self._at += 1
            return node
        if token.kind in ("word", "phrase"):
            return _term(token.text, prefix=token.prefix, column=None)
        return None  # an operator where a term was due


def _term(text: str, *, prefix: bool, column: Column | None) -> Term | None:
    text = text.strip()
    if not has_searchable_character(text):
        return None
    return Term(text, prefix=prefix, column=column)


def _all_of(parts: list[_Node]) -> _Node:
    include = [part for part in parts if part is not None and not isinstance(part, _Not)]
    exclude = [part.part for part in parts if isinstance(part, _Not)]
    if not include:
        # Only exclusions: kept (as one) for an enclosing AllOf to use.
        if len(exclude) == 1:
            return _Not(exclude[0])
        return _Not(AnyOf(tuple(exclude))) if exclude else None
    if len(include) == 1 and not exclude:
        return include[0]
    return AllOf(tuple(include), tuple(exclude))


def _positive(node: _Node) -> Query | None:
    """The node as a query on its own: an exclusion alone matches nothing."""
    return None if node is None or isinstance(node, _Not) else node


def _in_column(node: _Node, column: Column) -> _Node:
    if node is None:
        return None
    if isinstance(node, _Not):
        return _Not(_restrict(node.part, column))
    return _restrict(node, column)


def _restrict(node: Query, column: Column) -> Query:
    # An inner column filter wins ("name:(a body:b)" keeps b in the body).
    if isinstance(node, Term):
        return node if node.column else Term(node.text, node.prefix, column)
    if isinstance(node, AnyOf):
        return AnyOf(tuple(_restrict(part, column) for part in node.parts))
    return AllOf(
        tuple(_restrict(part, column) for part in node.include),
        tuple(_restrict(part, column) for part in node.exclude),
    )

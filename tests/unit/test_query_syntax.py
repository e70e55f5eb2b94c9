"""The search box syntax: what any text turns into, down to the FTS5 MATCH
expression (the only thing that ever reaches MATCH)."""

from __future__ import annotations

import pytest

from gortc.entities.query_syntax import AllOf, AnyOf, Term, parse_query
from gortc.repositories.fts_match import match_expression


def fts(text: str) -> str | None:
    query = parse_query(text)
    return None if query is None else match_expression(query)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budget", '"budget"'),
        ("quarterly budget", '("quarterly" AND "budget")'),
        ("quarterly AND budget", '("quarterly" AND "budget")'),
        ('"quarterly budget"', '"quarterly budget"'),
        ('"unclosed phrase', '"unclosed phrase"'),
        ("budg*", '"budg" *'),
        ("budg***", '"budg" *'),
        ('"quarterly bud"*', '"quarterly bud" *'),
        ("a OR b", '("a" OR "b")'),
        ("a b OR c", '(("a" AND "b") OR "c")'),
        ("a (b OR c)", '("a" AND ("b" OR "c"))'),
        ("budget -draft", '(("budget") NOT ("draft"))'),
        ("budget NOT draft", '(("budget") NOT ("draft"))'),
        ('budget -"first draft"', '(("budget") NOT ("first draft"))'),
        ("budget -(draft OR old)", '(("budget") NOT (("draft" OR "old")))'),
        ("budget -draft -old", '(("budget") NOT ("draft" OR "old"))'),
        ("NOT NOT budget", '"budget"'),
        ("name:budget", 'name : "budget"'),
        ("Name:budget", 'name : "budget"'),
        ('body:"quarterly budget"', 'body : "quarterly budget"'),
        ("name:(a OR b)", '(name : "a" OR name : "b")'),
        ("name:(a body:b)", '(name : "a" AND body : "b")'),
        ("budget -name:draft", '(("budget") NOT (name : "draft"))'),
        # Not operators: lower case, other columns, FTS5's own syntax.
        ("a or b", '("a" AND "or" AND "b")'),
        ("title:budget", '"title:budget"'),
        ("NEAR(a b)", '("NEAR" AND ("a" AND "b"))'),
        ("^budget", '"^budget"'),
        ("{name}:budget", '"{name}:budget"'),
        ('say "hi""there"', '("say" AND "hi" AND "there")'),
        ('it"s', '("it" AND "s")'),
        ("e-mail", '"e-mail"'),
        ("a)))b", '("a" AND "b")'),
        ("((a OR b", '("a" OR "b")'),
        ("a\x00b", '("a" AND "b")'),
        ("name:", '"name"'),
    ],
)
def test_text_to_match_expression(text: str, expected: str) -> None:
    assert fts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "AND OR NOT",
        "-budget",
        "NOT budget",
        "-a -b",
        "*",
        '"" "',
        "()",
        "😀 🎉",
        "!!! ??? ...",
        "\ud800",
        "OR OR OR",
    ],
)
def test_nothing_searchable_is_no_query(text: str) -> None:
    assert parse_query(text) is None


def test_an_exclusion_inside_or_is_dropped_rather_than_inverted() -> None:
    # FTS5 cannot say "everything but b"; "a OR -b" would need it.
    assert parse_query("a OR -b") == Term("a")
    assert parse_query("-a OR -b") is None


def test_the_tree_shape() -> None:
    assert parse_query("a b -c OR d") == AnyOf(
        (AllOf((Term("a"), Term("b")), (Term("c"),)), Term("d"))
    )
    assert parse_query("name:rep*") == Term("rep", prefix=True, column="name")


def test_deep_nesting_and_long_chains_cannot_exhaust_the_stack() -> None:
    assert fts("(" * 5000 + "a" + ")" * 5000) == '"a"'
    assert fts("- " * 5000 + "a") == '"a"'
    assert fts("NOT " * 5001 + "a b") == '(("b") NOT ("a"))'
    assert fts("name: " * 3000 + "a") == 'name : "a"'
    long = " OR ".join(f"w{i}" for i in range(2000))
    assert fts(long).count(" OR ") == 1999  # type: ignore[union-attr]


def test_quotes_inside_terms_are_doubled() -> None:
    # A bare word may hold no quote (a quote starts a phrase), but the
    # compiler must double any quote a term holds.
    assert match_expression(Term('say "hi"')) == '"say ""hi"""'

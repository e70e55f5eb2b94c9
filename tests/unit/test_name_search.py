"""The rules of people search: folding, search keys, and which names match
a query how well (entities/name_search.py)."""

from __future__ import annotations

import pytest

from gortc.entities.name_search import fold, query_trigrams, score_name, search_key


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Alice", "alice"),
        ("  Zoë   Kravitz ", "zoe kravitz"),
        ("JOSÉ NÚÑEZ", "jose nunez"),
        ("Straße", "strasse"),
        ("ﬁne", "fine"),  # compatibility forms
        ("zero\u200bwidth", "zerowidth"),  # invisible characters go
        ("tab\there\nnewline", "tab here newline"),
        ("東京", "東京"),
        ("", ""),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_search_keys_are_padded_and_trigrams_taken_once() -> None:
    assert search_key("Zoë Kravitz") == " zoe kravitz "
    assert search_key("   ") == ""
    assert query_trigrams("alce") == [" al", "alc", "lce", "ce "]
    assert query_trigrams("aaaa") == [" aa", "aaa", "aa "]


# (query, username, display name, expected tier or None for no match)
CASES = [
    ("alice", "alice", "", 0),
    ("ali", "alice", "", 1),
    ("lid", "alice", "Alice Liddell", 1),  # the start of a word of the display name
    ("alice lid", "someone", "Alice Liddell", 1),
    ("lic", "alice", "", 2),
    ("dell", "alice", "Alice Liddell", 2),
    ("alce", "alice", "", 3),  # one left out
    ("alcie", "alice", "", 3),  # two swapped
    ("alise", "alice", "", 3),  # one wrong
    ("lidel", "x_y", "Alice Liddell", 3),  # two out of seven
    ("lidel", "x_y", "Sally Ride", None),  # two out of five: too many
    ("bbo", "bob", "", 3),  # similar enough, but the index never proposes it
    ("xyz", "alice", "Alice", None),
    ("", "alice", "", None),
]


@pytest.mark.parametrize(("query", "username", "display_name", "tier"), CASES)
def test_score_name(query: str, username: str, display_name: str, tier: int | None) -> None:
    score = score_name(fold(query), username, display_name)
    assert (score.tier if score else None) == tier


def test_within_a_tier_the_closer_name_comes_first() -> None:
    ali = score_name("ali", "ali_", "")
    alice = score_name("ali", "alice", "")
    alicia_beatrix = score_name("ali", "ab", "Alicia Beatrix")
    assert ali is not None and alice is not None and alicia_beatrix is not None
    assert ali < alice < alicia_beatrix
    near = score_name("alce", "alice", "")
    far = score_name("alce", "malice", "")
    assert near is not None and far is not None and near < far
    assert near.similarity == pytest.approx(0.8)

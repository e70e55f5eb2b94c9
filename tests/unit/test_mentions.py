"""When a message mentions someone: a table of (body, mentions alice)."""

from __future__ import annotations

import pytest

from gortc.entities.groups import mentions

CASES = [
    ("@alice look at this", True),
    ("hey @ALICE!", True),  # any case
    ("thanks @alice.", True),  # a full stop ends the sentence, not the name
    ("(@alice)", True),
    ("“@alice”, you there?", True),
    ("@alice,@bob", True),
    ("line one\n@alice", True),
    ("@alicex is someone else", False),
    ("@alice.smith is someone else", False),
    ("@alice-b too", False),
    ("@alice_2 too", False),
    ("write to alice@example.com", False),  # an address
    ("bob@alice.org", False),
    ("x@alice", False),
    ("@@alice", False),
    ("alice without the at", False),
    ("@ alice", False),
]


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_mentions_of_alice(body: str, expected: bool) -> None:
    assert mentions(body, "alice") is expected


def test_names_with_dots_and_dashes_are_whole_names() -> None:
    assert mentions("ping @alice.smith.", "alice.smith")
    assert mentions("ping @Mary-Jo", "mary-jo")
    assert not mentions("ping @alice", "alice.smith")

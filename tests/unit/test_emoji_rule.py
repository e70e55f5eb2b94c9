"""Which text a reaction takes: a table of (text, is an emoji)."""

from __future__ import annotations

import pytest

from gortc.entities.errors import InvalidInput
from gortc.entities.reactions import EMOJI_MAX_CODE_POINTS, check_emoji

CASES = [
    ("👍", True),
    ("👍🏽", True),  # with a skin tone
    ("👩‍💻", True),  # a ZWJ sequence
    ("👨‍👩‍👧‍👦", True),
    ("🇫🇷", True),  # regional indicators
    ("1️⃣", True),  # keycap with U+FE0F
    ("#⃣", True),  # keycap without
    ("❤️", True),
    ("❤", True),  # text-style heart: a symbol all the same
    ("🏴󠁧󠁢󠁳󠁣󠁴󠁿", True),  # a subdivision flag (tags)
    ("☕", True),
    ("👍👍", True),  # two emojis, still within 16 code points
    ("abc", False),
    ("<b>", False),
    ("<script>", False),
    ("a👍", False),
    ("👍 ", False),  # a space is not part of an emoji
    ("", False),
    ("1", False),  # a digit without its keycap mark
    ("#️", False),
    ("^", False),  # category Sk, but no emoji
    ("🏻", False),  # a skin tone alone
    ("\u200d", False),
    ("\ufe0f", False),
    ("→", False),  # an arrow is a math symbol (Sm)
    ("\U0001f600" * (EMOJI_MAX_CODE_POINTS + 1), False),
]


@pytest.mark.parametrize(("text", "is_emoji"), CASES)
def test_the_emoji_rule(text: str, is_emoji: bool) -> None:
    if is_emoji:
        assert check_emoji(text) == text  # kept as sent
    else:
        with pytest.raises(InvalidInput) as refused:
            check_emoji(text)
        assert refused.value.code == "invalid_emoji"
        assert "emoji" in refused.value.message


def test_the_message_names_what_is_not_part_of_an_emoji() -> None:
    with pytest.raises(InvalidInput, match="'<' is not part of one"):
        check_emoji("<b>")
    with pytest.raises(InvalidInput, match=r"U\+0020"):
        check_emoji("👍 ")

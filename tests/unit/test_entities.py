"""The rules of names, addresses and passwords; images; ids; timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gortc.entities.errors import InvalidInput
from gortc.entities.ids import new_id
from gortc.entities.images import sniff_image_type
from gortc.entities.timestamps import from_text, to_text
from gortc.entities.users import (
    check_password,
    normalize_display_name,
    normalize_email,
    normalize_username,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("  BOB_99  ", "bob_99"),
        ("a.b-c_d", "a.b-c_d"),
        ("abc", "abc"),
        ("x" * 32, "x" * 32),
        ("007", "007"),
    ],
)
def test_usernames_accepted(raw: str, expected: str) -> None:
    assert normalize_username(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "ab", "x" * 33, "al ice", "alice!", "alice@example.com", "jürgen", "ali\nce", "дима"],
)
def test_usernames_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_username(raw)

    assert caught.value.code == "invalid_username"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  alice@example.com\n", "alice@example.com"),
        ("Alice.Smith@Example.COM", "Alice.Smith@example.com"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("a@b.c", "a@b.c"),
        ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
    ],
)
def test_emails_accepted(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "alice",
        "alice@",
        "@example.com",
        "alice@localhost",
        "alice@@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        "x" * 65 + "@example.com",
        "a@" + "d" * 250 + ".com",
    ],
)
def test_emails_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email(raw)

    assert caught.value.code == "invalid_email"


@pytest.mark.parametrize("password", ["8 chars!", "x" * 72, "é" * 36, "   spaces   "])
def test_passwords_accepted(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("", "weak_password"),
        ("7 chars", "weak_password"),
        ("x" * 73, "invalid_password"),
        ("é" * 37, "invalid_password"),  # 37 characters, 74 bytes: bcrypt would cut it
    ],
)
def test_passwords_refused(password: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_password(password)

    assert caught.value.code == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice", "Alice"),
        ("  Alice   in \t Wonderland\n", "Alice in Wonderland"),
        ("", ""),
        ("Zoë 🎉", "Zoë 🎉"),
        ("x" * 64, "x" * 64),
        ("x" * 60 + "     " + "y", "x" * 60 + " y"),
    ],
)
def test_display_names_accepted(raw: str, expected: str) -> None:
    assert normalize_display_name(raw) == expected


@pytest.mark.parametrize("raw", ["x" * 65, "bell\x07", "nul\x00", "zero\u200bwidth", "rtl\u202e"])
def test_display_names_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_display_name(raw)

    assert caught.value.code == "invalid_display_name"


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\xff\xdb", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\xff\xff\xff\xffWEBP", "image/webp"),
        (b"", None),
        (b"GIF89a", None),
        (b"\x89PNG", None),
        (b"\xff\xd8", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"RIFF\x00\x00\x00\x00WEB", None),
        (b"<svg/>", None),
        (b"%PDF-1.7", None),
    ],
)
def test_sniff_image_type(data: bytes, media_type: str | None) -> None:
    assert sniff_image_type(data) == media_type


def test_new_id_is_26_crockford_characters() -> None:
    ids = {new_id() for _ in range(100)}

    assert len(ids) == 100
    for value in ids:
        assert len(value) == 26
        assert set(value) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_new_ids_sort_by_time() -> None:
    moments = [0, 1, 999, 1_000, 1_714_564_800_000, 1_714_564_800_001, 2**48 - 1]

    ids = [new_id(ms) for ms in moments]

    assert sorted(ids) == ids
    made_backwards = [new_id(ms) for ms in reversed(moments)]
    assert sorted(made_backwards) == list(reversed(made_backwards))


def test_new_id_without_a_time_uses_now() -> None:
    before = new_id(int(datetime.now(UTC).timestamp() * 1000) - 1)

    current = new_id()

    assert before < current < new_id(int(datetime.now(UTC).timestamp() * 1000) + 1)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1999, 12, 31, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2, minutes=30))),
    ],
)
def test_timestamps_round_trip(moment: datetime) -> None:
    text = to_text(moment)

    assert from_text(text) == moment
    assert from_text(text).tzinfo is UTC
    assert to_text(from_text(text)) == text
    assert len(text) == len("2024-05-01T12:00:00.000000Z")
    assert text.endswith("Z")


def test_timestamps_compare_as_text_like_moments() -> None:
    moments = [
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC) + timedelta(microseconds=step)
        for step in (0, 1, 999_999, 1_000_000, 86_400_000_000)
    ]

    assert sorted(to_text(moment) for moment in reversed(moments)) == [
        to_text(moment) for moment in moments
    ]
    assert to_text(datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-05-01T12:00:00.000000Z"
    )

"""Rules on uploaded files' values: names, text or binary, media types."""

from __future__ import annotations

import codecs

import pytest

from gortc.entities.filenames import MAX_NAME_BYTES, sanitize_filename
from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START
from gortc.entities.media_types import media_type_for
from gortc.entities.text_content import TextSniffer, TextVerdict


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.txt", "report.txt"),
        (None, "untitled"),
        ("", "untitled"),
        ("   ", "untitled"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\alice\\notes.md", "notes.md"),
        ("folder/", "untitled"),
        ("..", "untitled"),
        (".", "untitled"),
        (".bashrc", ".bashrc"),
        ("name. . .", "name"),
        ("  spaced out.txt  ", "spaced out.txt"),
        ("tab\there\nnewline.txt", "tab here newline.txt"),
        ("bell\x07\x00null.txt", "bellnull.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        (f"mark{HIGHLIGHT_START}ed{HIGHLIGHT_END}.txt", "marked.txt"),
        ('what?<is>:this|"*.txt', "what__is__this___.txt"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("LPT1.tar.gz", "_LPT1.tar.gz"),
        ("console.txt", "console.txt"),
        ("Cafe\u0301.txt", "Café.txt"),  # NFC
        ("lone\udcff surrogate.txt", "lone surrogate.txt"),
        ("Übersicht 2024 — Q3 📈.md", "Übersicht 2024 — Q3 📈.md"),
    ],
)
def test_file_names_are_made_safe(raw: str | None, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_long_names_are_cut_to_255_bytes_keeping_the_extension() -> None:
    name = sanitize_filename("é" * 300 + ".txt")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name.endswith(".txt")
    assert name.startswith("é" * 100)
    # A cut never leaves half of a multi-byte character.
    odd = sanitize_filename("a" + "€" * 200)
    assert len(odd.encode("utf-8")) <= MAX_NAME_BYTES
    assert odd == "a" + "€" * 84
    # An extension too long to be one is cut like the rest.
    assert len(sanitize_filename("x." + "y" * 400).encode("utf-8")) == MAX_NAME_BYTES


def sniff(data: bytes, *, chunk: int = 3, keep: int = 1 << 20, legacy: bool = False) -> TextVerdict:
    sniffer = TextSniffer(keep_bytes=keep, legacy_allowed=legacy)
    for start in range(0, len(data), chunk):
        sniffer.feed(data[start : start + chunk])
    return sniffer.verdict()


def test_utf8_text_split_anywhere_is_text() -> None:
    data = "naïve café — 日本語 😀\n".encode()
    for chunk in (1, 2, 3, 5, 1000):
        verdict = sniff(data, chunk=chunk)
        assert verdict.charset == "utf-8"
        assert verdict.text == data.decode()


def test_bom_is_dropped_from_the_text() -> None:
    verdict = sniff(codecs.BOM_UTF8 + b"hello", chunk=1)
    assert verdict.text == "hello"
    assert verdict.charset == "utf-8"


def test_utf16_with_bom_is_text() -> None:
    for encoding in ("utf-16-le", "utf-16-be"):
        bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
        verdict = sniff(bom + "Grüße 😀".encode(encoding), chunk=1)
        assert verdict.charset == "utf-16"
        assert verdict.text == "Grüße 😀"


def test_nul_bytes_or_invalid_utf8_are_binary() -> None:
    assert "NUL" in (sniff(b"text\x00more").reason or "")
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00").charset is None
    invalid = sniff(b"caf\xe9 au lait")
    assert invalid.charset is None
    assert invalid.text is None
    assert "not text" in (invalid.reason or "")
    # A sequence cut off at the very end is invalid too.
    assert sniff("é".encode()[:1], chunk=1).charset is None


def test_legacy_encoding_is_read_for_text_extensions_only() -> None:
    verdict = sniff(b"caf\xe9 \x93quoted\x94", legacy=True)
    assert verdict.charset == "windows-1252"
    assert verdict.text == "café \u201cquoted\u201d"
    assert sniff(b"caf\xe9\x00", legacy=True).charset is None


def test_only_the_start_is_kept_but_all_is_checked() -> None:
    verdict = sniff(("a" * 10 + "é" * 10).encode(), keep=11)
    assert verdict.truncated
    assert verdict.text == "a" * 10  # the é cut in half is dropped
    late_nul = sniff(b"a" * 100 + b"\x00", keep=10)
    assert late_nul.charset is None


def test_empty_and_one_byte_files_are_text() -> None:
    assert sniff(b"").text == ""
    assert sniff(b"x").text == "x"


def test_markers_in_the_text_are_replaced() -> None:
    verdict = sniff(f"a{HIGHLIGHT_START}b{HIGHLIGHT_END}".encode())
    assert verdict.text == "a\ufffdb\ufffd"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.txt", b"hi", "text/plain; charset=utf-8"),
        ("page.html", b"<script>alert(1)</script>", "text/plain; charset=utf-8"),
        ("image.svg", b"<svg onload=alert(1)>", "text/plain; charset=utf-8"),
        ("data.csv", b"a,b", "text/csv; charset=utf-8"),
        ("data.json", b"{}", "application/json; charset=utf-8"),
        ("photo.png", b"\x89PNG\x00", "image/png"),
        ("page.html", b"\x00<html>", "application/octet-stream"),
        ("thing", b"\x00", "application/octet-stream"),
    ],
)
def test_media_types_are_chosen_by_the_server(name: str, data: bytes, expected: str) -> None:
    assert media_type_for(name, sniff(data)) == expected

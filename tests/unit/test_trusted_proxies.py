"""Whom to believe about the client's address behind a reverse proxy."""

from __future__ import annotations

import pytest

from gortc.delivery.proxies import TrustedProxies


def test_nobody_is_trusted_by_default() -> None:
    proxies = TrustedProxies([])
    assert not proxies
    assert proxies.client("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"
    assert proxies.scheme("127.0.0.1", ["https"], "http") == "http"


def test_an_untrusted_peers_forged_header_is_ignored() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client("198.51.100.9", ["203.0.113.7"]) == "198.51.100.9"
    assert proxies.scheme("198.51.100.9", ["https"], "http") == "http"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    # The client forged "1.2.3.4"; the edge proxy appended what it saw
    # (203.0.113.7), an inner proxy 10.1.2.3 appended the edge's address.
    header = ["1.2.3.4, 203.0.113.7, 10.1.2.3"]
    assert proxies.client("127.0.0.1", header) == "203.0.113.7"
    # Several headers are one list, in order.
    assert proxies.client("127.0.0.1", ["1.2.3.4", "203.0.113.7"]) == "203.0.113.7"
    assert proxies.scheme("127.0.0.1", ["https"], "http") == "https"
    # Only trusted hops: the left-most is as far as we can see.
    assert proxies.client("127.0.0.1", ["10.0.0.5, 10.0.0.6"]) == "10.0.0.5"


def test_addresses_are_normalised() -> None:
    proxies = TrustedProxies(["::1", "127.0.0.1"])
    assert proxies.client("::ffff:127.0.0.1", ["203.0.113.7:5123"]) == "203.0.113.7"
    assert proxies.client("::1", ["[2001:db8::1]:443"]) == "2001:db8::1"
    assert proxies.client("::1", ["2001:DB8::0:1"]) == "2001:db8::1"


@pytest.mark.parametrize(
    "header", ["", "unknown", "not an address", "1.2.3.4, garbage", "999.1.1.1", ",,,", "\x00"]
)
def test_a_malformed_header_leaves_the_proxy_as_the_client(header: str) -> None:
    proxies = TrustedProxies(["127.0.0.1"])
    assert proxies.client("127.0.0.1", [header]) == "127.0.0.1"


def test_a_malformed_scheme_is_ignored() -> None:
    proxies = TrustedProxies(["127.0.0.1"])
    for value in ("", "ftp", "https; drop", "javascript"):
        assert proxies.scheme("127.0.0.1", [value], "http") == "http"
    assert proxies.scheme("127.0.0.1", ["HTTPS"], "http") == "https"
    assert proxies.scheme("127.0.0.1", ["http, https"], "http") == "https"


def test_a_bad_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="not-an-ip"):
        TrustedProxies(["not-an-ip"])

"""Who may read /metrics: loopback clients, and holders of metrics.token."""

from __future__ import annotations

import pytest

from gortc.delivery.metrics import may_scrape

TOKEN = "s3cret-scrape-token"


@pytest.mark.parametrize("client", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_needs_no_token(client: str) -> None:
    assert may_scrape(client, "", "")
    assert may_scrape(client, "Bearer wrong", TOKEN)


@pytest.mark.parametrize(
    "client", ["203.0.113.7", "10.0.0.2", "0.0.0.0", "::ffff:10.0.0.2", "", None, "not-an-ip"]
)
def test_others_need_the_token(client: str | None) -> None:
    assert not may_scrape(client, "", TOKEN)
    assert not may_scrape(client, "Bearer wrong", TOKEN)
    assert not may_scrape(client, TOKEN, TOKEN)  # the scheme is part of it
    assert not may_scrape(client, f"Bearer {TOKEN}x", TOKEN)
    assert may_scrape(client, f"Bearer {TOKEN}", TOKEN)


def test_an_empty_token_lets_nobody_in_from_outside() -> None:
    assert not may_scrape("203.0.113.7", "Bearer ", "")
    assert not may_scrape("203.0.113.7", "", "")

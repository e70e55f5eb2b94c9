"""Every failure answers with the API's JSON error body."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.config import Config


async def test_unknown_path_is_a_json_404(client: TestClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status == 404
    body = await response.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"]


async def test_wrong_method_is_a_json_405_with_allow(client: TestClient) -> None:
    response = await client.delete("/api/v1/auth/login")
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_every_answer_carries_a_request_id(client: TestClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] == "trace-42"
    response = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert response.headers["X-Request-Id"] != "bad id\twith spaces"
    assert len(response.headers["X-Request-Id"]) == 16


async def test_unexpected_error_is_a_generic_500_with_a_logged_traceback(
    aiohttp_client, config: Config, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    app = create_app(config)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="gortc.http"):
        response = await client.get("/broken")
    assert response.status == 500
    body = await response.json()
    request_id = response.headers["X-Request-Id"]
    assert body["error"]["code"] == "internal_error"
    assert request_id in body["error"]["message"]
    assert "secret internal detail" not in await response.text()
    assert any(
        getattr(record, "request_id", None) == request_id and record.exc_info
        for record in caplog.records
    )


async def test_access_log_has_one_line_per_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gortc.access"):
        response = await client.get("/healthz")
    records = [record for record in caplog.records if record.name == "gortc.access"]
    assert len(records) == 1
    method, path, status, duration, client_field = records[0].getMessage().split()
    assert (method, path, status) == ("GET", "/healthz", "200")
    assert client_field == "client=127.0.0.1"
    assert duration.endswith("ms")
    # (The log's formatter adds it to the line: rid=... or "request_id".)
    assert records[0].request_id == response.headers["X-Request-Id"]


async def test_health_reports_ok(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"

"""The OpenAPI document describes every route the server answers."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from tests.conftest import bearer, login, register

# Served for the browser, not part of the API.
NOT_API = {
    ("GET", "/"),
    ("HEAD", "/"),
    ("GET", "/static/{filename}"),
    ("HEAD", "/static/{filename}"),
}


async def fetch_document(client: TestClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def test_document_is_valid_openapi_3_1(client: TestClient) -> None:
    document = await fetch_document(client)
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_route_is_documented(client: TestClient) -> None:
    document = await fetch_document(client)
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if info.get("prefix"):
            path = info["prefix"].rstrip("/") + "/{filename}"
        if route.method == "HEAD" or (route.method, path) in NOT_API:
            continue
        served.add((route.method, path))
    assert len(served) >= 20
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented routes the server does not have"


async def test_documented_response_matches_what_the_server_sends(client: TestClient) -> None:
    document = await fetch_document(client)
    await register(client, "alice")
    tokens = await login(client, "alice")
    schema = document["paths"]["/api/v1/auth/login"]["post"]["responses"]["200"]
    ref = schema["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    required = set(document["components"]["schemas"][ref]["required"])
    assert required <= set(tokens)
    me = await (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    user_schema = document["components"]["schemas"]["UserSelf"]
    assert set(user_schema["properties"]) == set(me)

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


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return document["paths"][path][method.lower()]  # type: ignore[no-any-return]


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"] == name)


async def test_the_bounds_the_server_enforces_are_in_the_document(client: TestClient) -> None:
    document = await fetch_document(client)
    tokens = await login(client, (await register(client, "alice"))["username"])
    files = _operation(document, "GET", "/api/v1/files")
    limit = _parameter(files, "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 50)
    assert "400" in files["responses"]
    # What the document says is out of bounds, the server refuses, and the other way round.
    for value, status in (("0", 400), ("201", 400), ("1", 200), ("200", 200)):
        response = await client.get(f"/api/v1/files?limit={value}", headers=bearer(tokens))
        assert response.status == status, value
    schemas = document["components"]["schemas"]
    assert schemas["CreateGroup"]["properties"]["name"]["maxLength"] == 100
    body = schemas["PostMessage"]["properties"]["body"]
    assert body["maxLength"] == 4000 and "pattern" in body
    username = schemas["RegisterRequest"]["properties"]["username"]["pattern"]
    assert "{3,32}" in username
    too_long = await client.post("/api/v1/groups", json={"name": "x" * 101}, headers=bearer(tokens))
    assert (await too_long.json())["error"]["code"] == "invalid_group_name"


async def test_malformed_room_ids_answer_a_documented_400(client: TestClient) -> None:
    document = await fetch_document(client)
    for path, item in document["paths"].items():
        if "{room_id}" in path:
            for operation in item.values():
                assert "400" in operation["responses"], path
                assert "pattern" in _parameter(operation, "room_id")["schema"]
    response = await client.delete("/api/v1/live/whip/not-a-room!")
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_room"


async def test_sdp_bodies_are_described_for_whip_and_whep(client: TestClient) -> None:
    document = await fetch_document(client)
    for method, path in (("POST", "/api/v1/live/whip"), ("POST", "/live/{room_id}/whep")):
        operation = _operation(document, method, path)
        assert set(operation["requestBody"]["content"]) == {"application/sdp"}
        assert set(operation["responses"]["201"]["content"]) == {"application/sdp"}


async def test_405_lists_the_methods_of_the_resource_the_path_names(
    client: TestClient,
) -> None:
    # /api/v1/files/search is also a {file_id} to the router; it has GET only.
    response = await client.options("/api/v1/files/search")
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    response = await client.request("PUT", "/api/v1/files/01M9731BQ4CSP40S70GPC0P7HM")
    assert response.status == 405
    assert response.headers["Allow"] == "DELETE,GET,PATCH"
    document = await fetch_document(client)
    assert {m.upper() for m in document["paths"]["/api/v1/files/{file_id}"]} == {
        "DELETE",
        "GET",
        "PATCH",
    }

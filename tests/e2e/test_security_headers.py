"""Every answer of the server carries the four headers that keep a browser
safe with it: a Content-Security-Policy with frame-ancestors (nothing may
frame us), nosniff, a Referrer-Policy. Every route of the router is asked,
successful or refused, and so are static files, the page, 404s, 405s,
413s, 429s, a 500 and the WebSocket upgrade. (Not covered: the bare
"400 Bad Request" aiohttp itself answers to bytes that are not HTTP, before
any application code runs; see docs/architecture.md, "HTTP conventions".)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy

from gortc.app import create_app
from tests.conftest import ClientFactory, bearer, login, make_config, register

Headers = Mapping[str, str] | CIMultiDictProxy[str]


def missing_protection(headers: Headers) -> list[str]:
    """What an answer lacks of the four; empty when it has them all."""
    problems = []
    policy = headers.get("Content-Security-Policy", "")
    if not policy:
        problems.append("no Content-Security-Policy")
    elif "frame-ancestors 'none'" not in policy:
        problems.append(f"no frame-ancestors in {policy!r}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if not headers.get("Referrer-Policy"):
        problems.append("no Referrer-Policy")
    return problems


def concrete(path: str) -> str:
    """A route template with every {placeholder} filled in."""
    return re.sub(r"\{[^}]+\}", "x0", path)


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def test_every_answer_carries_csp_nosniff_referrer_policy_and_frame_ancestors(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path / "data",
        server={"data_dir": str(tmp_path / "data"), "max_body_bytes": 2048},
        limits={"login_per_ip_per_minute": 2},
    )
    app = create_app(config)
    app.router.add_get("/broken-on-purpose", broken)
    client: TestClient = await aiohttp_client(app)
    await register(client, "alice")
    signed_in = bearer(await login(client, "alice"))

    answers: dict[str, tuple[int, Headers]] = {}

    async def ask(label: str, method: str, path: str, **kwargs: Any) -> int:
        async with client.request(method, path, allow_redirects=False, **kwargs) as response:
            await response.read()
            answers[label] = (response.status, response.headers)
            return response.status

    # Every route the router has, as a signed-in user would call it (with
    # made-up ids: most answer 404 or 400, which is an answer all the same)
    # and as a stranger (401).
    routes = [
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "*"
        and route.resource.canonical != "/broken-on-purpose"
    ]
    assert len(routes) > 60
    for method, template in routes:
        path = concrete(template)
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        await ask(f"{method} {template}", method, path, headers=signed_in, **body)
        await ask(f"{method} {template} (anonymous)", method, path, **body)

    # (The walk signed alice out: POST /api/v1/auth/logout is a route.)
    signed_in = bearer(await login(client, "alice"))
    # The page, its files, and what is not there.
    assert await ask("page", "GET", "/") == 200
    assert await ask("static file", "GET", "/static/app.js") == 200
    assert await ask("missing static file", "GET", "/static/nothing.js") == 404
    assert await ask("unknown path", "GET", "/no/such/thing") == 404
    assert await ask("wrong method", "DELETE", "/api/v1/auth/login") == 405
    assert (
        await ask(
            "too large",
            "POST",
            "/api/v1/groups",
            data=b"{" + b" " * 4096 + b"}",
            headers=signed_in | {"Content-Type": "application/json"},
        )
        == 413
    )
    bad_login = {"json": {"login": "alice", "password": "wrong password"}}
    statuses = [await ask("login refused", "POST", "/api/v1/auth/login", **bad_login)]
    statuses += [await ask("login throttled", "POST", "/api/v1/auth/login", **bad_login)]
    statuses += [await ask("login throttled", "POST", "/api/v1/auth/login", **bad_login)]
    assert statuses[-1] == 429, statuses
    assert await ask("server error", "GET", "/broken-on-purpose") == 500
    assert await ask("metrics", "GET", "/metrics") == 200
    assert await ask("health", "GET", "/healthz") == 200
    assert await ask("OpenAPI", "GET", "/api/openapi.json") == 200

    # The WebSocket upgrade (101).
    socket = await client.ws_connect("/api/v1/ws", headers=signed_in)
    answers["WebSocket upgrade"] = (101, socket._response.headers)
    await socket.close()

    lacking = {
        f"{label} → {status}": problems
        for label, (status, headers) in answers.items()
        if (problems := missing_protection(headers))
    }
    assert lacking == {}
    # The page keeps its own policy (its scripts must load); the rest get
    # the strict one, downloads a sandbox.
    assert "script-src" not in answers["page"][1]["Content-Security-Policy"]
    assert "default-src 'self'" in answers["page"][1]["Content-Security-Policy"]
    assert answers["unknown path"][1]["Content-Security-Policy"].startswith("default-src 'none'")

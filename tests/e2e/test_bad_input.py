"""Every endpoint, handed bad input: the right 4xx, a clear message, and the
database exactly as it was."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import TEST_PASSWORD, bearer, dump_database, login, make_config, register

JSON_ENDPOINTS = [
    ("POST", "/api/v1/auth/register", False),
    ("POST", "/api/v1/auth/login", False),
    ("POST", "/api/v1/auth/refresh", False),
    ("POST", "/api/v1/auth/session", False),
    ("POST", "/api/v1/auth/verify-email", False),
    ("POST", "/api/v1/auth/password-reset", False),
    ("POST", "/api/v1/auth/password-reset/confirm", False),
    ("PATCH", "/api/v1/users/me", True),
    ("POST", "/api/v1/users/me/password", True),
    ("POST", "/api/v1/admin/invites", True),
]
# Endpoints whose fields are all optional accept {}.
ALL_OPTIONAL = {"/api/v1/users/me", "/api/v1/admin/invites"}
AUTHENTICATED = [
    ("POST", "/api/v1/auth/logout"),
    ("DELETE", "/api/v1/auth/session"),
    ("POST", "/api/v1/auth/verify-email/resend"),
    ("GET", "/api/v1/users/me"),
    ("PATCH", "/api/v1/users/me"),
    ("POST", "/api/v1/users/me/password"),
    ("PUT", "/api/v1/users/me/avatar"),
    ("DELETE", "/api/v1/users/me/avatar"),
    ("GET", "/api/v1/users/{alice}"),
    ("GET", "/api/v1/users/{alice}/avatar"),
    ("POST", "/api/v1/admin/invites"),
    ("GET", "/api/v1/admin/invites"),
]


@dataclass
class Case:
    method: str
    path: str
    status: int
    code: str | None = None
    json: Any = None
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    as_user: str | None = "alice"


def generic_cases() -> list[tuple[str, Case]]:
    cases = []
    for method, path, needs_user in JSON_ENDPOINTS:
        user = "alice" if needs_user else None
        json_type = {"Content-Type": "application/json"}
        cases += [
            (
                f"{path} malformed",
                Case(
                    method,
                    path,
                    400,
                    "malformed_json",
                    data=b'{"a": ',
                    headers=json_type,
                    as_user=user,
                ),
            ),
            (
                f"{path} not utf-8",
                Case(
                    method,
                    path,
                    400,
                    "malformed_json",
                    data=b'{"\xff": 1}',
                    headers=json_type,
                    as_user=user,
                ),
            ),
            (f"{path} array", Case(method, path, 400, "invalid_body", json=[1, 2], as_user=user)),
            (
                f"{path} null",
                Case(
                    method,
                    path,
                    400,
                    "invalid_body",
                    json=None,
                    data=b"null",
                    headers=json_type,
                    as_user=user,
                ),
            ),
            (
                f"{path} unknown field",
                Case(method, path, 400, "invalid_body", json={"surprise": 1}, as_user=user),
            ),
            (
                f"{path} wrong types",
                Case(method, path, 400, "invalid_body", json=_wrong_types(path), as_user=user),
            ),
            (
                f"{path} text/plain",
                Case(
                    method,
                    path,
                    415,
                    "unsupported_media_type",
                    data=b"{}",
                    headers={"Content-Type": "text/plain"},
                    as_user=user,
                ),
            ),
            (
                f"{path} oversize",
                Case(
                    method,
                    path,
                    413,
                    "too_large",
                    data=b'{"x": "' + b"a" * 1_100_000 + b'"}',
                    headers=json_type,
                    as_user=user,
                ),
            ),
        ]
        if path not in ALL_OPTIONAL:
            cases.append(
                (
                    f"{path} empty object",
                    Case(method, path, 400, "invalid_body", json={}, as_user=user),
                )
            )
    for method, path in AUTHENTICATED:
        cases.append((f"{method} {path} anonymous", Case(method, path, 401, as_user=None)))
    return cases


def _wrong_types(path: str) -> dict[str, Any]:
    fields = {
        "/api/v1/auth/register": ["username", "email", "password"],
        "/api/v1/auth/login": ["login", "password"],
        "/api/v1/auth/refresh": ["refresh_token"],
        "/api/v1/auth/session": ["login", "password"],
        "/api/v1/auth/verify-email": ["token"],
        "/api/v1/auth/password-reset": ["email"],
        "/api/v1/auth/password-reset/confirm": ["token", "password"],
        "/api/v1/users/me": ["display_name", "email"],
        "/api/v1/users/me/password": ["current_password", "new_password"],
        "/api/v1/admin/invites": ["note"],
    }[path]
    return {name: 12345 for name in fields}


def specific_cases() -> list[tuple[str, Case]]:
    register_path = "/api/v1/auth/register"

    def reg(**body: Any) -> dict[str, Any]:
        return {
            "username": "newbie",
            "email": "newbie@example.com",
            "password": TEST_PASSWORD,
        } | body

    return [
        (
            "register bad username",
            Case(
                "POST",
                register_path,
                400,
                "invalid_username",
                json=reg(username="no spaces"),
                as_user=None,
            ),
        ),
        (
            "register short username",
            Case(
                "POST",
                register_path,
                400,
                "invalid_username",
                json=reg(username="ab"),
                as_user=None,
            ),
        ),
        (
            "register emoji username",
            Case(
                "POST",
                register_path,
                400,
                "invalid_username",
                json=reg(username="ali😀ce"),
                as_user=None,
            ),
        ),
        (
            "register bad email",
            Case(
                "POST",
                register_path,
                400,
                "invalid_email",
                json=reg(email="not-an-email"),
                as_user=None,
            ),
        ),
        (
            "register short password",
            Case(
                "POST",
                register_path,
                400,
                "weak_password",
                json=reg(password="short"),
                as_user=None,
            ),
        ),
        (
            "register long password",
            Case(
                "POST",
                register_path,
                400,
                "invalid_password",
                json=reg(password="x" * 73),
                as_user=None,
            ),
        ),
        (
            "register taken username",
            Case(
                "POST",
                register_path,
                409,
                "username_taken",
                json=reg(username="ALICE"),
                as_user=None,
            ),
        ),
        (
            "register taken email",
            Case(
                "POST",
                register_path,
                409,
                "email_taken",
                json=reg(email="Alice@EXAMPLE.com"),
                as_user=None,
            ),
        ),
        (
            "login wrong password",
            Case(
                "POST",
                "/api/v1/auth/login",
                401,
                "invalid_credentials",
                json={"login": "alice", "password": "wrong one"},
                as_user=None,
            ),
        ),
        (
            "refresh unknown",
            Case(
                "POST",
                "/api/v1/auth/refresh",
                401,
                "invalid_token",
                json={"refresh_token": "made-up"},
                as_user=None,
            ),
        ),
        (
            "verify unknown token",
            Case(
                "POST",
                "/api/v1/auth/verify-email",
                400,
                "invalid_token",
                json={"token": "made-up"},
                as_user=None,
            ),
        ),
        (
            "reset bad email",
            Case(
                "POST",
                "/api/v1/auth/password-reset",
                400,
                "invalid_email",
                json={"email": "nope"},
                as_user=None,
            ),
        ),
        (
            "reset confirm unknown",
            Case(
                "POST",
                "/api/v1/auth/password-reset/confirm",
                400,
                "invalid_token",
                json={"token": "made-up", "password": TEST_PASSWORD},
                as_user=None,
            ),
        ),
        (
            "reset confirm weak",
            Case(
                "POST",
                "/api/v1/auth/password-reset/confirm",
                400,
                "weak_password",
                json={"token": "x", "password": "short"},
                as_user=None,
            ),
        ),
        (
            "profile bad email",
            Case(
                "PATCH",
                "/api/v1/users/me",
                400,
                "invalid_email",
                json={"email": "a@b", "current_password": TEST_PASSWORD},
            ),
        ),
        (
            "profile taken email",
            Case(
                "PATCH",
                "/api/v1/users/me",
                409,
                "email_taken",
                json={"email": "bob@example.com", "current_password": TEST_PASSWORD},
            ),
        ),
        (
            "profile email wrong password",
            Case(
                "PATCH",
                "/api/v1/users/me",
                403,
                "wrong_password",
                json={"email": "new@example.com", "current_password": "wrong one"},
            ),
        ),
        (
            "profile long name",
            Case(
                "PATCH",
                "/api/v1/users/me",
                400,
                "invalid_display_name",
                json={"display_name": "x" * 65},
            ),
        ),
        (
            "profile control chars",
            Case(
                "PATCH",
                "/api/v1/users/me",
                400,
                "invalid_display_name",
                json={"display_name": "bad\u0000name"},
            ),
        ),
        (
            "password wrong current",
            Case(
                "POST",
                "/api/v1/users/me/password",
                403,
                "wrong_password",
                json={"current_password": "wrong one", "new_password": "a fine new one"},
            ),
        ),
        (
            "password weak new",
            Case(
                "POST",
                "/api/v1/users/me/password",
                400,
                "weak_password",
                json={"current_password": TEST_PASSWORD, "new_password": "short"},
            ),
        ),
        (
            "invite by non-admin",
            Case("POST", "/api/v1/admin/invites", 403, "admin_only", json={}, as_user="bob"),
        ),
        (
            "invite list by non-admin",
            Case("GET", "/api/v1/admin/invites", 403, "admin_only", as_user="bob"),
        ),
        (
            "unknown user",
            Case("GET", "/api/v1/users/01NOSUCHUSER0000000000000", 404, "user_not_found"),
        ),
        (
            "avatar unknown user",
            Case("GET", "/api/v1/users/01NOSUCHUSER0000000000000/avatar", 404, "user_not_found"),
        ),
        ("avatar none set", Case("GET", "/api/v1/users/{alice}/avatar", 404, "no_avatar")),
        (
            "avatar as json",
            Case(
                "PUT", "/api/v1/users/me/avatar", 415, "unsupported_media_type", json={"file": "x"}
            ),
        ),
        (
            "avatar empty body",
            Case(
                "PUT",
                "/api/v1/users/me/avatar",
                400,
                "missing_file",
                data=b"",
                headers={"Content-Type": "image/png"},
            ),
        ),
        (
            "avatar not an image",
            Case(
                "PUT",
                "/api/v1/users/me/avatar",
                415,
                "unsupported_image",
                data=b"GIF89a....",
                headers={"Content-Type": "image/gif"},
            ),
        ),
        (
            "avatar form without file",
            Case("PUT", "/api/v1/users/me/avatar", 400, "missing_file", data="form:other"),
        ),
        (
            "avatar garbage multipart",
            Case(
                "PUT",
                "/api/v1/users/me/avatar",
                400,
                None,
                data=b"--xx\r\nnonsense",
                headers={"Content-Type": "multipart/form-data; boundary=xx"},
            ),
        ),
        (
            "avatar too large",
            Case(
                "PUT",
                "/api/v1/users/me/avatar",
                413,
                "avatar_too_large",
                data=b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024),
                headers={"Content-Type": "image/png"},
            ),
        ),
    ]


ALL_CASES = generic_cases() + specific_cases()


@pytest.mark.parametrize("case", [case for _, case in ALL_CASES], ids=[n for n, _ in ALL_CASES])
async def test_bad_input_is_refused_and_changes_nothing(
    aiohttp_client: Any, tmp_path: Path, case: Case
) -> None:
    config = make_config(tmp_path, limits={"enabled": False})
    client: TestClient = await aiohttp_client(create_app(config))
    alice = await register(client, "alice")
    await register(client, "bob")
    sessions = {name: await login(client, name) for name in ("alice", "bob")}
    before = dump_database(config)

    headers = dict(case.headers)
    if case.as_user is not None:
        headers |= bearer(sessions[case.as_user])
    if case.path == "/api/v1/auth/session":
        headers["Origin"] = str(client.make_url("")).rstrip("/")
    path = case.path.replace("{alice}", alice["id"])
    data = case.data
    if data == "form:other":
        data = FormData()
        data.add_field("other", b"x", filename="x.png")
    if isinstance(data, bytes) and len(data) > 1024 * 1024:
        data = io.BytesIO(data)  # aiohttp warns about big raw bodies
    kwargs: dict[str, Any] = {"headers": headers}
    if data is not None:
        kwargs["data"] = data
    elif case.json is not None:
        kwargs["json"] = case.json
    response = await client.request(case.method, path, **kwargs)

    assert response.status == case.status, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    error = (await response.json())["error"]
    assert error["message"] and error["message"][0] != "<"
    if case.code is not None:
        assert error["code"] == case.code
    assert dump_database(config) == before

"""/api/v1/auth: registration, sign-in and out, tokens, mailed links."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session, new_session

from gortc.delivery.auth import SESSION_ID_KEY, authenticate, check_same_origin
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.keys import ACCOUNTS
from gortc.delivery.proxies import client_address
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import (
    LoginRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    TokenRequest,
    UserSelf,
)
from gortc.entities.sessions import IssuedTokens, SessionKind
from gortc.entities.users import User
from gortc.usecases.accounts import ClientInfo


def client_info(request: web.Request) -> ClientInfo:
    return ClientInfo(ip=client_address(request), user_agent=request.headers.get("User-Agent", ""))


def _token_pair(user: User, tokens: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        user=UserSelf.of(user),
    )


async def register(request: web.Request) -> web.Response:
    body = await read_json(request, RegisterRequest)
    user = await request.app[ACCOUNTS].register(
        username=body.username,
        email=body.email,
        password=body.password,
        invite_code=body.invite_code,
        client=client_info(request),
    )
    return json_response(UserSelf.of(user), status=201)


async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginRequest)
    signed_in = await request.app[ACCOUNTS].login(
        login=body.login, password=body.password, client=client_info(request)
    )
    assert signed_in.tokens is not None
    return json_response(_token_pair(signed_in.user, signed_in.tokens))


async def refresh(request: web.Request) -> web.Response:
    body = await read_json(request, RefreshRequest)
    user, tokens = await request.app[ACCOUNTS].refresh(body.refresh_token)
    return json_response(_token_pair(user, tokens))


async def logout(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    accounts = request.app[ACCOUNTS]
    if principal.claims is not None:
        await accounts.logout(principal.claims)
    else:
        await accounts.end_cookie_session(principal.session_id)
        (await get_session(request)).invalidate()
    return web.Response(status=204)


async def open_cookie_session(request: web.Request) -> web.Response:
    # A login form on another site must not sign the browser in (login CSRF).
    check_same_origin(request)
    body = await read_json(request, LoginRequest)
    signed_in = await request.app[ACCOUNTS].login(
        login=body.login,
        password=body.password,
        kind=SessionKind.COOKIE,
        client=client_info(request),
    )
    session = await new_session(request)
    session[SESSION_ID_KEY] = signed_in.session.id
    return json_response(UserSelf.of(signed_in.user))


async def close_cookie_session(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[ACCOUNTS].end_cookie_session(principal.session_id)
    (await get_session(request)).invalidate()
    return web.Response(status=204)


async def verify_email(request: web.Request) -> web.Response:
    body = await read_json(request, TokenRequest)
    user = await request.app[ACCOUNTS].verify_email(body.token)
    return json_response(UserSelf.of(user))


async def resend_verification(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[ACCOUNTS].request_email_verification(principal.user_id)
    return web.Response(status=202)


async def request_password_reset(request: web.Request) -> web.Response:
    body = await read_json(request, PasswordResetRequest)
    await request.app[ACCOUNTS].request_password_reset(body.email, client_info(request))
    return web.Response(status=202)


async def confirm_password_reset(request: web.Request) -> web.Response:
    body = await read_json(request, PasswordResetConfirm)
    await request.app[ACCOUNTS].reset_password(body.token, body.password)
    return web.Response(status=204)


_TAG = "auth"
_AUTH = "/api/v1/auth"

ROUTES = [
    ApiRoute(
        "POST",
        f"{_AUTH}/register",
        register,
        "Create an account",
        _TAG,
        status=201,
        request=RegisterRequest,
        response=UserSelf,
        auth=False,
        errors=(400, 403, 409, 429),
        description="Open, invite-only or closed as the operator configured. "
        "The first account becomes an administrator. A verification mail is sent.",
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/login",
        login,
        "Sign in for tokens",
        _TAG,
        request=LoginRequest,
        response=TokenPair,
        auth=False,
        errors=(400, 401, 403, 429),
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/refresh",
        refresh,
        "Rotate a refresh token",
        _TAG,
        request=RefreshRequest,
        response=TokenPair,
        auth=False,
        errors=(400, 401),
        description="The old refresh token stops working; presenting it again ends "
        "the whole sign-in.",
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/logout",
        logout,
        "Sign out",
        _TAG,
        status=204,
        errors=(401,),
        description="The access token and its refresh tokens stop at once.",
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/session",
        open_cookie_session,
        "Sign in the browser",
        _TAG,
        request=LoginRequest,
        response=UserSelf,
        auth=False,
        errors=(400, 401, 403, 429),
        description="Sets an encrypted, HttpOnly session cookie (the web client).",
    ),
    ApiRoute(
        "DELETE",
        f"{_AUTH}/session",
        close_cookie_session,
        "Sign the browser out",
        _TAG,
        status=204,
        errors=(401, 403),
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/verify-email",
        verify_email,
        "Confirm an email address",
        _TAG,
        request=TokenRequest,
        response=UserSelf,
        auth=False,
        errors=(400,),
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/verify-email/resend",
        resend_verification,
        "Mail a new verification link",
        _TAG,
        status=202,
        errors=(401, 409, 429),
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/password-reset",
        request_password_reset,
        "Mail a password reset link",
        _TAG,
        status=202,
        request=PasswordResetRequest,
        auth=False,
        errors=(400, 429),
        description="Answers 202 whether or not the address has an account.",
    ),
    ApiRoute(
        "POST",
        f"{_AUTH}/password-reset/confirm",
        confirm_password_reset,
        "Set a new password from a mailed token",
        _TAG,
        status=204,
        request=PasswordResetConfirm,
        auth=False,
        errors=(400,),
        description="Every sign-in of the account ends.",
    ),
]

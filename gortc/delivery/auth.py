"""Who is calling: a bearer access token, or the web client's session cookie.

Cookie-authenticated requests that change state must come from one of our
own origins (CSRF protection): browsers always send ``Origin`` on such
requests, and a page on another site cannot forge it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_session import get_session

from gortc.delivery.keys import ACCOUNTS, CONFIG
from gortc.entities.errors import Forbidden, Unauthenticated
from gortc.entities.sessions import AccessClaims

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_ID_KEY = "sid"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    session_id: str
    claims: AccessClaims | None  # None when signed in by cookie


PRINCIPAL = web.RequestKey("principal", Principal)


async def authenticate(request: web.Request, *, allow_query_token: bool = False) -> Principal:
    """The caller; raises Unauthenticated, or Forbidden for a cross-site request."""
    cached = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    accounts = request.app[ACCOUNTS]
    header = request.headers.get("Authorization")
    token = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("send the access token as 'Authorization: Bearer <token>'")
        token = value.strip()
    elif allow_query_token and "access_token" in request.query:
        token = request.query["access_token"]
    if token is not None:
        claims = await accounts.authenticate_token(token)
        principal = Principal(claims.user_id, claims.session_id, claims)
    else:
        session = await get_session(request)
        session_id = session.get(SESSION_ID_KEY)
        if not isinstance(session_id, str):
            raise Unauthenticated("sign in first", code="unauthenticated")
        check_same_origin(request)
        try:
            web_session = await accounts.authenticate_cookie_session(session_id)
        except Unauthenticated:
            session.invalidate()
            raise
        principal = Principal(web_session.user_id, web_session.id, None)
    request[PRINCIPAL] = principal
    return principal


def check_same_origin(request: web.Request) -> None:
    """Refuses a state-changing request whose Origin is not ours."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is None and "Referer" in request.headers:
        parts = urlsplit(request.headers["Referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is None or origin not in allowed_origins(request):
        raise Forbidden(
            "cross-site request refused: the Origin header is missing or not this server",
            code="cross_site_request",
        )


def allowed_origins(request: web.Request) -> set[str]:
    config = request.app[CONFIG]
    origins = {f"{request.scheme}://{request.host}", config.public_url}
    origins.update(config.server.trusted_origins)
    return origins

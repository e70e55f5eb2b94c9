"""The web client's session cookie: encrypted, HttpOnly, SameSite=Lax, and
Secure whenever the browser reached us over HTTPS.

``server.secure_cookies`` forces Secure everywhere; without it the cookie is
still Secure on every request whose scheme is https, whether TLS ended
here or at one of ``server.trusted_proxies`` that said so with
``X-Forwarded-Proto`` (the forwarded middleware has then already given the
request that scheme). An operator who puts gortc behind a TLS proxy and
names it gets Secure cookies without a second setting to forget, and
plain-HTTP development on loopback keeps working.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage


class SessionCookieStorage(EncryptedCookieStorage):
    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        await super().save_session(request, response, session)
        # The base class sets the cookie without looking at the request;
        # the morsel it left on the response is marked here, before the
        # headers are sent.
        morsel = response.cookies.get(self.cookie_name)
        if morsel is not None and request.secure:
            morsel["secure"] = True

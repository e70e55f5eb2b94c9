"""Access tokens as HS256 JWTs (pyjwt)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from gortc.entities.errors import Unauthenticated
from gortc.entities.ids import new_id
from gortc.entities.sessions import AccessClaims


class JwtAccessTokens:
    def __init__(self, key: bytes, ttl_seconds: int, issuer: str = "gortc") -> None:
        self._key = key
        self._ttl = timedelta(seconds=ttl_seconds)
        self._issuer = issuer

    def issue(self, user_id: str, session_id: str, now: datetime) -> tuple[str, AccessClaims]:
        expires_at = (now + self._ttl).replace(microsecond=0)
        claims = AccessClaims(
            user_id=user_id, session_id=session_id, jti=new_id(), expires_at=expires_at
        )
        token = jwt.encode(
            {
                "sub": user_id,
                "sid": session_id,
                "jti": claims.jti,
                "iss": self._issuer,
                "iat": int(now.timestamp()),
                "exp": int(expires_at.timestamp()),
            },
            self._key,
            algorithm="HS256",
        )
        return token, claims

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                issuer=self._issuer,
                options={
                    "require": ["sub", "sid", "jti", "exp"],
                    # Time is judged by our clock alone, below: pyjwt's
                    # checks would use the machine's and refuse tokens
                    # from an instance whose clock runs slightly ahead.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise Unauthenticated("the access token is not valid", code="invalid_token") from None
        expires_at = datetime.fromtimestamp(int(payload["exp"]), UTC)
        if expires_at <= now:
            raise Unauthenticated("the access token has expired", code="token_expired")
        return AccessClaims(
            user_id=str(payload["sub"]),
            session_id=str(payload["sid"]),
            jti=str(payload["jti"]),
            expires_at=expires_at,
        )

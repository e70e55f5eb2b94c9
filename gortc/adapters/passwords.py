"""bcrypt password hashing, off the event loop (a hash takes ~0.2 s at cost 12)."""

from __future__ import annotations

import asyncio

import bcrypt


class BcryptPasswordHasher:
    def __init__(self, rounds: int = 12) -> None:
        self._rounds = rounds

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        digest = await asyncio.to_thread(bcrypt.hashpw, password.encode("utf-8"), salt)
        return digest.decode("ascii")

    async def verify(self, password: str, password_hash: str) -> bool:
        try:
            return await asyncio.to_thread(
                bcrypt.checkpw, password.encode("utf-8"), password_hash.encode("ascii")
            )
        except ValueError:  # a malformed stored hash, or a password over 72 bytes
            return False

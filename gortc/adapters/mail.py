"""Outgoing mail: SMTP through aiosmtplib, or files in an outbox folder
when no server is set."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from gortc.entities.errors import Unavailable
from gortc.usecases.ports import MailMessage

log = logging.getLogger("gortc.mail")


class OutboxMailer:
    """For a server with no SMTP configured: each mail is written as a file
    (``<data_dir>/outbox/*.eml``, readable by the server's user only) and the
    log names that file, so that the operator can still pass a reset link or
    a verification code to its owner. The mail itself never goes to the log:
    its single-use token would then sit in every copy of the log (journald,
    a log collector) that people other than the operator may read."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def send(self, message: MailMessage) -> None:
        path = await asyncio.to_thread(self._write, message)
        log.info(
            "mail to %s (%r) written to %s: no SMTP server is configured",
            message.to,
            message.subject,
            path,
        )

    def _write(self, message: MailMessage) -> Path:
        email = _email(message, sender="gortc")
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Sorts by time (to the microsecond); the random part keeps apart two
        # mails of one microsecond.
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}.eml"
        path = self._folder / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(email.as_bytes())
        return path


def _email(message: MailMessage, *, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email.set_content(message.body)
    return email


class SmtpMailer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        security: str = "starttls",
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username or None
        self._password = password or None
        self._security = security
        self._timeout = timeout

    async def send(self, message: MailMessage) -> None:
        email = _email(message, sender=self._sender)
        # Imported on first use: most servers never send mail by SMTP.
        import aiosmtplib

        try:
            await aiosmtplib.send(
                email,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._security == "tls",
                start_tls=self._security == "starttls",
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Unavailable(f"the mail server refused or failed: {exc}") from exc

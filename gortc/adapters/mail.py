"""Outgoing mail: SMTP through aiosmtplib, or the log when no server is set."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from gortc.entities.errors import Unavailable
from gortc.usecases.ports import MailMessage

log = logging.getLogger("gortc.mail")


class LogMailer:
    """For a server with no SMTP configured: the operator reads the log and
    can still pass a reset link to its owner."""

    async def send(self, message: MailMessage) -> None:
        log.info(
            "mail (no SMTP server configured) to=%s subject=%r\n%s",
            message.to,
            message.subject,
            message.body,
        )


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
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.body)
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

"""Mail through a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller

from gortc.adapters.mail import SmtpMailer
from gortc.app import create_app
from gortc.entities.errors import Unavailable
from gortc.usecases.ports import MailMessage
from tests.conftest import TEST_PASSWORD, ClientFactory, bearer, login, make_config, register

NEW_PASSWORD = "a brand new passphrase"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the server runs in its own thread
        self._messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [message for _, message in self._messages]

    @property
    def recipients(self) -> list[list[str]]:
        with self._lock:
            return [rcpt for rcpt, _ in self._messages]


class SmtpServer:
    def __init__(self, port: int, inbox: Inbox) -> None:
        self.port = port
        self.inbox = inbox


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, inbox)
    finally:
        controller.stop()


def body_of(message: EmailMessage) -> str:
    text = message.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")  # SMTP carries CRLF line ends


def code_in(message: EmailMessage) -> str:
    """The token following "or use this code:" in a mail from gortc."""
    marker = "or use this code:"
    body = body_of(message)
    assert marker in body, body
    code = body.split(marker, 1)[1].split()[0]
    assert len(code) >= 32
    return code


# -- the adapter --------------------------------------------------------------


async def test_the_smtp_mailer_delivers_a_message(smtp: SmtpServer) -> None:
    mailer = SmtpMailer(
        host="127.0.0.1", port=smtp.port, sender="gortc <noreply@example.com>", security="none"
    )

    await mailer.send(
        MailMessage(
            to="bob@example.com",
            subject="Hello from the tests",
            body="First line\n\nsecond paragraph, with ünïcødé\n",
        )
    )

    assert smtp.inbox.recipients == [["bob@example.com"]]
    [message] = smtp.inbox.messages
    assert message["To"] == "bob@example.com"
    assert message["From"] == "gortc <noreply@example.com>"
    assert message["Subject"] == "Hello from the tests"
    assert body_of(message) == "First line\n\nsecond paragraph, with ünïcødé\n"


async def test_a_mail_server_that_is_not_listening_is_unavailable() -> None:
    mailer = SmtpMailer(
        host="127.0.0.1", port=free_port(), sender="noreply@example.com", security="none"
    )

    with pytest.raises(Unavailable):
        await mailer.send(MailMessage(to="bob@example.com", subject="lost", body="nobody"))


# -- mailed links through the HTTP API -----------------------------------------


@pytest.fixture
async def mail_client(
    aiohttp_client: ClientFactory, tmp_path: Path, smtp: SmtpServer
) -> TestClient:
    config = make_config(
        tmp_path / "data",
        mail={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "sender": "gortc <noreply@example.com>",
        },
    )
    return await aiohttp_client(create_app(config))


async def test_registration_mails_a_code_that_verifies_the_address(
    mail_client: TestClient, smtp: SmtpServer
) -> None:
    await register(mail_client, "alice")

    [mail] = smtp.inbox.messages
    assert mail["To"] == "alice@example.com"
    assert "confirm" in mail["Subject"].lower()
    tokens = await login(mail_client, "alice")
    me = await mail_client.get("/api/v1/users/me", headers=bearer(tokens))
    assert (await me.json())["email_verified"] is False

    response = await mail_client.post("/api/v1/auth/verify-email", json={"token": code_in(mail)})

    assert response.status == 200, await response.text()
    assert (await response.json())["email_verified"] is True
    me = await mail_client.get("/api/v1/users/me", headers=bearer(tokens))
    assert (await me.json())["email_verified"] is True
    again = await mail_client.post("/api/v1/auth/verify-email", json={"token": code_in(mail)})
    assert again.status == 400


async def test_a_mailed_reset_code_sets_a_new_password_once(
    mail_client: TestClient, smtp: SmtpServer
) -> None:
    await register(mail_client, "alice")
    old_tokens = await login(mail_client, "alice")
    mails_before = len(smtp.inbox.messages)

    response = await mail_client.post(
        "/api/v1/auth/password-reset", json={"email": "alice@example.com"}
    )

    assert response.status == 202
    assert len(smtp.inbox.messages) == mails_before + 1
    mail = smtp.inbox.messages[-1]
    assert mail["To"] == "alice@example.com"
    assert "reset" in mail["Subject"].lower()
    code = code_in(mail)

    confirm = await mail_client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": code, "password": NEW_PASSWORD}
    )
    assert confirm.status == 204, await confirm.text()

    await login(mail_client, "alice", NEW_PASSWORD)
    old = await mail_client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": TEST_PASSWORD}
    )
    assert old.status == 401
    # Every earlier sign-in has ended.
    me = await mail_client.get("/api/v1/users/me", headers=bearer(old_tokens))
    assert me.status == 401

    reused = await mail_client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": code, "password": "yet another passphrase"},
    )
    assert reused.status == 400
    assert (await reused.json())["error"]["code"] == "invalid_token"
    await login(mail_client, "alice", NEW_PASSWORD)


async def test_a_reset_for_an_unknown_address_answers_the_same_and_mails_nobody(
    mail_client: TestClient, smtp: SmtpServer
) -> None:
    await register(mail_client, "alice")
    mails_before = len(smtp.inbox.messages)

    response = await mail_client.post(
        "/api/v1/auth/password-reset", json={"email": "nobody@example.com"}
    )

    assert response.status == 202
    assert len(smtp.inbox.messages) == mails_before

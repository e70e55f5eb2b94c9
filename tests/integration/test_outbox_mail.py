"""Without an SMTP server, mails are files in <data_dir>/outbox that only
the server's user can read; the log names the file, never the mail's
single-use code."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from gortc.adapters.mail import OutboxMailer
from gortc.usecases.ports import MailMessage
from tests.integration.test_smtp import code_in
from tests.mail_outbox import outbox_mails

CODE = "Zq3-very-secret-single-use-code-0123456789abcdef"


async def test_a_mail_is_a_private_file_that_the_log_names_without_its_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = OutboxMailer(tmp_path / "outbox")
    body = f"Confirm your address.\n\nor use this code: {CODE}\n"
    with caplog.at_level(logging.INFO, logger="gortc.mail"):
        await mailer.send(MailMessage("ann@example.com", "Confirm your email", body))
        await mailer.send(MailMessage("bob@example.com", "Reset your password", body))
    mails = outbox_mails(tmp_path)
    assert [mail["To"] for mail in mails] == ["ann@example.com", "bob@example.com"]
    assert mails[0]["Subject"] == "Confirm your email"
    assert code_in(mails[0]) == CODE
    files = sorted((tmp_path / "outbox").iterdir())
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o600, 0o600]
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert str(files[0]) in lines[0] and "ann@example.com" in lines[0]
    assert CODE not in caplog.text

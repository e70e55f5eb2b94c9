"""The mails a server without SMTP wrote to <data_dir>/outbox."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from gortc.app import OUTBOX_FOLDER


def outbox_mails(data_dir: Path) -> list[EmailMessage]:
    """Every mail in the outbox, oldest first (the file names sort by time)."""
    folder = data_dir / OUTBOX_FOLDER
    mails = []
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(mail, EmailMessage)
        mails.append(mail)
    return mails

"""The sandbox email backend: the embedded default's ESP.

Mail that belongs to a workspace (its metadata names one) is kept in the database and
shown in that workspace's Sandbox inbox. Mail that belongs to no workspace, such as a
password reset, is written to the process's output, where `make run` shows it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from email.utils import formataddr, parseaddr

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from .models import SandboxMessage, Workspace


def _html_body(message: EmailMessage) -> str:
    if message.content_subtype == "html":
        return str(message.body)
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype == "text/html":
            return str(content)
    return ""


def _workspace_of(message: EmailMessage) -> Workspace | None:
    metadata = getattr(message, "metadata", None) or {}
    public_id = metadata.get("workspace_id")
    if not public_id:
        return None
    return Workspace.objects.filter(public_id=public_id).first()


def _addresses(values: Sequence[str]) -> list[str]:
    return [formataddr(parseaddr(value)) for value in values]


class SandboxEmailBackend(BaseEmailBackend):
    def __init__(self, fail_silently: bool = False, stream=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.stream = stream or sys.stdout

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            workspace = _workspace_of(message)
            if workspace is None:
                self._print(message)
            else:
                self._store(workspace, message)
            sent += 1
        return sent

    def _store(self, workspace: Workspace, message: EmailMessage) -> None:
        SandboxMessage.objects.create(
            workspace=workspace,
            from_email=message.from_email,
            to=_addresses(message.to),
            cc=_addresses(message.cc),
            bcc=_addresses(message.bcc),
            reply_to=_addresses(message.reply_to),
            subject=message.subject,
            text_body=str(message.body) if message.content_subtype != "html" else "",
            html_body=_html_body(message),
            headers={key: str(value) for key, value in message.extra_headers.items()},
            metadata=dict(getattr(message, "metadata", None) or {}),
            tags=list(getattr(message, "tags", None) or []),
        )

    def _print(self, message: EmailMessage) -> None:
        self.stream.write(
            f"--- sandbox email (no workspace) ---\nFrom: {message.from_email}\n"
            f"To: {', '.join(message.to)}\nSubject: {message.subject}\n\n{message.body}\n"
            "--- end ---\n"
        )
        self.stream.flush()

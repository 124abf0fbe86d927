"""Mail that Mailpath itself sends on a workspace's behalf (invitations, test sends)."""

from __future__ import annotations

from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from .models import Workspace


def workspace_metadata(workspace: Workspace, **extra: str) -> dict[str, str]:
    """Anymail metadata that lets the sandbox, webhooks and the ESP find the tenant."""
    return {"workspace_id": str(workspace.public_id), **extra}


def workspace_sender(workspace: Workspace) -> str:
    """The workspace's sender name and address, or its name on the platform's address."""
    address = workspace.default_from_email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return formataddr((workspace.default_from_name or workspace.name, address))


def send_workspace_email(
    *,
    workspace: Workspace,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    reply_to: list[str] | None = None,
    from_email: str | None = None,
) -> None:
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=to,
        reply_to=reply_to or [],
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.metadata = workspace_metadata(workspace)  # read by Anymail backends and the sandbox
    message.send()

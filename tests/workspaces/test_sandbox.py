"""The sandbox email backend and the Sandbox inbox page."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.mail import EmailMultiAlternatives, get_connection
from django.urls import reverse
from django.utils import timezone

from tests.factories import SandboxMessageFactory
from workspaces.mail import workspace_metadata
from workspaces.models import SandboxMessage
from workspaces.services import prune_sandbox_messages

pytestmark = pytest.mark.django_db
BACKEND = "workspaces.sandbox.SandboxEmailBackend"


def _message(**kwargs):
    message = EmailMultiAlternatives(
        subject="Spring sale",
        body="Plain text",
        from_email="Acme <hello@acme.example>",
        to=["Ann <ann@example.com>"],
        **kwargs,
    )
    message.attach_alternative("<h1>Spring sale</h1>", "text/html")
    return message


def test_workspace_mail_is_kept_for_that_workspaces_inbox(workspace_a, workspace_b):
    message = _message()
    message.metadata = workspace_metadata(workspace_a, message_id="m-1")
    message.tags = ["broadcast"]
    assert get_connection(BACKEND).send_messages([message]) == 1
    stored = SandboxMessage.objects.for_workspace(workspace_a).get()
    assert stored.subject == "Spring sale"
    assert stored.to == ["Ann <ann@example.com>"]
    assert stored.html_body == "<h1>Spring sale</h1>"
    assert stored.text_body == "Plain text"
    assert stored.metadata["message_id"] == "m-1"
    assert stored.tags == ["broadcast"]
    assert not SandboxMessage.objects.for_workspace(workspace_b).exists()


def test_mail_of_no_workspace_is_printed_not_stored():
    stream = io.StringIO()
    get_connection(BACKEND, stream=stream).send_messages([_message()])
    assert "Subject: Spring sale" in stream.getvalue()
    assert SandboxMessage.all_workspaces.count() == 0


def test_the_inbox_lists_messages_newest_first(
    admin_client_a, workspace_a, django_assert_max_num_queries
):
    SandboxMessageFactory(workspace=workspace_a, subject="Older")
    SandboxMessageFactory(workspace=workspace_a, subject="Newer")
    with django_assert_max_num_queries(8):
        response = admin_client_a.get(reverse("sandbox_inbox", args=[workspace_a.slug]))
    body = response.content.decode()
    assert body.index("Newer") < body.index("Older")


def test_an_empty_inbox_says_how_mail_gets_there(admin_client_a, workspace_a):
    response = admin_client_a.get(reverse("sandbox_inbox", args=[workspace_a.slug]))
    assert "No email yet" in response.content.decode()


def test_a_message_renders_its_html_inside_a_sandboxed_frame(admin_client_a, workspace_a):
    message = SandboxMessageFactory(
        workspace=workspace_a, html_body='<p>Hi</p><script>alert("x")</script>'
    )
    response = admin_client_a.get(
        reverse("sandbox_message", args=[workspace_a.slug, message.public_id])
    )
    body = response.content.decode()
    assert "<iframe" in body and " sandbox " in body
    assert "<script>alert" not in body  # escaped into srcdoc, never live in the page


def test_old_sandbox_mail_is_pruned(workspace_a, settings):
    settings.SANDBOX_RETENTION_DAYS = 30
    with time_machine.travel(timezone.now() - timedelta(days=31)):
        SandboxMessageFactory(workspace=workspace_a, subject="old")
    SandboxMessageFactory(workspace=workspace_a, subject="new")
    assert prune_sandbox_messages() == 1
    assert [m.subject for m in SandboxMessage.objects.for_workspace(workspace_a)] == ["new"]


def test_only_admins_open_the_sandbox_because_it_holds_live_invitation_links(
    viewer_client, editor_client, workspace_a
):
    message = SandboxMessageFactory(workspace=workspace_a)
    for client in (viewer_client, editor_client):
        assert client.get(reverse("sandbox_inbox", args=[workspace_a.slug])).status_code == 403
        url = reverse("sandbox_message", args=[workspace_a.slug, message.public_id])
        assert client.get(url).status_code == 403

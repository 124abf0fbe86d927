"""Inviting people by email and accepting through a signed, expiring link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory
from workspaces import services
from workspaces.models import Invitation, Membership, Role, SandboxMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite(django_capture_on_commit_callbacks):
    """POST the invite form and run the on-commit hook that sends the email."""

    def post(client, workspace, email="new@example.com", role="editor"):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("member_invite", args=[workspace.slug]), {"email": email, "role": role}
            )

    return post


def _link_path(message) -> str:
    return re.search(r"/invitations/[^/\s]+/", message.body).group(0)


def test_an_admin_invites_by_email_and_the_invitee_joins_by_signing_up(
    admin_client_a, workspace_a, client, invite
):
    response = invite(admin_client_a, workspace_a, email="New@Example.com")
    assert response.status_code == 200
    assert "Invitation sent to new@example.com" in response.content.decode()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    assert workspace_a.name in mail.outbox[0].subject

    page = client.get(_link_path(mail.outbox[0]))
    assert "Create your account" in page.content.decode()
    signup_url = page.context["signup_url"]
    response = client.post(
        signup_url, {"full_name": "New Person", "password": "a-good-long-password-1"}
    )
    assert response.url == reverse("dashboard", args=[workspace_a.slug])
    membership = Membership.objects.get(workspace=workspace_a, user__email="new@example.com")
    assert membership.role == Role.EDITOR
    assert Invitation.objects.for_workspace(workspace_a).get().accepted_at is not None


def test_an_existing_user_accepts_after_logging_in(admin_client_a, workspace_a, client, invite):
    user = UserFactory(email="known@example.com")
    invite(admin_client_a, workspace_a, email="known@example.com", role="viewer")
    path = _link_path(mail.outbox[0])
    assert client.get(path).context["has_account"]
    client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    response = client.post(path + "accept/")
    assert response.url == reverse("dashboard", args=[workspace_a.slug])
    assert Membership.objects.get(workspace=workspace_a, user=user).role == Role.VIEWER


def test_an_expired_invitation_says_so_and_grants_nothing(
    admin_client_a, workspace_a, client, invite
):
    invite(admin_client_a, workspace_a)
    path = _link_path(mail.outbox[0])
    user = UserFactory(email="new@example.com")
    client.force_login(user)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.post(path + "accept/")
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(user=user).exists()


def test_a_withdrawn_invitation_cannot_be_used(admin_client_a, workspace_a, client, invite):
    invite(admin_client_a, workspace_a)
    invitation = Invitation.objects.for_workspace(workspace_a).get()
    admin_client_a.post(reverse("invitation_revoke", args=[workspace_a.slug, invitation.public_id]))
    response = client.get(_link_path(mail.outbox[0]))
    assert response.status_code == 400
    assert "withdrawn" in response.content.decode()


def test_a_tampered_link_is_refused(client):
    response = client.get("/invitations/not-a-real-token/")
    assert response.status_code == 400
    assert "not valid" in response.content.decode()


def test_the_invitation_is_for_its_address_only(admin_client_a, workspace_a, client, invite):
    invite(admin_client_a, workspace_a)
    stranger = UserFactory(email="stranger@example.com")
    client.force_login(stranger)
    response = client.post(_link_path(mail.outbox[0]) + "accept/")
    assert response.status_code == 400
    assert "for new@example.com" in response.content.decode()
    assert not Membership.objects.filter(user=stranger).exists()


def test_inviting_again_replaces_the_open_invitation(admin_client_a, workspace_a, invite):
    invite(admin_client_a, workspace_a)
    invite(admin_client_a, workspace_a, role="viewer")
    open_ones = Invitation.objects.for_workspace(workspace_a).filter(revoked_at__isnull=True)
    assert [i.role for i in open_ones] == [Role.VIEWER]


def test_inviting_a_member_is_a_form_error(admin_client_a, workspace_a, editor, invite):
    response = invite(admin_client_a, workspace_a, email=editor.email)
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert not mail.outbox


def test_only_owners_invite_owners(admin_client_a, workspace_a, invite):
    response = invite(admin_client_a, workspace_a, role="owner")
    assert response.status_code == 400
    assert not Invitation.objects.for_workspace(workspace_a).exists()


def test_editors_cannot_invite(editor_client, workspace_a, invite):
    assert invite(editor_client, workspace_a).status_code == 403
    assert not Invitation.objects.for_workspace(workspace_a).exists()


def test_the_invitation_email_lands_in_the_sandbox_inbox(
    admin_user, workspace_a, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "workspaces.sandbox.SandboxEmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        services.invite_member(
            workspace=workspace_a,
            email="x@example.com",
            role=Role.EDITOR,
            invited_by=admin_user,
            acting_role=Role.ADMIN,
        )
    message = SandboxMessage.objects.for_workspace(workspace_a).get()
    assert message.to == ["x@example.com"]
    assert "/invitations/" in message.html_body

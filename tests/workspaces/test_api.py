"""The REST API for signed-in users: workspace settings, members, invitations and keys."""

from __future__ import annotations

import pytest

from tests.factories import ApiKeyFactory
from workspaces.models import Invitation, Membership, Role

pytestmark = pytest.mark.django_db


def _url(workspace, path):
    return f"/api/v1/w/{workspace.slug}/{path}"


def test_a_member_reads_the_workspace(viewer_client, workspace_a):
    response = viewer_client.get(_url(workspace_a, "workspace/"))
    assert response.status_code == 200
    assert response.json()["name"] == workspace_a.name


def test_an_admin_updates_settings_and_bad_values_get_field_errors(admin_client_a, workspace_a):
    ok = admin_client_a.patch(
        _url(workspace_a, "workspace/"),
        {"default_from_name": "Acme Team", "timezone": "Europe/Berlin"},
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert ok.json()["timezone"] == "Europe/Berlin"
    bad = admin_client_a.patch(
        _url(workspace_a, "workspace/"),
        {"timezone": "Mars/Olympus", "default_from_email": "nope"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"timezone", "default_from_email"}
    workspace_a.refresh_from_db()
    assert workspace_a.timezone == "Europe/Berlin"


def test_a_viewer_cannot_write_through_the_api(viewer_client, workspace_a):
    response = viewer_client.patch(
        _url(workspace_a, "workspace/"), {"name": "Hacked"}, content_type="application/json"
    )
    assert response.status_code == 403


def test_a_session_request_without_a_workspace_is_told_where_to_go(viewer_client):
    response = viewer_client.get("/api/v1/workspace/")
    assert response.status_code == 404
    assert "/api/v1/w/" in response.json()["detail"]


def test_members_are_listed_and_roles_changed(admin_client_a, workspace_a, editor):
    listing = admin_client_a.get(_url(workspace_a, "members/")).json()
    member = next(m for m in listing["results"] if m["email"] == editor.email)
    response = admin_client_a.patch(
        _url(workspace_a, f"members/{member['id']}/"),
        {"role": "superuser"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "role" in response.json()
    response = admin_client_a.patch(
        _url(workspace_a, f"members/{member['id']}/"),
        {"role": "viewer"},
        content_type="application/json",
    )
    assert response.json()["role"] == "viewer"
    assert Membership.objects.get(user=editor).role == Role.VIEWER


def test_the_last_owner_cannot_be_removed_through_the_api(owner_client, workspace_a, owner):
    member = Membership.objects.get(user=owner)
    response = owner_client.delete(_url(workspace_a, f"members/{member.public_id}/"))
    assert response.status_code == 400
    assert "at least one owner" in str(response.json())


def test_invitations_are_created_with_field_errors_for_bad_input(admin_client_a, workspace_a):
    bad = admin_client_a.post(
        _url(workspace_a, "invitations/"), {"email": "nope"}, content_type="application/json"
    )
    assert bad.status_code == 400
    assert "email" in bad.json()
    good = admin_client_a.post(
        _url(workspace_a, "invitations/"),
        {"email": "api@example.com", "role": "viewer"},
        content_type="application/json",
    )
    assert good.status_code == 201
    assert Invitation.objects.for_workspace(workspace_a).get().email == "api@example.com"


def test_api_keys_are_created_once_and_revoked(client, workspace_a):
    admin_key = ApiKeyFactory(workspace=workspace_a)
    auth = {"Authorization": f"Bearer {admin_key.secret}"}
    created = client.post("/api/v1/api-keys/", {"name": "CI"}, headers=auth)
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(body["prefix"])
    listing = client.get("/api/v1/api-keys/", headers=auth).json()["results"]
    assert all("key" not in row for row in listing)
    gone = client.delete(f"/api/v1/api-keys/{body['id']}/", headers=auth)
    assert gone.status_code == 204
    after = client.get("/api/v1/workspace/", headers={"Authorization": f"Bearer {body['key']}"})
    assert after.status_code == 401


def test_a_viewset_may_not_override_get_queryset():
    from workspaces.api_base import WorkspaceViewSet

    with pytest.raises(TypeError, match="workspace_queryset"):

        class Careless(WorkspaceViewSet):
            def get_queryset(self):
                return []


def test_an_api_key_invites_and_the_email_names_the_team(client, workspace_a, mailoutbox):
    api_key = ApiKeyFactory(workspace=workspace_a)
    response = client.post(
        "/api/v1/invitations/",
        {"email": "keyed@example.com", "role": "editor"},
        headers={"Authorization": f"Bearer {api_key.secret}"},
    )
    assert response.status_code == 201, response.content
    assert Invitation.objects.for_workspace(workspace_a).get().invited_by is None


def test_a_service_error_without_a_field_is_a_detail_string(owner_client, workspace_a, owner):
    member = Membership.objects.get(user=owner)
    response = owner_client.delete(_url(workspace_a, f"members/{member.public_id}/"))
    assert isinstance(response.json()["detail"], str)

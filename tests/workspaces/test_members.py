"""The member list: role changes through HTMX, removal, and who may do what."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import MembershipFactory
from workspaces.models import Membership, Role

pytestmark = pytest.mark.django_db


def _membership(user, workspace):
    return Membership.objects.get(user=user, workspace=workspace)


def test_members_page_lists_everyone_with_few_queries(
    admin_client_a, workspace_a, editor, viewer, django_assert_max_num_queries
):
    for _ in range(5):
        MembershipFactory(workspace=workspace_a)
    with django_assert_max_num_queries(12):
        response = admin_client_a.get(reverse("members", args=[workspace_a.slug]))
    body = response.content.decode()
    assert editor.email in body and viewer.email in body


def test_an_admin_changes_a_role_inline(admin_client_a, workspace_a, editor):
    member = _membership(editor, workspace_a)
    response = admin_client_a.post(
        reverse("member_role", args=[workspace_a.slug, member.public_id]),
        {"role": "viewer"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert f'id="member-{member.public_id}"' in response.content.decode()
    assert "<html" not in response.content.decode()  # only the row is swapped
    member.refresh_from_db()
    assert member.role == Role.VIEWER


def test_the_last_owner_cannot_be_demoted(owner_client, workspace_a, owner):
    member = _membership(owner, workspace_a)
    response = owner_client.post(
        reverse("member_role", args=[workspace_a.slug, member.public_id]),
        {"role": "editor"},
        headers={"HX-Request": "true"},
    )
    assert "at least one owner" in response.content.decode()
    member.refresh_from_db()
    assert member.role == Role.OWNER


def test_an_admin_cannot_touch_an_owner(admin_client_a, workspace_a, owner):
    member = _membership(owner, workspace_a)
    admin_client_a.post(
        reverse("member_role", args=[workspace_a.slug, member.public_id]), {"role": "viewer"}
    )
    admin_client_a.post(reverse("member_remove", args=[workspace_a.slug, member.public_id]))
    member.refresh_from_db()
    assert member.role == Role.OWNER


def test_an_admin_removes_a_member(admin_client_a, workspace_a, editor):
    member = _membership(editor, workspace_a)
    response = admin_client_a.post(
        reverse("member_remove", args=[workspace_a.slug, member.public_id])
    )
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert response.wsgi_request.user  # the admin is still logged in


@pytest.mark.parametrize("client_name", ["viewer_client", "editor_client"])
def test_viewers_and_editors_read_the_list_but_cannot_change_it(
    request, client_name, workspace_a, owner
):
    client = request.getfixturevalue(client_name)
    member = _membership(owner, workspace_a)
    assert client.get(reverse("members", args=[workspace_a.slug])).status_code == 200
    response = client.post(
        reverse("member_role", args=[workspace_a.slug, member.public_id]), {"role": "viewer"}
    )
    assert response.status_code == 403
    assert "this needs Admin" in response.content.decode()
    member.refresh_from_db()
    assert member.role == Role.OWNER

"""The app shell: dashboard empty state, navigation, workspace switcher, roles on pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import AgencyFactory, MembershipFactory, WorkspaceFactory
from workspaces.models import Role

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_log_in(client, workspace_a):
    response = client.get(reverse("dashboard", args=[workspace_a.slug]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_an_unknown_workspace_is_404(owner_client):
    assert owner_client.get("/w/no-such-shop/").status_code == 404


def test_a_new_workspace_shows_the_getting_started_steps(
    owner_client, workspace_a, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = owner_client.get(reverse("dashboard", args=[workspace_a.slug]))
    body = response.content.decode()
    assert 'data-testid="empty-dashboard"' in body
    assert "Add your sender details" in body and "Connect your website" in body


def test_navigation_lists_every_section_and_links_the_built_ones(owner_client, workspace_a):
    body = owner_client.get(reverse("dashboard", args=[workspace_a.slug])).content.decode()
    for label in ("Contacts", "Segments", "Templates", "Campaigns", "Journeys", "Analytics"):
        assert label in body
    assert f'href="{reverse("settings", args=[workspace_a.slug])}"' in body
    assert 'aria-current="page">Home' in body


def test_the_switcher_lists_every_reachable_workspace(client):
    agency = AgencyFactory(name="North")
    clients = [WorkspaceFactory(agency=agency, name=f"Client {n}") for n in range(3)]
    own = WorkspaceFactory(name="Own Shop")
    WorkspaceFactory(name="Not Mine")
    user = MembershipFactory(workspace=None, agency=agency, role=Role.ADMIN).user
    MembershipFactory(user=user, workspace=own, role=Role.OWNER)
    client.force_login(user)
    body = client.get(reverse("dashboard", args=[clients[0].slug])).content.decode()
    for workspace in [*clients, own]:
        assert reverse("dashboard", args=[workspace.slug]) in body
    assert "Not Mine" not in body
    assert "North" in body


def test_viewers_see_settings_read_only_and_cannot_save(viewer_client, workspace_a):
    url = reverse("settings", args=[workspace_a.slug])
    page = viewer_client.get(url).content.decode()
    assert "<fieldset disabled" in page
    response = viewer_client.post(url, {"name": "Changed"})
    assert response.status_code == 403
    workspace_a.refresh_from_db()
    assert workspace_a.name == "Acme"


def test_an_admin_saves_settings_and_bad_values_are_form_errors(admin_client_a, workspace_a):
    url = reverse("settings", args=[workspace_a.slug])
    data = {
        "name": "Acme Outdoor",
        "timezone": "Europe/Paris",
        "default_from_name": "Acme",
        "default_from_email": "not-an-email",
        "postal_address": "1 Rue de la Paix, Paris",
    }
    response = admin_client_a.post(url, data)
    assert response.status_code == 200
    assert "default_from_email" in response.context["form"].errors
    response = admin_client_a.post(url, {**data, "default_from_email": "hi@acme.example"})
    assert response.status_code == 302
    workspace_a.refresh_from_db()
    assert (workspace_a.name, workspace_a.timezone) == ("Acme Outdoor", "Europe/Paris")


def test_home_sends_a_user_without_workspaces_to_create_one(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get(reverse("home")).url == reverse("workspace_new")

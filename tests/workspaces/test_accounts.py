"""Sign-up, log-in (with throttling), log-out, password reset and new workspaces."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from tests.factories import PASSWORD, AgencyFactory, MembershipFactory, UserFactory
from workspaces.models import Agency, Membership, Role, Workspace

pytestmark = pytest.mark.django_db
User = get_user_model()

SIGNUP = {
    "full_name": "Betty Baker",
    "email": "Betty@Bakery.example",
    "password": "flour-and-butter-42",
    "workspace_name": "Betty's Bakery",
    "agency_name": "",
}


def test_sign_up_creates_the_user_and_an_owned_workspace_and_logs_in(client):
    response = client.post(reverse("signup"), SIGNUP)
    workspace = Workspace.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard", args=[workspace.slug])
    assert workspace.slug == "bettys-bakery"
    user = User.objects.get()
    assert user.email == "betty@bakery.example"
    assert Membership.objects.get(workspace=workspace).role == Role.OWNER
    assert client.get(response["Location"]).status_code == 200


def test_sign_up_as_an_agency_makes_the_workspace_a_client(client):
    client.post(reverse("signup"), {**SIGNUP, "agency_name": "North Agency"})
    agency = Agency.objects.get()
    assert Workspace.objects.get().agency == agency
    assert Membership.objects.get(agency=agency).role == Role.OWNER


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"password": "short"}, "password", "too short"),
        ({"password": "password123"}, "password", "too common"),
        ({"workspace_name": ""}, "workspace_name", "required"),
    ],
)
def test_bad_sign_up_data_shows_errors_and_creates_nothing(client, change, field, message):
    response = client.post(reverse("signup"), {**SIGNUP, **change})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not User.objects.exists()
    assert not Workspace.objects.exists()


def test_sign_up_with_a_taken_email_in_other_case_is_refused(client):
    UserFactory(email="betty@bakery.example")
    response = client.post(reverse("signup"), SIGNUP)
    assert "already exists" in str(response.context["form"].errors["email"])
    assert not Workspace.objects.exists()


def test_log_in_and_out(client, owner, workspace_a):
    response = client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).url == reverse("dashboard", args=[workspace_a.slug])
    client.post(reverse("logout"))
    assert client.get(reverse("dashboard", args=[workspace_a.slug])).status_code == 302


def test_log_in_is_throttled_after_repeated_failures(client, owner, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        response = client.post(reverse("login"), {"username": owner.email, "password": "wrong"})
        assert "don&#x27;t match" in response.content.decode()
    response = client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_reset_mails_a_link_that_sets_a_new_password(client, owner):
    client.post(reverse("password_reset"), {"email": owner.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    new = "a-brand-new-password-7"
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(new)


def test_a_user_creates_a_second_workspace(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("workspace_new"), {"name": "Second Shop", "slug": "", "timezone": "Europe/Paris"}
    )
    workspace = Workspace.objects.get(slug="second-shop")
    assert response.url == reverse("dashboard", args=["second-shop"])
    assert workspace.timezone == "Europe/Paris"
    assert Membership.objects.get(workspace=workspace, user=owner).role == Role.OWNER


def test_a_duplicate_workspace_address_is_a_form_error(client, owner, workspace_a):
    client.force_login(owner)
    response = client.post(
        reverse("workspace_new"), {"name": "Copy", "slug": workspace_a.slug, "timezone": "UTC"}
    )
    assert response.status_code == 200
    assert "is taken" in str(response.context["form"].errors["slug"])
    assert Workspace.objects.count() == 1


def test_agency_admins_add_client_workspaces(client):
    agency = AgencyFactory()
    boss = MembershipFactory(workspace=None, agency=agency, role=Role.ADMIN).user
    client.force_login(boss)
    client.post(
        reverse("workspace_new"),
        {"name": "Client", "slug": "client", "timezone": "UTC", "agency": agency.pk},
    )
    assert Workspace.objects.get(slug="client").agency == agency
    assert client.get(reverse("dashboard", args=["client"])).status_code == 200

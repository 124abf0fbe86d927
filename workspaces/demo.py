"""Demo data for the embedded default: an agency with two client workspaces and a user
per role. Later apps add their own demo data through `seed_demo`."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Agency, Membership, Role, Workspace
from .signals import demo_workspaces_seeded, workspace_created

DEMO_PASSWORD = "mailpath-demo"
DEMO_AGENCY_SLUG = "northwind-digital"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    reaches: str


DEMO_LOGINS = [
    DemoLogin("agency@example.com", "agency owner", "both client workspaces"),
    DemoLogin("owner@example.com", Role.OWNER, "Acme Outdoor"),
    DemoLogin("admin@example.com", Role.ADMIN, "Acme Outdoor"),
    DemoLogin("editor@example.com", Role.EDITOR, "Acme Outdoor"),
    DemoLogin("viewer@example.com", Role.VIEWER, "Acme Outdoor"),
    DemoLogin("baker@example.com", Role.OWNER, "Bloom Bakery"),
]


def demo_exists() -> bool:
    return Agency.objects.filter(slug=DEMO_AGENCY_SLUG).exists()


def _user(email: str, name: str):  # type: ignore[no-untyped-def]
    first, _, last = name.partition(" ")
    user = get_user_model().objects.create_user(
        username=email, email=email, password=DEMO_PASSWORD, first_name=first, last_name=last
    )
    return user


@transaction.atomic
def seed_workspaces() -> dict[str, Workspace]:
    agency = Agency.objects.create(name="Northwind Digital", slug=DEMO_AGENCY_SLUG)
    acme = Workspace.objects.create(
        agency=agency,
        name="Acme Outdoor",
        slug="acme-outdoor",
        timezone="Europe/London",
        default_from_name="Acme Outdoor",
        default_from_email="hello@acme-outdoor.example.com",
        postal_address="12 Harbour Road, Bristol BS1 4AA, United Kingdom",
    )
    bloom = Workspace.objects.create(
        agency=agency,
        name="Bloom Bakery",
        slug="bloom-bakery",
        timezone="America/New_York",
        default_from_name="Bloom Bakery",
        default_from_email="hi@bloom-bakery.example.com",
        postal_address="200 Main Street, Portland, ME 04101, USA",
    )
    for workspace in (acme, bloom):
        workspace_created.send(sender=Workspace, workspace=workspace)
    Membership.objects.create(
        user=_user("agency@example.com", "Nadia North"), agency=agency, role=Role.OWNER
    )
    names = {
        "owner@example.com": "Olivia Owner",
        "admin@example.com": "Adam Admin",
        "editor@example.com": "Edith Editor",
        "viewer@example.com": "Victor Viewer",
    }
    for login in DEMO_LOGINS[1:5]:
        Membership.objects.create(
            user=_user(login.email, names[login.email]), workspace=acme, role=login.role
        )
    Membership.objects.create(
        user=_user("baker@example.com", "Betty Baker"), workspace=bloom, role=Role.OWNER
    )
    demo_workspaces_seeded.send(sender=Workspace, workspaces=[acme, bloom])
    return {"acme": acme, "bloom": bloom}

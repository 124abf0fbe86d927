"""seed_demo's audience: contacts, personas, stages and 90 days of activity."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from contacts.models import Contact, Event, Persona, StageChange, Topic
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def test_the_demo_workspaces_get_a_believable_audience(monkeypatch):
    monkeypatch.setattr("contacts.demo.CONTACTS_PER_WORKSPACE", 200)
    call_command("seed_demo")
    acme = Workspace.objects.get(slug="acme-outdoor")
    contacts = Contact.objects.for_workspace(acme)
    assert contacts.count() == 200
    assert Persona.objects.for_workspace(acme).count() == 2
    assert Topic.objects.for_workspace(acme).count() == 2
    assert contacts.filter(lifecycle_stage__isnull=True).count() == 0
    stage_counts = [contacts.filter(lifecycle_stage__position=p).count() for p in range(5)]
    assert stage_counts[0] > stage_counts[2] > 0  # a funnel that narrows
    events = Event.objects.for_workspace(acme)
    assert {"signed_up", "page_viewed", "cart_updated", "order_placed"} <= set(
        events.values_list("name", flat=True)
    )
    assert events.aggregate(total=Sum("revenue"))["total"] > 0
    assert not events.filter(occurred_at__gt=timezone.now()).exists()
    assert StageChange.objects.for_workspace(acme).count() >= contacts.count()
    bloom = Workspace.objects.get(slug="bloom-bakery")
    assert not events.filter(contact__workspace=bloom).exists()

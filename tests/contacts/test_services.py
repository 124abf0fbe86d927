"""The core audience services: bulk upsert, stages, tags, consent, erasure, events."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from contacts import services
from contacts.models import (
    ConsentKind,
    ConsentRecord,
    Contact,
    Event,
    FieldType,
    LifecycleStage,
    Source,
    StageChange,
    SubscriptionStatus,
)
from tests.factories import ContactFactory, CustomFieldFactory, TagFactory
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def _contacts(workspace):
    return Contact.objects.for_workspace(workspace)


def test_a_new_workspace_gets_the_five_default_stages(owner):
    from workspaces.services import create_workspace

    workspace = create_workspace(user=owner, name="Fresh")
    names = [s.name for s in LifecycleStage.objects.for_workspace(workspace)]
    assert names == ["Awareness", "Consideration", "Decision", "Retention", "Advocacy"]


def test_upsert_creates_updates_and_reports_each_row(workspace_a):
    ContactFactory(workspace=workspace_a, email="old@example.com", first_name="Old")
    consent = services.ConsentInput(method=Source.API, text_shown="Signed up at checkout")
    results = services.upsert_contacts(
        workspace=workspace_a,
        rows=[
            {"email": " New@Example.com ", "first_name": "Ann"},
            {"email": "old@example.com", "first_name": "Olga"},
            {"email": "not-an-email"},
        ],
        source=Source.API,
        consent=consent,
    )
    assert [r.status for r in results] == ["created", "updated", "rejected"]
    assert "email" in results[2].errors
    assert _contacts(workspace_a).get(email="new@example.com").first_name == "Ann"
    assert _contacts(workspace_a).get(email="old@example.com").first_name == "Olga"
    consents = ConsentRecord.objects.for_workspace(workspace_a)
    assert [c.text_shown for c in consents] == ["Signed up at checkout"]


def test_skip_mode_leaves_existing_contacts_alone(workspace_a):
    ContactFactory(workspace=workspace_a, email="old@example.com", first_name="Old")
    results = services.upsert_contacts(
        workspace=workspace_a,
        rows=[{"email": "old@example.com", "first_name": "New"}],
        source=Source.IMPORT,
        existing="skip",
    )
    assert results[0].status == "skipped"
    assert _contacts(workspace_a).get().first_name == "Old"


def test_without_a_consent_basis_imported_contacts_are_not_subscribed(workspace_a):
    services.upsert_contacts(
        workspace=workspace_a, rows=[{"email": "a@example.com"}], source=Source.IMPORT
    )
    assert _contacts(workspace_a).get().status == SubscriptionStatus.UNSUBSCRIBED


def test_custom_fields_are_validated_and_converted(workspace_a):
    CustomFieldFactory(workspace=workspace_a, key="shoe_size", field_type=FieldType.NUMBER)
    CustomFieldFactory(
        workspace=workspace_a, key="plan", field_type=FieldType.CHOICE, choices=["free", "pro"]
    )
    results = services.upsert_contacts(
        workspace=workspace_a,
        rows=[
            {"email": "a@example.com", "attributes": {"shoe_size": "42", "plan": "pro", "x": 1}},
            {"email": "b@example.com", "attributes": {"shoe_size": "big"}},
            {"email": "c@example.com", "attributes": {"plan": "gold"}},
        ],
        source=Source.API,
    )
    assert [r.status for r in results] == ["created", "rejected", "rejected"]
    assert results[1].errors == {"attributes.shoe_size": ["“big” is not a number."]}
    assert "attributes.plan" in results[2].errors
    assert _contacts(workspace_a).get().attributes == {"shoe_size": 42, "plan": "pro", "x": 1}


def test_a_bulk_call_is_capped():
    with pytest.raises(ValidationError, match="At most 1000"):
        services.upsert_contacts(
            workspace=Workspace(), rows=[{"email": "a@b.co"}] * 1001, source=Source.API
        )


def test_the_same_address_twice_in_one_call_is_written_once(workspace_a):
    results = services.upsert_contacts(
        workspace=workspace_a,
        rows=[{"email": "a@example.com", "first_name": "A"}, {"email": "A@example.com"}],
        source=Source.API,
    )
    assert [r.status for r in results] == ["skipped", "created"]
    assert _contacts(workspace_a).count() == 1


def test_stage_changes_are_recorded_with_their_time(workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    awareness, decision = _two_stages(workspace_a)
    scope = _contacts(workspace_a).filter(pk=contact.pk)
    services.change_stage(workspace=workspace_a, contacts=scope, stage=awareness, source="api")
    services.change_stage(workspace=workspace_a, contacts=scope, stage=decision, source="api")
    services.change_stage(workspace=workspace_a, contacts=scope, stage=decision, source="api")
    changes = StageChange.objects.for_workspace(workspace_a).order_by("id")
    assert [(c.from_stage, c.to_stage) for c in changes] == [
        (None, awareness),
        (awareness, decision),
    ]


def _two_stages(workspace):
    services.ensure_default_stages(workspace=workspace)
    stages = list(LifecycleStage.objects.for_workspace(workspace))
    return stages[0], stages[2]


def test_a_stage_in_use_cannot_be_deleted_without_moving_its_contacts(workspace_a):
    first, third = _two_stages(workspace_a)
    contact = ContactFactory(workspace=workspace_a, lifecycle_stage=first)
    with pytest.raises(ValidationError, match="choose a stage"):
        services.delete_stage(workspace=workspace_a, stage=first)
    assert services.delete_stage(workspace=workspace_a, stage=first, move_to=third) == 1
    contact.refresh_from_db()
    assert contact.lifecycle_stage == third


def test_tags_are_created_once_case_insensitively(workspace_a):
    TagFactory(workspace=workspace_a, name="VIP")
    tags = services.get_or_create_tags(workspace=workspace_a, names=["vip", "New", "new "])
    assert sorted(t.name for t in tags) == ["New", "VIP"]
    contact = ContactFactory(workspace=workspace_a)
    services.add_tags(workspace=workspace_a, contact_ids=[contact.pk], tags=tags)
    services.add_tags(workspace=workspace_a, contact_ids=[contact.pk], tags=tags)
    assert contact.tags.count() == 2


def test_unsubscribing_keeps_a_consent_record(workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    services.unsubscribe(
        workspace=workspace_a,
        contacts=_contacts(workspace_a).filter(pk=contact.pk),
        method=Source.MANUAL,
        ip_address="203.0.113.9",
    )
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.UNSUBSCRIBED
    record = ConsentRecord.objects.for_workspace(workspace_a).get()
    assert (record.kind, record.ip_address) == (ConsentKind.OPT_OUT, "203.0.113.9")


def test_erasure_deletes_the_person_and_blocks_re_adding(workspace_a, workspace_b):
    contact = ContactFactory(workspace=workspace_a, email="gone@example.com")
    services.record_events(
        workspace=workspace_a, events=[services.EventInput(name="x", contact_id=contact.pk)]
    )
    services.erase_contact(workspace=workspace_a, contact=contact)
    assert not _contacts(workspace_a).exists()
    assert not Event.objects.for_workspace(workspace_a).exists()
    again = services.upsert_contacts(
        workspace=workspace_a, rows=[{"email": "GONE@example.com"}], source=Source.IMPORT
    )
    assert again[0].status == "rejected"
    other = services.upsert_contacts(
        workspace=workspace_b, rows=[{"email": "gone@example.com"}], source=Source.IMPORT
    )
    assert other[0].status == "created"  # another workspace's erasure does not reach here


def test_events_are_stored_once_per_message_id_and_touch_last_activity(workspace_a):
    contact = ContactFactory(workspace=workspace_a, external_id="u-1")
    when = timezone.now() - timedelta(hours=2)
    order = services.EventInput(
        name="order_placed",
        user_id="u-1",
        message_id="m-1",
        occurred_at=when,
        revenue=Decimal("49.90"),
        currency="eur",
    )
    first = services.record_events(workspace=workspace_a, events=[order, order])
    second = services.record_events(workspace=workspace_a, events=[order])
    assert first == {"recorded": 1, "duplicates": 1}
    assert second == {"recorded": 0, "duplicates": 1}
    event = Event.objects.for_workspace(workspace_a).get()
    assert (event.contact, event.revenue, event.currency) == (contact, Decimal("49.90"), "EUR")
    contact.refresh_from_db()
    assert contact.last_activity_at == when


def test_anonymous_activity_is_linked_when_the_visitor_is_identified(workspace_a):
    services.record_events(
        workspace=workspace_a,
        events=[services.EventInput(name="page_viewed", anonymous_id="anon-7")],
    )
    contact = ContactFactory(workspace=workspace_a)
    assert (
        services.link_anonymous_activity(
            workspace=workspace_a, contact=contact, anonymous_id="anon-7"
        )
        == 1
    )
    services.record_events(
        workspace=workspace_a,
        events=[services.EventInput(name="cart_viewed", anonymous_id="anon-7")],
    )
    assert Event.objects.for_workspace(workspace_a).filter(contact=contact).count() == 2


def test_events_of_one_workspace_never_attach_to_another(workspace_a, workspace_b):
    ContactFactory(workspace=workspace_b, external_id="u-1")
    services.record_events(
        workspace=workspace_a, events=[services.EventInput(name="x", user_id="u-1")]
    )
    assert Event.objects.for_workspace(workspace_a).get().contact is None

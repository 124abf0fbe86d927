"""The core audience services: bulk upsert, stages, tags, consent, erasure, events."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from contacts import contact_store, services
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
from contacts.signals import contacts_changed
from tests.factories import ContactFactory, CustomFieldFactory, PersonaFactory, TagFactory
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def _contacts(workspace):
    return Contact.objects.for_workspace(workspace)


def test_a_new_workspace_gets_the_five_default_stages(owner):
    from workspaces.services import create_workspace

    workspace = create_workspace(user=owner, name="Fresh")
    names = [s.name for s in LifecycleStage.objects.for_workspace(workspace)]
    assert names == ["Awareness", "Consideration", "Decision", "Retention", "Advocacy"]


def test_upsert_creates_updates_and_reports_each_row(workspace_a, write_path):
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


def test_skip_mode_leaves_existing_contacts_alone(workspace_a, write_path):
    ContactFactory(workspace=workspace_a, email="old@example.com", first_name="Old")
    results = services.upsert_contacts(
        workspace=workspace_a,
        rows=[{"email": "old@example.com", "first_name": "New"}],
        source=Source.IMPORT,
        existing="skip",
    )
    assert results[0].status == "skipped"
    assert _contacts(workspace_a).get().first_name == "Old"


def test_without_a_consent_basis_imported_contacts_are_not_subscribed(workspace_a, write_path):
    services.upsert_contacts(
        workspace=workspace_a, rows=[{"email": "a@example.com"}], source=Source.IMPORT
    )
    assert _contacts(workspace_a).get().status == SubscriptionStatus.UNSUBSCRIBED


def test_custom_fields_are_validated_and_converted(workspace_a, write_path):
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


def test_the_same_address_twice_in_one_call_is_written_once(workspace_a, write_path):
    results = services.upsert_contacts(
        workspace=workspace_a,
        rows=[{"email": "a@example.com", "first_name": "A"}, {"email": "A@example.com"}],
        source=Source.API,
    )
    assert [r.status for r in results] == ["skipped", "created"]
    assert _contacts(workspace_a).count() == 1


def test_the_cap_can_be_raised_by_the_caller_that_needs_it(workspace_a):
    rows = [{"email": f"p{n}@example.com"} for n in range(3)]
    with pytest.raises(ValidationError, match="At most 2 contacts per call, got 3"):
        services.upsert_contacts(workspace=workspace_a, rows=rows, source=Source.IMPORT, max_rows=2)
    results = services.upsert_contacts(
        workspace=workspace_a, rows=rows, source=Source.IMPORT, max_rows=3
    )
    assert [r.status for r in results] == ["created"] * 3


def test_upsert_applies_tags_stage_persona_and_consent_and_announces_it(
    workspace_a, write_path, django_capture_on_commit_callbacks
):
    first, third = _two_stages(workspace_a)
    persona = PersonaFactory(workspace=workspace_a)
    known = ContactFactory(workspace=workspace_a, email="known@example.com", lifecycle_stage=first)
    vip = TagFactory(workspace=workspace_a, name="VIP")
    announced = []

    def listen(sender, **kwargs):
        announced.append((sorted(kwargs["contact_ids"]), kwargs["changes"]))

    contacts_changed.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            results = services.upsert_contacts(
                workspace=workspace_a,
                rows=[{"email": "new@example.com"}, {"email": "known@example.com"}],
                source=Source.API,
                tags=[vip],
                stage=third,
                persona=persona,
                consent=services.ConsentInput(method=Source.API, text_shown="Yes please"),
            )
    finally:
        contacts_changed.disconnect(listen)

    new, updated = (r.contact for r in results)
    assert [r.status for r in results] == ["created", "updated"]
    assert updated.pk == known.pk
    for contact in (new, updated):
        assert (contact.lifecycle_stage, contact.persona) == (third, persona)
        assert list(contact.tags.values_list("name", flat=True)) == ["VIP"]
    assert new.status == SubscriptionStatus.SUBSCRIBED
    changes = StageChange.objects.for_workspace(workspace_a)
    assert sorted((c.contact.email, c.from_name, c.to_name, c.source) for c in changes) == [
        ("known@example.com", first.name, third.name, "api"),
        ("new@example.com", "", third.name, "api"),
    ]
    consents = ConsentRecord.objects.for_workspace(workspace_a)
    assert [(c.contact, c.kind, c.text_shown) for c in consents] == [(new, "opt_in", "Yes please")]
    both = sorted([new.pk, known.pk])
    assert (both, {"tags"}) in announced
    assert (both, {"stage"}) in announced
    assert (both, {"created", "attributes"}) in announced


def test_an_update_writes_the_fields_a_row_names_and_keeps_the_others(workspace_a, write_path):
    known = ContactFactory(
        workspace=workspace_a,
        email="known@example.com",
        external_id="u-1",
        phone="+44 1",
        birthday=date(1990, 5, 17),
        attributes={"plan": "free", "city": "Leeds"},
    )

    [result] = services.upsert_contacts(
        workspace=workspace_a,
        rows=[
            {
                "email": "known@example.com",
                "first_name": "Kim",
                "external_id": "",
                "birthday": None,
                "attributes": {"plan": "pro"},
            }
        ],
        source=Source.API,
    )

    known.refresh_from_db()
    assert result.status == "updated"
    assert (known.first_name, known.external_id, known.birthday, known.phone) == (
        "Kim",
        None,
        None,
        "+44 1",
    )
    assert known.attributes == {"plan": "pro", "city": "Leeds"}


def test_an_address_added_meanwhile_by_another_writer_is_a_clear_error(workspace_a, write_path):
    ContactFactory(workspace=workspace_a, email="taken@example.com")
    row = services.ContactRow(0, {"email": "taken@example.com"}, {})
    with pytest.raises(ValidationError, match="added at the same moment"):
        contact_store.insert_contacts(
            workspace_a,
            [(row, SubscriptionStatus.SUBSCRIBED)],
            source=Source.API,
            stage=None,
            persona=None,
            now=timezone.now(),
        )


def test_rows_bring_their_own_tags_and_opt_outs(workspace_a, write_path):
    ContactFactory(
        workspace=workspace_a, email="leaving@example.com", status=SubscriptionStatus.SUBSCRIBED
    )
    TagFactory(workspace=workspace_a, name="VIP")
    results = services.upsert_contacts(
        workspace=workspace_a,
        rows=[
            {"email": "ann@example.com", "tags": ["vip", " Spring fair "]},
            {"email": "gone@example.com", "status": "unsubscribed"},
            {"email": "bounced@example.com", "status": "bounced", "tags": ["old list"]},
            {"email": "leaving@example.com", "status": "unsubscribed"},
            {"email": "sneaky@example.com", "status": "subscribed"},
            {"email": "odd@example.com", "tags": "vip"},
        ],
        source=Source.IMPORT,
        consent=services.ConsentInput(method=Source.IMPORT, text_shown="Signed up in shop"),
        subscribe=True,
    )

    assert [r.status for r in results] == [
        "created",
        "created",
        "created",
        "updated",
        "rejected",
        "rejected",
    ]
    assert "status" in results[4].errors
    assert results[5].errors == {"tags": ["Tags are a list of names."]}
    by_email = {c.email: c for c in _contacts(workspace_a)}
    assert sorted(by_email["ann@example.com"].tags.values_list("name", flat=True)) == [
        "Spring fair",
        "VIP",
    ]
    assert by_email["ann@example.com"].status == SubscriptionStatus.SUBSCRIBED
    assert by_email["gone@example.com"].status == SubscriptionStatus.UNSUBSCRIBED
    assert by_email["bounced@example.com"].status == SubscriptionStatus.BOUNCED
    assert by_email["leaving@example.com"].status == SubscriptionStatus.UNSUBSCRIBED
    assert list(by_email["bounced@example.com"].tags.values_list("name", flat=True)) == ["old list"]
    opt_ins = ConsentRecord.objects.for_workspace(workspace_a).filter(kind=ConsentKind.OPT_IN)
    assert list(opt_ins.values_list("contact__email", flat=True)) == ["ann@example.com"]
    opt_outs = ConsentRecord.objects.for_workspace(workspace_a).filter(kind=ConsentKind.OPT_OUT)
    assert sorted(opt_outs.values_list("contact__email", "text_shown")) == [
        ("bounced@example.com", "Marked bounced in the imported file."),
        ("leaving@example.com", "Marked unsubscribed in the imported file."),
    ]


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


def test_erasure_deletes_the_person_and_blocks_re_adding(workspace_a, workspace_b, write_path):
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

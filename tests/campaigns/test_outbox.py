"""The outbox: one Message per contact, an idempotency key the database keeps unique."""

from __future__ import annotations

import pytest

from campaigns.models import Message, MessageSource, MessageStatus
from campaigns.sending import outbox
from tests.factories import ContactFactory, EmailTemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def kicks(monkeypatch):
    calls = []
    monkeypatch.setattr("campaigns.tasks.deliver_queued.delay", lambda *a: calls.append(a))
    return calls


def messages(workspace):
    return Message.objects.for_workspace(workspace).order_by("id")


def test_enqueue_writes_one_queued_message_per_contact(workspace_a, kicks):
    template = EmailTemplateFactory(workspace=workspace_a, purpose="marketing")
    contacts = ContactFactory.create_batch(3, workspace=workspace_a)
    event = {"name": "Order Completed", "properties": {"total": 12}, "occurred_at": ""}

    new = outbox.enqueue(
        workspace_a,
        template=template,
        contacts=contacts,
        source=MessageSource.CAMPAIGN,
        source_id="cmp_1",
        variant="A",
        context=event,
    )

    assert new == 3
    rows = list(messages(workspace_a))
    assert [m.to_email for m in rows] == [c.email for c in contacts]
    assert {m.status for m in rows} == {MessageStatus.QUEUED}
    assert {m.purpose for m in rows} == {"marketing"}
    assert rows[0].context == event
    assert rows[0].idempotency_key == f"{workspace_a.pk}:campaign:cmp_1:A::{contacts[0].pk}"


def test_enqueueing_the_same_email_twice_is_a_no_op(workspace_a, kicks):
    template = EmailTemplateFactory(workspace=workspace_a)
    contacts = ContactFactory.create_batch(2, workspace=workspace_a)
    args = dict(template=template, source=MessageSource.CAMPAIGN, source_id="cmp_1")

    assert outbox.enqueue(workspace_a, contacts=contacts, **args) == 2
    later = [*contacts, ContactFactory(workspace=workspace_a)]
    assert outbox.enqueue(workspace_a, contacts=later, **args) == 1
    assert outbox.enqueue(workspace_a, contacts=later, **args) == 0
    assert messages(workspace_a).count() == 3
    # another variant or visit is another email
    assert outbox.enqueue(workspace_a, contacts=contacts, variant="B", **args) == 2


def test_enqueue_takes_a_queryset_and_skips_repeats_and_blank_addresses(workspace_a, kicks):
    template = EmailTemplateFactory(workspace=workspace_a)
    contact = ContactFactory(workspace=workspace_a)
    ContactFactory(workspace=workspace_a, email="")
    args = dict(template=template, source=MessageSource.CAMPAIGN, source_id="x")

    from contacts.models import Contact

    assert outbox.enqueue(workspace_a, contacts=Contact.objects.for_workspace(workspace_a), **args)
    args["source_id"] = "y"
    assert outbox.enqueue(workspace_a, contacts=[contact, contact], **args) == 1
    assert messages(workspace_a).count() == 2


def test_purpose_comes_from_the_template_unless_given(workspace_a, kicks):
    template = EmailTemplateFactory(workspace=workspace_a, purpose="transactional")
    contact = ContactFactory(workspace=workspace_a)

    outbox.enqueue(workspace_a, template=template, contacts=[contact], source=MessageSource.JOURNEY)
    outbox.enqueue(
        workspace_a,
        template=template,
        contacts=[contact],
        source=MessageSource.CAMPAIGN,
        purpose="marketing",
    )

    assert [m.purpose for m in messages(workspace_a)] == ["transactional", "marketing"]


def test_another_workspaces_contact_or_template_is_refused_and_nothing_written(
    workspace_a, workspace_b, kicks
):
    template = EmailTemplateFactory(workspace=workspace_a)
    mine = ContactFactory(workspace=workspace_a)
    theirs = ContactFactory(workspace=workspace_b)

    with pytest.raises(ValueError, match="another workspace"):
        outbox.enqueue(workspace_a, template=template, contacts=[mine, theirs], source="campaign")
    with pytest.raises(ValueError, match="another workspace"):
        outbox.enqueue(workspace_b, template=template, contacts=[theirs], source="campaign")
    with pytest.raises(ValueError, match="source"):
        outbox.enqueue(workspace_a, template=template, contacts=[mine], source="carrier-pigeon")
    assert messages(workspace_a).count() == 0
    assert messages(workspace_b).count() == 0


def test_enqueue_one_returns_the_same_message_for_the_same_key(workspace_a, kicks):
    template = EmailTemplateFactory(workspace=workspace_a, purpose="transactional")
    contact = ContactFactory(workspace=workspace_a)

    first = outbox.enqueue_one(workspace_a, template=template, contact=contact, visit_key="ord-1")
    again = outbox.enqueue_one(workspace_a, template=template, contact=contact, visit_key="ord-1")
    other = outbox.enqueue_one(workspace_a, template=template, contact=contact, visit_key="ord-2")

    assert first.pk == again.pk != other.pk
    assert first.source == MessageSource.TRANSACTIONAL
    assert messages(workspace_a).count() == 2


def test_delivery_is_kicked_after_commit_only_for_new_messages(
    workspace_a, kicks, django_capture_on_commit_callbacks, settings
):
    settings.MAILPATH_SEND_BATCH_SIZE = 2
    settings.MAILPATH_SEND_TASKS = 4
    template = EmailTemplateFactory(workspace=workspace_a)
    contacts = ContactFactory.create_batch(5, workspace=workspace_a)
    args = dict(template=template, contacts=contacts, source=MessageSource.CAMPAIGN)

    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(workspace_a, **args)
    assert len(kicks) == 3  # 5 messages in batches of 2: three tasks share the send

    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(workspace_a, **args)
    assert len(kicks) == 3  # nothing new, nothing to deliver


def test_very_long_keys_stay_unique_and_fit(workspace_a, kicks):
    template = EmailTemplateFactory(workspace=workspace_a)
    contact = ContactFactory(workspace=workspace_a)
    long_a, long_b = "a" * 80, "a" * 79 + "b"

    for source_id in (long_a, long_b):
        outbox.enqueue(
            workspace_a,
            template=template,
            contacts=[contact],
            source=MessageSource.JOURNEY,
            source_id=source_id,
            variant="v" * 40,
            visit_key="k" * 80,
        )

    keys = [m.idempotency_key for m in messages(workspace_a)]
    assert len(set(keys)) == 2
    assert all(len(k) <= 200 for k in keys)

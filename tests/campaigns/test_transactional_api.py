"""POST /api/v1/messages/ sends one transactional email (creating or updating the contact)
exactly once per idempotency key; GET /api/v1/messages/<id>/ tells what became of it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Message, MessageEvent, MessageStatus
from contacts.models import Contact, SubscriptionStatus
from tests.factories import ApiKeyFactory, ContactFactory, EmailTemplateFactory

pytestmark = pytest.mark.django_db
MESSAGES = "/api/v1/messages/"


@pytest.fixture
def api(workspace_a):
    key = ApiKeyFactory(workspace=workspace_a)
    client = Client(headers={"Authorization": f"Bearer {key.secret}"})
    return client


@pytest.fixture
def receipt(workspace_a):
    return EmailTemplateFactory(
        workspace=workspace_a,
        name="Order receipt",
        purpose="transactional",
        subject="Your order {{ event.properties.order_id }}",
    )


def send(client, body, path=MESSAGES):
    return client.post(path, body, content_type="application/json")


def body(email_template, **overrides):
    data = {
        "template": str(email_template.public_id),
        "to": {"email": "Ada@Example.com", "first_name": "Ada"},
        "event": {"name": "order_placed", "properties": {"order_id": "A-1", "total": "42.00"}},
        "idempotency_key": "order-A-1-receipt",
    }
    data.update(overrides)
    return data


def messages(workspace):
    return Message.objects.for_workspace(workspace)


def test_a_send_queues_one_transactional_message_and_a_repeat_returns_it(api, workspace_a, receipt):
    first = send(api, body(receipt))
    assert first.status_code == 202, first.content
    message = messages(workspace_a).get()
    assert first.json()["id"] == str(message.public_id)
    assert first.json()["status"] == "queued"
    assert first.json()["to"] == "ada@example.com"
    assert first.json()["idempotency_key"] == "order-A-1-receipt"
    assert message.purpose == "transactional"
    assert message.source == "transactional"
    assert message.template == receipt
    assert message.context["name"] == "order_placed"
    assert message.context["properties"] == {"order_id": "A-1", "total": "42.00"}
    assert message.context["occurred_at"]

    again = send(api, body(receipt))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert messages(workspace_a).count() == 1


def test_the_recipient_becomes_a_contact_that_is_not_subscribed_to_marketing(
    api, workspace_a, receipt
):
    send(api, body(receipt))
    contact = Contact.objects.for_workspace(workspace_a).get()
    assert contact.email == "ada@example.com"
    assert contact.first_name == "Ada"
    assert contact.status != SubscriptionStatus.SUBSCRIBED
    assert messages(workspace_a).get().contact == contact


def test_an_existing_contact_is_updated_not_duplicated(api, workspace_a, receipt):
    known = ContactFactory(
        workspace=workspace_a, email="ada@example.com", status=SubscriptionStatus.SUBSCRIBED
    )
    send(api, body(receipt, to={"email": "ada@example.com", "last_name": "Lovelace"}))
    known.refresh_from_db()
    assert known.last_name == "Lovelace"
    assert known.status == SubscriptionStatus.SUBSCRIBED  # untouched
    assert Contact.objects.for_workspace(workspace_a).count() == 1
    assert messages(workspace_a).get().contact == known


def test_the_same_key_for_another_email_is_a_conflict(api, workspace_a, receipt):
    send(api, body(receipt))
    response = send(api, body(receipt, to={"email": "grace@example.com"}))
    assert response.status_code == 409
    assert "idempotency_key" in response.json()
    assert messages(workspace_a).count() == 1


def test_keys_are_scoped_to_the_workspace(api, workspace_a, workspace_b, receipt):
    theirs = EmailTemplateFactory(workspace=workspace_b, purpose="transactional")
    other_api = Client(
        headers={"Authorization": f"Bearer {ApiKeyFactory(workspace=workspace_b).secret}"}
    )
    assert send(api, body(receipt)).status_code == 202
    assert send(other_api, body(theirs)).status_code == 202
    assert messages(workspace_a).count() == 1
    assert messages(workspace_b).count() == 1


def test_an_unknown_template_is_404(api, workspace_a, receipt):
    response = send(api, body(receipt, template="7f1f5a2e-0000-4000-8000-000000000000"))
    assert response.status_code == 404
    assert response.json()["detail"] == "No such template in this workspace."
    assert not messages(workspace_a).exists()
    assert not Contact.objects.for_workspace(workspace_a).exists()


def test_another_workspaces_template_is_404(api, workspace_a, workspace_b):
    theirs = EmailTemplateFactory(workspace=workspace_b, purpose="transactional")
    response = send(api, body(theirs))
    assert response.status_code == 404
    assert not messages(workspace_a).exists()
    assert not messages(workspace_b).exists()


def test_a_marketing_template_is_refused(api, workspace_a):
    newsletter = EmailTemplateFactory(workspace=workspace_a, name="Newsletter")
    response = send(api, body(newsletter))
    assert response.status_code == 400
    [error] = response.json()["template"]
    assert error.startswith("“Newsletter” is a marketing template.")
    assert "transactional email only" in error
    assert not messages(workspace_a).exists()
    assert not Contact.objects.for_workspace(workspace_a).exists()


def test_an_archived_template_is_refused(api, workspace_a, receipt):
    receipt.archived_at = timezone.now()
    receipt.save()
    response = send(api, body(receipt))
    assert response.status_code == 400
    assert "is archived" in response.json()["template"][0]


def test_an_invalid_email_is_a_field_error_and_writes_nothing(api, workspace_a, receipt):
    response = send(api, body(receipt, to={"email": "not an address", "first_name": "Ada"}))
    assert response.status_code == 400
    assert list(response.json()) == ["to"]
    assert response.json()["to"]["email"]
    assert not messages(workspace_a).exists()
    assert not Contact.objects.for_workspace(workspace_a).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 81}, "idempotency_key"),
        ({"to": {"first_name": "Ada"}}, "to"),
        ({"template": "not-a-uuid"}, "template"),
        ({"event": {"properties": {}}}, "event"),
        ({"purpose": "marketing"}, "purpose"),
        ({"to": {"email": "a@example.com", "tags": ["vip"]}}, "to"),
    ],
)
def test_bad_bodies_get_field_errors(api, workspace_a, receipt, change, field):
    data = body(receipt, **change)
    response = send(api, data)
    assert response.status_code == 400
    assert field in response.json()
    assert not messages(workspace_a).exists()


def test_a_missing_key_is_refused(api, workspace_a, receipt):
    data = body(receipt)
    del data["idempotency_key"]
    response = send(api, data)
    assert response.status_code == 400
    assert response.json()["idempotency_key"] == ["This field is required."]


def test_a_viewer_may_not_send(viewer_client, workspace_a, receipt):
    response = send(viewer_client, body(receipt), f"/api/v1/w/{workspace_a.slug}/messages/")
    assert response.status_code == 403
    assert not messages(workspace_a).exists()


def test_an_editor_sends_from_a_session(editor_client, workspace_a, receipt):
    response = send(editor_client, body(receipt), f"/api/v1/w/{workspace_a.slug}/messages/")
    assert response.status_code == 202
    assert messages(workspace_a).count() == 1


def test_no_credentials_is_401(client, receipt):
    assert send(client, body(receipt)).status_code == 401


def test_get_returns_the_status_and_the_events(api, workspace_a, receipt):
    created = send(api, body(receipt)).json()
    message = messages(workspace_a).get()
    Message.objects.for_workspace(workspace_a).filter(pk=message.pk).update(
        status=MessageStatus.DELIVERED
    )
    for kind in ("delivered", "opened"):
        MessageEvent.objects.for_workspace(workspace_a).create(
            workspace=workspace_a, message=message, kind=kind, occurred_at=timezone.now()
        )
    response = api.get(f"{MESSAGES}{created['id']}/")
    assert response.status_code == 200
    data = response.json()
    assert data["id"] == created["id"]
    assert data["status"] == "delivered"
    assert data["template"] == str(receipt.public_id)
    assert [event["kind"] for event in data["events"]] == ["delivered", "opened"]


def test_get_of_another_workspaces_message_is_404(api, workspace_b):
    theirs = Message.objects.for_workspace(workspace_b).create(
        workspace=workspace_b, to_email="x@example.com", source="transactional", idempotency_key="t"
    )
    assert api.get(f"{MESSAGES}{theirs.public_id}/").status_code == 404


def test_a_viewer_reads_a_message(viewer_client, workspace_a):
    message = Message.objects.for_workspace(workspace_a).create(
        workspace=workspace_a, to_email="x@example.com", source="transactional", idempotency_key="v"
    )
    response = viewer_client.get(f"/api/v1/w/{workspace_a.slug}/messages/{message.public_id}/")
    assert response.status_code == 200
    assert response.json()["events"] == []


def test_the_schema_describes_the_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "post" in schema["paths"]["/api/v1/messages/"]
    assert "get" in schema["paths"]["/api/v1/messages/{public_id}/"]


def test_the_email_goes_out_once_personalised_with_the_event(
    api, workspace_a, receipt, settings, django_capture_on_commit_callbacks
):
    from django.core import mail

    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.MAILPATH_CONNECTION_FACTORY = "campaigns.sending.esp.build_connection"
    mail.outbox = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            send(api, body(receipt))
    [email] = mail.outbox
    assert email.to == ["ada@example.com"]
    assert email.subject == "Your order A-1"
    assert messages(workspace_a).get().status == MessageStatus.SENT

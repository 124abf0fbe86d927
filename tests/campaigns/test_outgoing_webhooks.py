"""Outgoing webhooks: events become signed deliveries to the workspace's endpoints, retried
with backoff, logged, and an endpoint that keeps failing is disabled. The receiver is a
real HTTP server on the loopback interface (the operator setting that allows private
networks is on for it); Celery runs eagerly."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import (
    DeliveryStatus,
    Message,
    MessageEvent,
    MessageEventKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from campaigns.sending import outgoing
from campaigns.signals import message_event_recorded
from contacts import services as contact_services
from contacts.models import Contact, Source, SubscriptionStatus
from tests.campaigns.test_safe_http import serving
from tests.factories import ContactFactory, EmailTemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def receiver():
    with serving(reply=(200, {}, b'{"ok":true}', 0)) as server:
        server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/mailpath"
        yield server


def make_endpoint(workspace, url="https://hooks.example.com/in", events=None, **fields):
    return WebhookEndpoint.objects.for_workspace(workspace).create(
        workspace=workspace,
        url=url,
        events=list(events or outgoing.WEBHOOK_EVENTS),
        secret=fields.pop("secret", outgoing.new_secret()),
        **fields,
    )


def deliveries(workspace):
    return WebhookDelivery.objects.for_workspace(workspace).order_by("pk")


def make_message(workspace, **fields):
    contact = fields.pop("contact", None) or ContactFactory(workspace=workspace)
    return Message.objects.for_workspace(workspace).create(
        workspace=workspace,
        contact=contact,
        to_email=contact.email,
        template=fields.pop("template", None) or EmailTemplateFactory(workspace=workspace),
        source="campaign",
        source_id="spring-sale",
        idempotency_key=f"test:{contact.pk}:{time.monotonic_ns()}",
        subject="Spring sale",
        status="sent",
        sent_at=timezone.now(),
        **fields,
    )


# --- emitting --------------------------------------------------------------------------


def test_emit_makes_one_delivery_per_active_subscribed_endpoint(workspace_a, workspace_b):
    opens = make_endpoint(workspace_a, events=["message.opened"])
    everything = make_endpoint(workspace_a)
    make_endpoint(workspace_a, events=["message.clicked"])
    make_endpoint(workspace_a, active=False)
    make_endpoint(workspace_b)

    made = outgoing.emit(workspace_a, "message.opened", {"n": 1}, "opened:1")

    assert made == 2
    assert {d.endpoint_id for d in deliveries(workspace_a)} == {opens.pk, everything.pk}
    assert not deliveries(workspace_b).exists()


def test_the_same_event_twice_is_delivered_once(workspace_a):
    make_endpoint(workspace_a)
    assert outgoing.emit(workspace_a, "message.clicked", {"n": 1}, "clicked:1") == 1
    assert outgoing.emit(workspace_a, "message.clicked", {"n": 1}, "clicked:1") == 0
    assert deliveries(workspace_a).count() == 1


def test_an_unknown_event_is_refused(workspace_a):
    with pytest.raises(ValueError, match="not a webhook event"):
        outgoing.emit(workspace_a, "message.teleported", {}, "x")


# --- delivering ------------------------------------------------------------------------


def test_a_delivery_is_posted_signed_once_committed(
    workspace_a, receiver, django_capture_on_commit_callbacks
):
    endpoint = make_endpoint(workspace_a, url=receiver.url, events=["message.opened"])
    with django_capture_on_commit_callbacks(execute=True):
        outgoing.emit(workspace_a, "message.opened", {"message": {"id": "m1"}}, "opened:m1")

    [seen] = receiver.seen
    delivery = deliveries(workspace_a).get()
    headers = seen["headers"]
    assert seen["path"] == "/hooks/mailpath"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Mailpath-Event"] == "message.opened"
    assert headers["X-Mailpath-Delivery"] == str(delivery.public_id)
    assert outgoing.verify_signature(endpoint.secret, headers["X-Mailpath-Signature"], seen["body"])
    assert headers["X-Mailpath-Signature"].startswith(f"t={headers['X-Mailpath-Timestamp']},v1=")
    assert not outgoing.verify_signature(
        "whsec_wrong", headers["X-Mailpath-Signature"], seen["body"]
    )
    body = json.loads(seen["body"])
    assert body == {
        "id": str(delivery.public_id),
        "event": "message.opened",
        "created_at": body["created_at"],
        "workspace": str(workspace_a.public_id),
        "data": {"message": {"id": "m1"}},
    }
    assert body["created_at"].endswith("Z")
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.response_status == 200
    assert delivery.response_body == '{"ok":true}'
    assert delivery.delivered_at is not None


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"id":"x"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert outgoing.sign("whsec_k", 1700000000, body) == f"t=1700000000,v1={expected}"


def test_an_old_or_tampered_signature_does_not_verify():
    body = b'{"id":"x"}'
    header = outgoing.sign("whsec_k", 1_700_000_000, body)
    assert outgoing.verify_signature("whsec_k", header, body, now=1_700_000_100)
    assert not outgoing.verify_signature("whsec_k", header, body, now=1_700_001_000)
    assert not outgoing.verify_signature("whsec_k", header, body + b" ", now=1_700_000_100)
    assert not outgoing.verify_signature("whsec_k", "v1=abc", body)


def test_a_failure_is_retried_with_backoff_and_then_fails(workspace_a, receiver):
    receiver.reply = (500, {}, b"database down", 0)
    make_endpoint(workspace_a, url=receiver.url)
    outgoing.emit(workspace_a, "message.bounced", {}, "bounced:1")
    delivery = deliveries(workspace_a).get()

    waits = []
    for _ in range(outgoing.MAX_ATTEMPTS):
        before = timezone.now()
        outgoing.deliver_ids(workspace_a, [delivery.pk])
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            waits.append(round((delivery.next_attempt_at - before).total_seconds() / 60))
            # the retry time has come
            WebhookDelivery.objects.for_workspace(workspace_a).filter(pk=delivery.pk).update(
                next_attempt_at=timezone.now()
            )

    assert waits == [1, 5, 30, 120, 360, 720]
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 7
    assert delivery.response_status == 500
    assert delivery.response_body == "database down"
    assert delivery.error == "HTTP 500: only a 2xx answer counts as delivered."
    assert len(receiver.seen) == 7


def test_a_delivery_that_is_not_due_is_not_sent(workspace_a, receiver):
    make_endpoint(workspace_a, url=receiver.url)
    outgoing.emit(workspace_a, "message.bounced", {}, "bounced:1")
    delivery = deliveries(workspace_a).get()
    WebhookDelivery.objects.for_workspace(workspace_a).filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + dt.timedelta(minutes=5)
    )
    assert outgoing.deliver_ids(workspace_a, [delivery.pk])["skipped"] == 1
    assert receiver.seen == []


def test_a_claimed_delivery_is_not_sent_twice(workspace_a, receiver):
    make_endpoint(workspace_a, url=receiver.url)
    outgoing.emit(workspace_a, "message.bounced", {}, "bounced:1")
    delivery = deliveries(workspace_a).get()
    now = timezone.now()
    assert outgoing._claim(workspace_a, delivery.pk, now) is not None
    assert outgoing._claim(workspace_a, delivery.pk, now) is None  # another worker has it
    assert outgoing.deliver_ids(workspace_a, [delivery.pk])["skipped"] == 1
    assert receiver.seen == []


def test_a_redirect_is_a_failure_that_says_why(workspace_a, receiver):
    receiver.reply = (301, {"Location": "https://elsewhere.example/"}, b"", 0)
    make_endpoint(workspace_a, url=receiver.url)
    outgoing.emit(workspace_a, "message.bounced", {}, "bounced:1")
    outgoing.deliver_ids(workspace_a, list(deliveries(workspace_a).values_list("pk", flat=True)))
    delivery = deliveries(workspace_a).get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "redirects are not followed" in delivery.error


def test_a_private_address_is_refused_at_delivery_time(workspace_a, settings, receiver):
    make_endpoint(workspace_a, url=receiver.url)
    outgoing.emit(workspace_a, "message.bounced", {}, "bounced:1")
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    outgoing.deliver_ids(workspace_a, list(deliveries(workspace_a).values_list("pk", flat=True)))
    delivery = deliveries(workspace_a).get()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "127.0.0.1 is a loopback address" in delivery.error
    assert receiver.seen == []


def _fail_for_good(workspace, endpoint, count):
    for _ in range(count):
        outgoing.emit(workspace, "message.bounced", {}, f"bounced:{time.monotonic_ns()}")
    due = WebhookDelivery.objects.for_workspace(workspace).filter(
        endpoint=endpoint, status=DeliveryStatus.PENDING
    )
    ids = list(due.values_list("pk", flat=True))
    due.update(attempts=outgoing.MAX_ATTEMPTS - 1)  # the last try of each
    outgoing.deliver_ids(workspace, ids)


def test_an_endpoint_is_disabled_after_n_deliveries_in_a_row_fail(workspace_a, settings, receiver):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 3
    receiver.reply = (503, {}, b"", 0)
    endpoint = make_endpoint(workspace_a, url=receiver.url)

    _fail_for_good(workspace_a, endpoint, 2)
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.consecutive_failures == 2

    receiver.reply = (200, {}, b"", 0)  # one success starts the count again
    outgoing.emit(workspace_a, "message.bounced", {}, "fine")
    outgoing.deliver_ids(workspace_a, [deliveries(workspace_a).last().pk])
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0

    receiver.reply = (503, {}, b"", 0)
    _fail_for_good(workspace_a, endpoint, 3)
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert "after 3 deliveries in a row failed" in endpoint.disabled_reason
    assert "HTTP 503" in endpoint.disabled_reason
    # no new deliveries for a disabled endpoint
    assert outgoing.emit(workspace_a, "message.bounced", {}, "later") == 0


def test_the_sweep_hands_on_due_deliveries_of_active_endpoints_only(workspace_a, receiver):
    live = make_endpoint(workspace_a, url=receiver.url)
    off = make_endpoint(workspace_a, url=receiver.url)
    outgoing.emit(workspace_a, "message.clicked", {}, "c1")
    WebhookEndpoint.objects.for_workspace(workspace_a).filter(pk=off.pk).update(active=False)
    outgoing.emit(workspace_a, "message.clicked", {}, "c2")  # to `live` only
    later = deliveries(workspace_a).filter(event_key="c2").get()
    WebhookDelivery.objects.for_workspace(workspace_a).filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )

    handed = outgoing.dispatch_due()

    assert handed == 1
    assert len(receiver.seen) == 1
    delivered = deliveries(workspace_a).get(status=DeliveryStatus.SUCCEEDED)
    assert (delivered.endpoint_id, delivered.event_key) == (live.pk, "c1")
    assert deliveries(workspace_a).filter(endpoint=off, status="pending").count() == 1


# --- the events ------------------------------------------------------------------------


def test_an_unsubscribe_announces_contact_unsubscribed(
    workspace_a, django_capture_on_commit_callbacks
):
    make_endpoint(workspace_a, events=["contact.unsubscribed"])
    contact = ContactFactory(workspace=workspace_a, status=SubscriptionStatus.SUBSCRIBED)
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.unsubscribe(
            workspace=workspace_a,
            contacts=Contact.objects.for_workspace(workspace_a).filter(pk=contact.pk),
            method="preferences",
        )
    delivery = deliveries(workspace_a).get()
    assert delivery.event == "contact.unsubscribed"
    assert delivery.payload["contact"]["id"] == str(contact.public_id)
    assert delivery.payload["contact"]["email"] == contact.email
    assert delivery.payload["contact"]["status"] == "unsubscribed"
    assert delivery.payload["method"] == "preferences"


def test_a_new_subscribed_contact_announces_contact_subscribed_but_an_import_does_not(
    workspace_a, django_capture_on_commit_callbacks
):
    make_endpoint(workspace_a, events=["contact.subscribed", "contact.unsubscribed"])
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.upsert_contacts(
            workspace=workspace_a, rows=[{"email": "new@example.com"}], source=Source.API
        )
        contact_services.upsert_contacts(
            workspace=workspace_a,
            rows=[{"email": "imported@example.com"}],
            source=Source.IMPORT,
            consent=contact_services.ConsentInput(method="import"),
        )
        contact_services.upsert_contacts(
            workspace=workspace_a,
            rows=[{"email": "unconsented@example.com"}],
            source=Source.MANUAL,
            subscribe=False,
        )
    [delivery] = deliveries(workspace_a)
    assert delivery.event == "contact.subscribed"
    assert delivery.payload["contact"]["email"] == "new@example.com"
    assert delivery.payload["method"] == "api"


def test_resubscribing_announces_contact_subscribed(
    workspace_a, django_capture_on_commit_callbacks
):
    make_endpoint(workspace_a, events=["contact.subscribed"])
    contact = ContactFactory(workspace=workspace_a, status=SubscriptionStatus.UNSUBSCRIBED)
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.set_subscription(
            workspace=workspace_a,
            contacts=Contact.objects.for_workspace(workspace_a).filter(pk=contact.pk),
            status=SubscriptionStatus.SUBSCRIBED,
            consent=contact_services.ConsentInput(method="manual"),
        )
    assert [d.event for d in deliveries(workspace_a)] == ["contact.subscribed"]


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        (MessageEventKind.BOUNCED, "message.bounced"),
        (MessageEventKind.COMPLAINED, "message.complained"),
        (MessageEventKind.OPENED, "message.opened"),
        (MessageEventKind.CLICKED, "message.clicked"),
    ],
)
def test_message_events_are_announced(workspace_a, receiver, kind, event):
    endpoint = make_endpoint(workspace_a, url=receiver.url, events=[event])
    message = make_message(workspace_a)
    recorded = MessageEvent.objects.for_workspace(workspace_a).create(
        workspace=workspace_a,
        message=message,
        kind=kind,
        occurred_at=timezone.now(),
        url="https://shop.example.com/sale" if kind == MessageEventKind.CLICKED else "",
    )

    message_event_recorded.send(
        sender=MessageEvent, workspace=workspace_a, message=message, kind=kind, event=recorded
    )
    message_event_recorded.send(  # a repeat of the same event is one delivery
        sender=MessageEvent, workspace=workspace_a, message=message, kind=kind, event=recorded
    )

    delivery = deliveries(workspace_a).get()
    assert delivery.endpoint == endpoint
    assert delivery.event == event
    data = delivery.payload
    assert data["message"]["id"] == str(message.public_id)
    assert data["message"]["to"] == message.to_email
    assert data["message"]["template"] == str(message.template.public_id)
    assert data["contact"]["id"] == str(message.contact.public_id)
    assert data["event"]["id"] == str(recorded.public_id)
    assert data["event"]["kind"] == kind
    assert data["event"]["machine"] is False
    if kind == MessageEventKind.CLICKED:
        assert data["event"]["url"] == "https://shop.example.com/sale"


def test_other_message_events_are_not_announced(workspace_a):
    make_endpoint(workspace_a)
    message = make_message(workspace_a)
    for kind in (MessageEventKind.DELIVERED, MessageEventKind.SOFT_BOUNCED):
        message_event_recorded.send(
            sender=MessageEvent, workspace=workspace_a, message=message, kind=kind, event=None
        )
    assert not deliveries(workspace_a).exists()


def test_a_conversion_is_announced_once(workspace_a):
    make_endpoint(workspace_a, events=["message.converted"])
    message = make_message(workspace_a)
    for _ in range(2):
        outgoing.emit_conversion(
            workspace_a, message=message, conversion_id="order-77", value=42, currency="EUR"
        )
    delivery = deliveries(workspace_a).get()
    assert delivery.event == "message.converted"
    assert delivery.payload["conversion"]["id"] == "order-77"
    assert delivery.payload["conversion"]["value"] == "42"
    assert delivery.payload["message"]["id"] == str(message.public_id)


def test_a_broken_receiver_of_the_signal_never_breaks_the_sender(workspace_a, monkeypatch):
    make_endpoint(workspace_a)
    message = make_message(workspace_a)
    monkeypatch.setattr(outgoing, "emit_many", lambda *a, **k: 1 / 0)
    message_event_recorded.send(
        sender=MessageEvent, workspace=workspace_a, message=message, kind="opened", event=None
    )  # logged, not raised


# --- the pages -------------------------------------------------------------------------


def url(name, workspace, *ids):
    return reverse(name, args=[workspace.slug, *ids])


def test_admin_adds_an_endpoint_and_sees_the_secret_once(admin_client_a, workspace_a, monkeypatch):
    monkeypatch.setattr(outgoing.safe_http, "_resolve", lambda host, port: ["93.184.216.34"])
    response = admin_client_a.post(
        url("webhook_new", workspace_a),
        {
            "url": "https://hooks.example.com/mailpath",
            "description": "CRM sync",
            "events": ["contact.subscribed", "message.clicked"],
        },
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.for_workspace(workspace_a).get()
    assert endpoint.events == ["contact.subscribed", "message.clicked"]
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    assert "will not be shown again" in response.content.decode()

    page = admin_client_a.get(url("webhook_edit", workspace_a, endpoint.public_id))
    assert page.status_code == 200
    assert endpoint.secret not in page.content.decode()


def test_an_unsafe_url_is_refused_with_the_reason(admin_client_a, workspace_a, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    response = admin_client_a.post(
        url("webhook_new", workspace_a),
        {"url": "http://169.254.169.254/latest/meta-data/", "events": ["message.opened"]},
    )
    assert response.status_code == 400
    assert "169.254.169.254 is a link-local address" in response.content.decode()
    assert not WebhookEndpoint.objects.for_workspace(workspace_a).exists()


def test_events_are_required(admin_client_a, workspace_a):
    response = admin_client_a.post(
        url("webhook_new", workspace_a), {"url": "https://hooks.example.com/"}
    )
    assert response.status_code == 400
    assert "Choose at least one event." in response.content.decode()


def test_viewers_read_but_only_admins_write(viewer_client, editor_client, workspace_a, receiver):
    endpoint = make_endpoint(workspace_a, url=receiver.url, description="Billing")
    assert viewer_client.get(url("webhook_list", workspace_a)).status_code == 200
    assert "Billing" in viewer_client.get(url("webhook_list", workspace_a)).content.decode()
    assert (
        viewer_client.get(url("webhook_deliveries", workspace_a, endpoint.public_id)).status_code
        == 200
    )
    for client in (viewer_client, editor_client):
        assert client.post(url("webhook_test", workspace_a, endpoint.public_id)).status_code == 403
        assert (
            client.post(url("webhook_delete", workspace_a, endpoint.public_id)).status_code == 403
        )
        assert (
            client.post(url("webhook_new", workspace_a), {"url": "https://x.example/"}).status_code
            == 403
        )
    assert receiver.seen == []
    assert WebhookEndpoint.objects.for_workspace(workspace_a).count() == 1


def test_an_outsider_gets_404(outsider_client, workspace_a):
    endpoint = make_endpoint(workspace_a)
    for name in ("webhook_edit", "webhook_deliveries"):
        assert outsider_client.get(url(name, workspace_a, endpoint.public_id)).status_code == 404


def test_another_workspaces_endpoint_is_404_in_your_own(owner_client, workspace_a, workspace_b):
    theirs = make_endpoint(workspace_b)
    for name in ("webhook_edit", "webhook_deliveries"):
        assert owner_client.get(url(name, workspace_a, theirs.public_id)).status_code == 404
    assert owner_client.post(url("webhook_test", workspace_a, theirs.public_id)).status_code == 404


def test_the_test_button_sends_a_ping_and_logs_it(admin_client_a, workspace_a, receiver):
    endpoint = make_endpoint(workspace_a, url=receiver.url, events=["message.opened"])
    response = admin_client_a.post(
        url("webhook_test", workspace_a, endpoint.public_id), follow=True
    )
    assert "Ping delivered: the endpoint answered 200." in response.content.decode()
    [seen] = receiver.seen
    assert seen["headers"]["X-Mailpath-Event"] == "ping"
    assert outgoing.verify_signature(
        endpoint.secret, seen["headers"]["X-Mailpath-Signature"], seen["body"]
    )
    log = response.content.decode()
    assert "ping" in log and "HTTP 200" in log


def test_a_failed_ping_says_why(admin_client_a, workspace_a, receiver):
    receiver.reply = (404, {}, b"no such hook", 0)
    endpoint = make_endpoint(workspace_a, url=receiver.url)
    response = admin_client_a.post(
        url("webhook_test", workspace_a, endpoint.public_id), follow=True
    )
    page = response.content.decode()
    assert "The ping was not delivered. HTTP 404" in page
    ping = deliveries(workspace_a).get()
    assert ping.status == DeliveryStatus.FAILED  # not retried
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0  # and not held against the endpoint


def test_the_log_shows_status_attempts_code_and_error_and_retry_now_delivers(
    admin_client_a, workspace_a, receiver
):
    receiver.reply = (500, {}, b"oops", 0)
    endpoint = make_endpoint(workspace_a, url=receiver.url)
    outgoing.emit(workspace_a, "message.opened", {"hello": "there"}, "o1")
    delivery = deliveries(workspace_a).get()
    WebhookDelivery.objects.for_workspace(workspace_a).filter(pk=delivery.pk).update(
        attempts=outgoing.MAX_ATTEMPTS - 1
    )
    outgoing.deliver_ids(workspace_a, [delivery.pk])

    page = admin_client_a.get(url("webhook_deliveries", workspace_a, endpoint.public_id))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Failed" in text and "HTTP 500" in text and "only a 2xx answer counts" in text
    assert "oops" in text and "&quot;hello&quot;: &quot;there&quot;" in text
    assert "Retry now" in text

    receiver.reply = (202, {}, b"", 0)
    retry = url("webhook_retry", workspace_a, endpoint.public_id, delivery.public_id)
    response = admin_client_a.post(retry, follow=True)
    assert "Delivered: the endpoint answered 202." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == outgoing.MAX_ATTEMPTS + 1


def test_retry_of_a_delivery_of_another_endpoint_is_404(admin_client_a, workspace_a):
    one, other = make_endpoint(workspace_a), make_endpoint(workspace_a)
    outgoing.emit(workspace_a, "message.opened", {}, "o1")
    theirs = deliveries(workspace_a).get(endpoint=other)
    retry = url("webhook_retry", workspace_a, one.public_id, theirs.public_id)
    assert admin_client_a.post(retry).status_code == 404


def test_rotating_the_secret_shows_the_new_one_once(admin_client_a, workspace_a):
    endpoint = make_endpoint(workspace_a)
    old = endpoint.secret
    response = admin_client_a.post(url("webhook_rotate_secret", workspace_a, endpoint.public_id))
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.secret in response.content.decode()


def test_a_disabled_endpoint_shows_why_and_turning_it_on_clears_the_count(
    admin_client_a, workspace_a, monkeypatch
):
    monkeypatch.setattr(outgoing.safe_http, "_resolve", lambda host, port: ["93.184.216.34"])
    endpoint = make_endpoint(
        workspace_a,
        active=False,
        consecutive_failures=20,
        disabled_reason="Disabled after 20 deliveries in a row failed.",
    )
    listing = admin_client_a.get(url("webhook_list", workspace_a)).content.decode()
    assert "Disabled after 20 deliveries in a row failed." in listing
    page = admin_client_a.get(url("webhook_edit", workspace_a, endpoint.public_id))
    assert "This endpoint is disabled." in page.content.decode()

    admin_client_a.post(
        url("webhook_edit", workspace_a, endpoint.public_id),
        {"url": endpoint.url, "events": endpoint.events, "active": "on"},
    )
    endpoint.refresh_from_db()
    assert endpoint.active
    assert endpoint.consecutive_failures == 0
    assert endpoint.disabled_reason == ""


def test_delete_removes_the_endpoint_and_its_log(admin_client_a, workspace_a):
    endpoint = make_endpoint(workspace_a)
    outgoing.emit(workspace_a, "message.opened", {}, "o1")
    response = admin_client_a.post(url("webhook_delete", workspace_a, endpoint.public_id))
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.for_workspace(workspace_a).exists()
    assert not deliveries(workspace_a).exists()


def test_the_list_page_query_count_does_not_grow_with_endpoints(
    admin_client_a, workspace_a, django_assert_max_num_queries
):
    for n in range(5):
        make_endpoint(workspace_a, url=f"https://hooks.example.com/{n}")
        outgoing.emit(workspace_a, "message.opened", {}, f"o{n}")
    with django_assert_max_num_queries(8):
        response = admin_client_a.get(url("webhook_list", workspace_a))
    assert response.content.decode().count("Delivery log") == 5

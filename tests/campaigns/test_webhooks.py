"""ESP tracking webhooks, posted to /anymail/<esp>/tracking/ in each ESP's documented format
and handled by Anymail's real parsers: authentication, signatures (Mailgun, Resend, Amazon
SNS), the mapping of each event, dedupe, out-of-order events, suppression and tenancy."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets as token_source
import time
import uuid
from typing import Any

import pytest
from anymail.signals import AnymailTrackingEvent
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.test import Client
from django.utils import timezone

from campaigns.models import EspConnection, Message, MessageEvent, MessageEventKind
from campaigns.sending import secrets, sns, webhooks
from campaigns.signals import message_event_recorded
from contacts import services as contact_services
from contacts.models import ConsentRecord, Contact, Event, SubscriptionStatus, Suppression
from tests.factories import ContactFactory

SECRET_A = "acme-webhook-secret-0123456789abcdef"
SECRET_B = "bloom-webhook-secret-0123456789abcdef"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"
MAILGUN_KEY = "mailgun-signing-key-of-acme"


# --- fixtures and helpers --------------------------------------------------------------------


def connect(workspace, provider="postmark", secret=SECRET_A, **credentials) -> EspConnection:
    connection, _ = EspConnection.objects.for_workspace(workspace).update_or_create(
        workspace=workspace,
        defaults={
            "provider": provider,
            "webhook_secret": secret,
            "credentials": secrets.encrypt(credentials) if credentials else "",
        },
    )
    return connection


@pytest.fixture
def acme(workspace_a):
    connect(workspace_a)
    return workspace_a


@pytest.fixture
def bloom(workspace_b):
    connect(workspace_b, secret=SECRET_B)
    return workspace_b


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)


def make_message(workspace, *, contact=None, status="sent", **fields) -> Message:
    contact = contact or ContactFactory(workspace=workspace)
    values = {
        "to_email": contact.email,
        "source": "campaign",
        "source_id": "spring-sale",
        "subject": "Spring sale",
        "status": status,
        "sent_at": timezone.now() - dt.timedelta(hours=1),
        "esp": "postmark",
        "esp_message_id": f"esp-{uuid.uuid4()}",
        "idempotency_key": f"test:{uuid.uuid4()}",
        **fields,
    }
    return Message.objects.for_workspace(workspace).create(
        workspace=workspace, contact=contact, **values
    )


@pytest.fixture
def message(acme):
    return make_message(acme, contact=ContactFactory(workspace=acme, email="jamie@example.com"))


def auth(workspace, secret=SECRET_A) -> dict[str, str]:
    raw = f"{workspace.public_id}:{secret}".encode()
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(raw).decode()}


def metadata(message) -> dict[str, str]:
    return {"workspace_id": str(message.workspace.public_id), "message_id": str(message.public_id)}


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def post(client, esp, payload, headers=None, content_type="application/json", body=None):
    body = body if body is not None else json.dumps(payload)
    return client.post(
        f"/anymail/{esp}/tracking/", data=body, content_type=content_type, **(headers or {})
    )


def events(message, kind=None):
    found = MessageEvent.objects.for_workspace(message.workspace_id).filter(message=message)
    return found.filter(kind=kind) if kind else found


def reload(message) -> Message:
    return Message.objects.for_workspace(message.workspace_id).get(pk=message.pk)


def contact_of(message) -> Contact:
    return Contact.objects.for_workspace(message.workspace_id).get(pk=message.contact_id)


def contact_events(message, name):
    return Event.objects.for_workspace(message.workspace_id).filter(
        contact_id=message.contact_id, name=name
    )


def nothing_written(message) -> bool:
    fresh = reload(message)
    return (
        not events(message).exists()
        and fresh.status == message.status
        and not Suppression.objects.for_workspace(message.workspace_id).exists()
    )


# --- Postmark ----------------------------------------------------------------------------------


def postmark(message, record_type, *, at=None, **fields) -> dict[str, Any]:
    at = at or timezone.now()
    payload: dict[str, Any] = {
        "RecordType": record_type,
        "ServerID": 23,
        "MessageStream": "broadcast",
        "MessageID": message.esp_message_id,
        "Recipient": message.to_email,
        "Tag": "spring",
        "Metadata": metadata(message),
    }
    if record_type == "Delivery":
        payload |= {"DeliveredAt": iso(at), "Details": "smtp;250 2.0.0 OK"}
    elif record_type in ("Bounce", "SpamComplaint"):
        payload |= {
            "ID": fields.pop("ID", 4323372036854775807),
            "Type": "HardBounce" if record_type == "Bounce" else "SpamComplaint",
            "TypeCode": 1,
            "Name": "Hard bounce",
            "Description": "The server was unable to deliver your message (unknown user).",
            "Details": "smtp;550 5.1.1 The email account does not exist.",
            "Email": message.to_email,
            "From": "hello@shop.example.com",
            "BouncedAt": iso(at),
            "Inactive": True,
            "CanActivate": True,
            "Subject": message.subject,
        }
        payload.pop("Recipient")
    elif record_type == "Open":
        payload |= {
            "FirstOpen": True,
            "ReceivedAt": iso(at),
            "Platform": "WebMail",
            "ReadSeconds": 5,
            "UserAgent": BROWSER,
        }
    elif record_type == "Click":
        payload |= {
            "ClickLocation": "HTML",
            "OriginalLink": "https://shop.example.com/sale",
            "ReceivedAt": iso(at),
            "Platform": "Desktop",
            "UserAgent": BROWSER,
        }
    elif record_type == "SubscriptionChange":
        payload |= {
            "ChangedAt": iso(at),
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        }
    payload.update(fields)
    return payload


@pytest.mark.parametrize(
    ("record_type", "fields", "kind", "status"),
    [
        ("Delivery", {}, MessageEventKind.DELIVERED, "delivered"),
        ("Bounce", {}, MessageEventKind.BOUNCED, "bounced"),
        ("Bounce", {"Type": "SoftBounce"}, MessageEventKind.SOFT_BOUNCED, "bounced"),
        ("Bounce", {"Type": "Transient"}, MessageEventKind.DEFERRED, "deferred"),
        ("Bounce", {"Type": "Blocked"}, MessageEventKind.REJECTED, "failed"),
        ("SpamComplaint", {}, MessageEventKind.COMPLAINED, "complained"),
        ("Open", {}, MessageEventKind.OPENED, "sent"),
        ("Click", {}, MessageEventKind.CLICKED, "sent"),
        ("SubscriptionChange", {}, MessageEventKind.UNSUBSCRIBED, "sent"),
    ],
)
def test_each_postmark_event_is_recorded_with_its_status(
    client, message, record_type, fields, kind, status
):
    response = post(
        client, "postmark", postmark(message, record_type, **fields), auth(message.workspace)
    )

    assert response.status_code == 200
    recorded = events(message).get()
    assert recorded.kind == kind
    assert recorded.event_id.startswith("postmark:")
    assert reload(message).status == status


def test_a_postmark_hard_bounce_suppresses_the_address_and_marks_the_contact(client, message):
    post(client, "postmark", postmark(message, "Bounce"), auth(message.workspace))

    fresh = reload(message)
    assert fresh.failure_reason.startswith("Hard bounce: The server was unable to deliver")
    assert "550 5.1.1" in fresh.failure_reason
    assert contact_services.is_suppressed(workspace=message.workspace, email=message.to_email)
    suppression = Suppression.objects.for_workspace(message.workspace).get()
    assert suppression.reason == "bounced"
    assert contact_of(message).status == SubscriptionStatus.BOUNCED


def test_a_soft_bounce_fails_the_message_but_keeps_the_address(client, message):
    post(
        client, "postmark", postmark(message, "Bounce", Type="SoftBounce"), auth(message.workspace)
    )

    assert reload(message).failure_reason.startswith("Soft bounce")
    assert not contact_services.is_suppressed(workspace=message.workspace, email=message.to_email)
    assert contact_of(message).status == SubscriptionStatus.SUBSCRIBED


def test_a_spam_complaint_suppresses_and_records_an_opt_out(client, message):
    post(client, "postmark", postmark(message, "SpamComplaint"), auth(message.workspace))

    assert contact_services.is_suppressed(workspace=message.workspace, email=message.to_email)
    assert Suppression.objects.for_workspace(message.workspace).get().reason == "complained"
    assert contact_of(message).status == SubscriptionStatus.COMPLAINED
    consent = ConsentRecord.objects.for_workspace(message.workspace).get()
    assert consent.kind == "opt_out"
    assert "Spam complaint reported by Postmark" in consent.source


def test_an_unsubscribe_reported_by_the_esp_unsubscribes_the_contact(client, message):
    post(client, "postmark", postmark(message, "SubscriptionChange"), auth(message.workspace))

    assert contact_of(message).status == SubscriptionStatus.UNSUBSCRIBED
    assert "Unsubscribe reported by Postmark" in (
        ConsentRecord.objects.for_workspace(message.workspace).get().source
    )
    # An unsubscribe is not a suppression: the address may opt in again.
    assert not Suppression.objects.for_workspace(message.workspace).exists()


# --- authentication ----------------------------------------------------------------------------


def test_missing_basic_auth_is_refused_and_writes_nothing(client, message):
    response = post(client, "postmark", postmark(message, "Bounce"))

    assert response.status_code == 400
    assert nothing_written(message)


@pytest.mark.parametrize(
    "credentials",
    [
        "wrong-password",
        "",
        SECRET_B,  # bloom's secret with acme's workspace id
    ],
)
def test_a_wrong_password_is_refused_and_writes_nothing(client, message, bloom, credentials):
    response = post(
        client, "postmark", postmark(message, "Bounce"), auth(message.workspace, credentials)
    )

    assert response.status_code == 400
    assert nothing_written(message)


def test_a_workspace_without_a_webhook_secret_cannot_be_called(client, workspace_a):
    message = make_message(workspace_a)  # no EspConnection at all
    response = post(client, "postmark", postmark(message, "Bounce"), auth(workspace_a, ""))

    assert response.status_code == 400
    assert nothing_written(message)


def test_another_workspaces_credentials_reach_none_of_its_messages(client, message, bloom):
    # Bloom authenticates correctly but names acme's workspace and message.
    response = post(client, "postmark", postmark(message, "Bounce"), auth(bloom, SECRET_B))

    assert response.status_code == 200  # accepted, so the ESP does not retry; ignored
    assert nothing_written(message)


def test_metadata_naming_another_workspaces_message_changes_nothing(client, message, bloom):
    theirs = make_message(bloom, contact=ContactFactory(workspace=bloom))
    payload = postmark(theirs, "Bounce")
    payload["Metadata"] = {
        "workspace_id": str(message.workspace.public_id),
        "message_id": str(theirs.public_id),
    }

    post(client, "postmark", payload, auth(message.workspace))
    post(client, "postmark", payload, auth(bloom, SECRET_B))

    assert nothing_written(theirs)
    assert nothing_written(message)
    assert not Suppression.objects.for_workspace(bloom).exists()


def test_the_installations_secret_reaches_the_workspace_named_in_metadata(
    client, message, settings
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "platform:platform-secret-0123456789"}
    header = "Basic " + base64.b64encode(b"platform:platform-secret-0123456789").decode()

    response = post(
        client, "postmark", postmark(message, "Delivery"), {"HTTP_AUTHORIZATION": header}
    )

    assert response.status_code == 200
    assert reload(message).status == "delivered"


def test_the_installations_secret_cannot_cross_workspaces_through_metadata(
    client, message, bloom, settings
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "platform:platform-secret-0123456789"}
    header = {
        "HTTP_AUTHORIZATION": "Basic "
        + base64.b64encode(b"platform:platform-secret-0123456789").decode()
    }
    theirs = make_message(bloom)
    payload = postmark(theirs, "Bounce")
    payload["Metadata"] = {
        "workspace_id": str(message.workspace.public_id),
        "message_id": str(theirs.public_id),
    }

    assert post(client, "postmark", payload, header).status_code == 200
    assert nothing_written(theirs)


def test_an_event_that_skipped_mailpaths_views_is_ignored(message):
    """A tracking signal from Anymail's own (unauthenticated) views writes nothing."""
    event = AnymailTrackingEvent(
        event_type="bounced",
        event_id="x1",
        metadata=metadata(message),
        reject_reason="bounced",
        esp_event={"Type": "HardBounce"},
    )
    webhooks.on_tracking(sender=object, event=event, esp_name="Postmark")

    assert nothing_written(message)


def test_the_message_is_found_by_the_esp_message_id_without_metadata(client, message):
    payload = postmark(message, "Delivery")
    payload["Metadata"] = {}

    post(client, "postmark", payload, auth(message.workspace))

    assert reload(message).status == "delivered"


# --- dedupe and order ------------------------------------------------------------------------


def test_a_replayed_event_writes_one_message_event(client, message):
    payload = postmark(message, "Delivery")  # Postmark gives deliveries no id: payload hash
    for _ in range(3):
        assert post(client, "postmark", payload, auth(message.workspace)).status_code == 200

    assert events(message).count() == 1
    assert contact_events(message, "email_received").count() == 1


def test_a_replayed_bounce_with_an_esp_id_writes_once(client, message):
    payload = postmark(message, "Bounce", ID=991)
    post(client, "postmark", payload, auth(message.workspace))
    post(client, "postmark", payload, auth(message.workspace))

    assert events(message).count() == 1
    assert ConsentRecord.objects.for_workspace(message.workspace).count() == 1


def test_delivered_after_opened_moves_forward_and_keeps_the_open(client, message):
    now = timezone.now()
    post(client, "postmark", postmark(message, "Open", at=now), auth(message.workspace))
    post(
        client,
        "postmark",
        postmark(message, "Delivery", at=now - dt.timedelta(seconds=30)),
        auth(message.workspace),
    )

    fresh = reload(message)
    assert fresh.status == "delivered"
    assert fresh.opened_at == now
    assert fresh.delivered_at < fresh.opened_at


def test_delivered_after_bounced_leaves_the_message_bounced(client, message):
    now = timezone.now()
    post(client, "postmark", postmark(message, "Bounce", at=now), auth(message.workspace))
    post(
        client,
        "postmark",
        postmark(message, "Delivery", at=now - dt.timedelta(minutes=1)),
        auth(message.workspace),
    )

    fresh = reload(message)
    assert fresh.status == "bounced"
    assert fresh.delivered_at is None
    assert events(message).count() == 2  # both kept in the log


def test_a_late_deferral_does_not_undo_a_delivery(client, message):
    now = timezone.now()
    post(client, "postmark", postmark(message, "Delivery", at=now), auth(message.workspace))
    post(
        client,
        "postmark",
        postmark(message, "Bounce", Type="Transient", ID=5, at=now - dt.timedelta(minutes=5)),
        auth(message.workspace),
    )

    assert reload(message).status == "delivered"


def test_a_complaint_after_delivery_is_final(client, message):
    now = timezone.now()
    post(client, "postmark", postmark(message, "Delivery", at=now), auth(message.workspace))
    post(client, "postmark", postmark(message, "SpamComplaint", at=now), auth(message.workspace))
    post(
        client,
        "postmark",
        postmark(message, "Delivery", at=now + dt.timedelta(seconds=1), Details="again"),
        auth(message.workspace),
    )

    fresh = reload(message)
    assert fresh.status == "complained"
    assert fresh.delivered_at is not None


def test_the_earliest_delivery_time_is_kept(client, message):
    now = timezone.now()
    late, early = now, now - dt.timedelta(minutes=3)
    post(client, "postmark", postmark(message, "Delivery", at=late), auth(message.workspace))
    post(
        client,
        "postmark",
        postmark(message, "Delivery", at=early, Details="dup"),
        auth(message.workspace),
    )

    assert abs((reload(message).delivered_at - early).total_seconds()) < 0.001


# --- contact events --------------------------------------------------------------------------


def test_the_first_human_open_and_click_become_contact_events_once(client, message):
    now = timezone.now()
    for seconds in (0, 60):
        at = now + dt.timedelta(seconds=seconds)
        post(client, "postmark", postmark(message, "Open", at=at), auth(message.workspace))
        post(client, "postmark", postmark(message, "Click", at=at), auth(message.workspace))

    assert events(message, MessageEventKind.OPENED).count() == 2
    assert events(message, MessageEventKind.CLICKED).count() == 2
    opened = contact_events(message, "email_opened").get()
    assert opened.properties["human"] is True
    assert opened.properties["campaign_id"] == "spring-sale"
    clicked = contact_events(message, "email_clicked").get()
    assert clicked.properties["url"] == "https://shop.example.com/sale"


def test_an_esp_open_after_our_own_pixel_is_not_counted_again(client, message):
    Message.objects.for_workspace(message.workspace).filter(pk=message.pk).update(
        opened_at=timezone.now() - dt.timedelta(minutes=5)
    )

    post(client, "postmark", postmark(message, "Open"), auth(message.workspace))

    assert events(message, MessageEventKind.OPENED).count() == 1
    assert not contact_events(message, "email_opened").exists()


def test_a_proxy_open_is_kept_as_a_machine_event_only(client, message):
    payload = postmark(message, "Open", UserAgent="Mozilla/5.0")  # Apple's privacy proxy

    post(client, "postmark", payload, auth(message.workspace))

    opened = events(message).get()
    assert opened.machine is True
    assert reload(message).opened_at is None
    assert not contact_events(message, "email_opened").exists()


def test_each_new_event_is_announced_once_on_commit(
    client, message, django_capture_on_commit_callbacks
):
    heard = []

    def listen(sender, **kwargs):
        heard.append(kwargs["kind"])

    message_event_recorded.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            payload = postmark(message, "Bounce", ID=77)
            post(client, "postmark", payload, auth(message.workspace))
            post(client, "postmark", payload, auth(message.workspace))
    finally:
        message_event_recorded.disconnect(listen)

    assert heard == [MessageEventKind.BOUNCED]


# --- Mailgun -----------------------------------------------------------------------------------


@pytest.fixture
def mailgun_message(acme):
    connect(acme, "mailgun", api_key="key-api", webhook_signing_key=MAILGUN_KEY)
    return make_message(acme, esp="mailgun", esp_message_id="<20240301.1@mg.shop.example.com>")


def mailgun(message, event, *, key=MAILGUN_KEY, **fields) -> dict[str, Any]:
    token = token_source.token_hex(25)
    stamp = str(int(time.time()))
    signature = hmac.new(key.encode(), f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    data: dict[str, Any] = {
        "event": event,
        "timestamp": time.time(),
        "id": token_source.token_urlsafe(16),
        "recipient": message.to_email,
        "tags": ["spring"],
        "user-variables": metadata(message),
        "message": {
            "headers": {
                "message-id": message.esp_message_id.strip("<>"),
                "to": message.to_email,
                "from": "hello@shop.example.com",
                "subject": message.subject,
            }
        },
        "delivery-status": {"code": 250, "message": "OK", "description": ""},
    }
    data.update(fields)
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": data,
    }


@pytest.mark.parametrize(
    ("event", "fields", "kind", "status"),
    [
        ("delivered", {}, MessageEventKind.DELIVERED, "delivered"),
        (
            "failed",
            {
                "severity": "permanent",
                "reason": "bounce",
                "delivery-status": {
                    "code": 550,
                    "message": "5.1.1 No such user",
                    "description": "",
                },
            },
            MessageEventKind.BOUNCED,
            "bounced",
        ),
        (
            "failed",
            {"severity": "temporary", "reason": "generic"},
            MessageEventKind.DEFERRED,
            "deferred",
        ),
        ("complained", {}, MessageEventKind.COMPLAINED, "complained"),
        ("opened", {"client-info": {"user-agent": BROWSER}}, MessageEventKind.OPENED, "sent"),
        (
            "clicked",
            {"url": "https://shop.example.com/sale", "client-info": {"user-agent": BROWSER}},
            MessageEventKind.CLICKED,
            "sent",
        ),
        ("unsubscribed", {}, MessageEventKind.UNSUBSCRIBED, "sent"),
    ],
)
def test_each_mailgun_event_is_recorded(client, mailgun_message, event, fields, kind, status):
    response = post(
        client,
        "mailgun",
        mailgun(mailgun_message, event, **fields),
        auth(mailgun_message.workspace),
    )

    assert response.status_code == 200
    assert events(mailgun_message).get().kind == kind
    assert reload(mailgun_message).status == status


def test_a_mailgun_permanent_failure_suppresses(client, mailgun_message):
    payload = mailgun(mailgun_message, "failed", severity="permanent", reason="bounce")
    post(client, "mailgun", payload, auth(mailgun_message.workspace))

    assert contact_services.is_suppressed(
        workspace=mailgun_message.workspace, email=mailgun_message.to_email
    )


def test_a_mailgun_webhook_with_a_bad_signature_is_refused(client, mailgun_message):
    payload = mailgun(mailgun_message, "failed", key="someone-elses-key", severity="permanent")

    response = post(client, "mailgun", payload, auth(mailgun_message.workspace))

    assert response.status_code == 400
    assert nothing_written(mailgun_message)


def test_a_mailgun_webhook_is_refused_when_the_workspace_has_no_signing_key(client, acme):
    connect(acme, "mailgun")  # no credentials stored
    message = make_message(acme, esp="mailgun")

    response = post(client, "mailgun", mailgun(message, "delivered"), auth(acme))

    assert response.status_code == 400
    assert nothing_written(message)


# --- SendGrid ----------------------------------------------------------------------------------


@pytest.fixture
def sendgrid_message(acme):
    connect(acme, "sendgrid", api_key="SG.key")
    return make_message(acme, esp="sendgrid", esp_message_id="<14c5d75ce93.dfd.64b469@ismtpd>")


def sendgrid(message, event, **fields) -> dict[str, Any]:
    return {
        "email": message.to_email,
        "timestamp": int(time.time()),
        "smtp-id": message.esp_message_id,
        "event": event,
        "category": ["spring"],
        "sg_event_id": token_source.token_urlsafe(16),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **metadata(message),
        **fields,
    }


@pytest.mark.parametrize(
    ("event", "fields", "kind", "status"),
    [
        ("delivered", {"response": "250 OK"}, MessageEventKind.DELIVERED, "delivered"),
        (
            "bounce",
            {"type": "bounce", "reason": "500 unknown recipient", "status": "5.0.0"},
            MessageEventKind.BOUNCED,
            "bounced",
        ),
        (
            "bounce",
            {"type": "blocked", "reason": "550 blocked by policy", "status": "5.7.1"},
            MessageEventKind.SOFT_BOUNCED,
            "bounced",
        ),
        (
            "deferred",
            {"response": "400 try again later", "attempt": "5"},
            MessageEventKind.DEFERRED,
            "deferred",
        ),
        ("dropped", {"reason": "Bounced Address"}, MessageEventKind.REJECTED, "failed"),
        ("spamreport", {}, MessageEventKind.COMPLAINED, "complained"),
        ("open", {"useragent": BROWSER, "ip": "203.0.113.9"}, MessageEventKind.OPENED, "sent"),
        (
            "click",
            {"useragent": BROWSER, "url": "https://shop.example.com/sale"},
            MessageEventKind.CLICKED,
            "sent",
        ),
        ("unsubscribe", {}, MessageEventKind.UNSUBSCRIBED, "sent"),
    ],
)
def test_each_sendgrid_event_is_recorded(client, sendgrid_message, event, fields, kind, status):
    payload = [sendgrid(sendgrid_message, event, **fields)]

    response = post(client, "sendgrid", payload, auth(sendgrid_message.workspace))

    assert response.status_code == 200
    assert events(sendgrid_message).get().kind == kind
    assert reload(sendgrid_message).status == status


def test_a_sendgrid_drop_for_an_earlier_bounce_suppresses_here_too(client, sendgrid_message):
    payload = [sendgrid(sendgrid_message, "dropped", reason="Bounced Address")]
    post(client, "sendgrid", payload, auth(sendgrid_message.workspace))

    assert Suppression.objects.for_workspace(sendgrid_message.workspace).get().reason == "bounced"


def test_a_sendgrid_batch_with_a_repeated_event_counts_it_once(client, sendgrid_message):
    delivered = sendgrid(sendgrid_message, "delivered")
    opened = sendgrid(sendgrid_message, "open", useragent=BROWSER)
    post(client, "sendgrid", [delivered, opened, delivered], auth(sendgrid_message.workspace))
    post(client, "sendgrid", [opened], auth(sendgrid_message.workspace))

    assert sorted(events(sendgrid_message).values_list("kind", flat=True)) == [
        "delivered",
        "opened",
    ]


def test_a_sendgrid_machine_open_is_flagged(client, sendgrid_message):
    payload = [sendgrid(sendgrid_message, "open", useragent=BROWSER, sg_machine_open=True)]
    post(client, "sendgrid", payload, auth(sendgrid_message.workspace))

    assert events(sendgrid_message).get().machine is True
    assert reload(sendgrid_message).opened_at is None


def test_a_scanner_click_right_after_delivery_is_flagged(client, sendgrid_message):
    now = timezone.now()
    Message.objects.for_workspace(sendgrid_message.workspace).filter(pk=sendgrid_message.pk).update(
        delivered_at=now, status="delivered"
    )
    click = sendgrid(
        sendgrid_message,
        "click",
        useragent=BROWSER,
        url="https://shop.example.com/",
        timestamp=int(now.timestamp()) + 2,
    )
    post(client, "sendgrid", [click], auth(sendgrid_message.workspace))

    assert events(sendgrid_message).get().machine is True
    assert reload(sendgrid_message).clicked_at is None


def test_sendgrid_signed_webhooks_are_checked_when_a_key_is_stored(client, acme):
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    connect(acme, "sendgrid", api_key="SG.key", webhook_verification_key=public.decode())
    message = make_message(acme, esp="sendgrid")
    body = json.dumps([sendgrid(message, "delivered")]).encode()
    stamp = str(int(time.time()))
    good = base64.b64encode(private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    signed = {
        **auth(acme),
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": stamp,
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": good.decode(),
    }

    unsigned = post(client, "sendgrid", None, auth(acme), body=body)
    assert unsigned.status_code == 400
    assert nothing_written(message)

    assert post(client, "sendgrid", None, signed, body=body).status_code == 200
    assert reload(message).status == "delivered"


# --- Brevo, Mailjet, SparkPost: their bounce fields ---------------------------------------------


@pytest.mark.parametrize(
    ("esp", "payload", "kind"),
    [
        ("brevo", {"event": "hard_bounce", "reason": "550 unknown user"}, "bounced"),
        ("brevo", {"event": "soft_bounce", "reason": "452 mailbox full"}, "soft_bounced"),
        ("mailjet", {"event": "bounce", "hard_bounce": True, "error": "user unknown"}, "bounced"),
        (
            "mailjet",
            {"event": "bounce", "hard_bounce": False, "error": "quota exceeded"},
            "soft_bounced",
        ),
        ("sparkpost", {"type": "bounce", "bounce_class": "10"}, "bounced"),
        ("sparkpost", {"type": "bounce", "bounce_class": "22"}, "soft_bounced"),
    ],
)
def test_hard_and_soft_bounces_of_other_esps(client, message, esp, payload, kind):
    connect(message.workspace, esp)
    meta = metadata(message)
    if esp == "brevo":
        body: Any = {
            **payload,
            "email": message.to_email,
            "id": 1,
            "message-id": "<brevo-1@smtp-relay>",
            "ts_epoch": int(time.time() * 1000),
            "X-Mailin-custom": json.dumps(meta),
        }
    elif esp == "mailjet":
        body = {
            **payload,
            "time": int(time.time()),
            "MessageID": 1924,
            "email": message.to_email,
            "Payload": json.dumps(meta),
        }
    else:
        body = [
            {
                "msys": {
                    "message_event": {
                        **payload,
                        "timestamp": str(int(time.time())),
                        "message_id": "sp-1",
                        "event_id": token_source.token_hex(8),
                        "rcpt_to": message.to_email,
                        "rcpt_meta": meta,
                        "raw_reason": "550 5.1.1 no such user",
                    }
                }
            }
        ]

    assert post(client, esp, body, auth(message.workspace)).status_code == 200
    assert events(message).get().kind == kind
    suppressed = contact_services.is_suppressed(workspace=message.workspace, email=message.to_email)
    assert suppressed is (kind == "bounced")


# --- Resend (Svix signatures) ------------------------------------------------------------------


def svix_headers(secret: str, body: bytes, stamp: int | None = None) -> dict[str, str]:
    message_id = f"msg_{token_source.token_hex(8)}"
    stamp = stamp or int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(
        hmac.digest(key, f"{message_id}.{stamp}.".encode() + body, "sha256")
    ).decode()
    return {
        "HTTP_SVIX_ID": message_id,
        "HTTP_SVIX_TIMESTAMP": str(stamp),
        "HTTP_SVIX_SIGNATURE": f"v1,{signature}",
    }


def test_resend_signatures_are_checked(client, acme):
    secret = "whsec_" + base64.b64encode(token_source.token_bytes(24)).decode()
    connect(acme, "resend", api_key="re_key", signing_secret=secret)
    message = make_message(acme, esp="resend")
    body = json.dumps(
        {
            "type": "email.bounced",
            "created_at": iso(timezone.now()),
            "data": {
                "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
                "to": [message.to_email],
                "subject": message.subject,
                "headers": [{"name": "X-Metadata", "value": json.dumps(metadata(message))}],
                "bounce": {
                    "message": "The recipient's mail server permanently rejected the email.",
                    "subType": "General",
                    "type": "Permanent",
                },
            },
        }
    ).encode()

    forged = {**auth(acme), **svix_headers("whsec_" + base64.b64encode(b"x" * 24).decode(), body)}
    stale = {**auth(acme), **svix_headers(secret, body, stamp=int(time.time()) - 3600)}
    assert post(client, "resend", None, forged, body=body).status_code == 400
    assert post(client, "resend", None, stale, body=body).status_code == 400
    assert nothing_written(message)

    signed = {**auth(acme), **svix_headers(secret, body)}
    assert post(client, "resend", None, signed, body=body).status_code == 200
    assert events(message).get().kind == "bounced"
    assert contact_services.is_suppressed(workspace=acme, email=message.to_email)


# --- Amazon SES through SNS ------------------------------------------------------------------

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    "&TopicArn=arn:aws:sns:us-east-1:123456789012:mailpath-ses&Token=2336412f37fb687f5d51e6e2425"
)


@pytest.fixture(scope="module")
def sns_signer():
    """A self-signed stand-in for the certificate SNS publishes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def aws(monkeypatch, sns_signer):
    """What the webhook fetched from AWS (no network: the certificate is ours)."""
    fetched: list[str] = []

    def fake_fetch(url):
        fetched.append(url)
        if url == CERT_URL:
            return sns_signer[1]
        if url == SUBSCRIBE_URL:
            return b"<ConfirmSubscriptionResponse/>"
        raise sns.SnsSignatureInvalid(f"unexpected fetch of {url}")

    sns.clear_cache()
    monkeypatch.setattr(sns, "fetch", fake_fetch)
    yield fetched
    sns.clear_cache()


def sign(key, body: dict[str, Any], version: str = "1") -> dict[str, Any]:
    body = {
        **body,
        "SignatureVersion": version,
        "SigningCertURL": body.get("SigningCertURL", CERT_URL),
    }
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    body["Signature"] = base64.b64encode(
        key.sign(sns.string_to_sign(body), padding.PKCS1v15(), algorithm)
    ).decode()
    return body


def ses_notification(message, event_type, detail: dict[str, Any]) -> dict[str, Any]:
    ses_event = {
        "eventType": event_type,
        "mail": {
            "timestamp": iso(timezone.now() - dt.timedelta(minutes=1)),
            "source": "hello@shop.example.com",
            "sendingAccountId": "123456789012",
            "messageId": message.esp_message_id,
            "destination": [message.to_email],
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "hello@shop.example.com"},
                {"name": "To", "value": message.to_email},
                {"name": "X-Metadata", "value": json.dumps(metadata(message))},
            ],
            "tags": {"ses:configuration-set": ["mailpath"]},
        },
        event_type.lower(): detail,
    }
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:mailpath-ses",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": iso(timezone.now()),
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&x=1",
    }


def post_sns(client, body, headers):
    return client.post(
        "/anymail/amazon_ses/tracking/",
        data=json.dumps(body),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=body["Type"],
        HTTP_X_AMZ_SNS_MESSAGE_ID=body["MessageId"],
        **headers,
    )


BOUNCE = {
    "bounceType": "Permanent",
    "bounceSubType": "General",
    "bouncedRecipients": [
        {
            "emailAddress": "jamie@example.com",
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
        }
    ],
    "timestamp": "2024-03-01T10:00:00.000Z",
    "feedbackId": "0100018e-bounce",
}


@pytest.fixture
def ses_message(acme):
    connect(acme, "amazon_ses")
    contact = ContactFactory(workspace=acme, email="jamie@example.com")
    return make_message(acme, contact=contact, esp="amazon_ses", esp_message_id="0100018e-ses-1")


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_ses_bounce_is_recorded_and_suppresses(
    client, aws, sns_signer, ses_message, version
):
    body = sign(sns_signer[0], ses_notification(ses_message, "Bounce", BOUNCE), version)

    response = post_sns(client, body, auth(ses_message.workspace))

    assert response.status_code == 200
    assert events(ses_message).get().kind == "bounced"
    assert reload(ses_message).failure_reason.startswith("Hard bounce: Permanent: General")
    assert contact_services.is_suppressed(
        workspace=ses_message.workspace, email="jamie@example.com"
    )


def test_a_transient_ses_bounce_is_soft(client, aws, sns_signer, ses_message):
    soft = {**BOUNCE, "bounceType": "Transient", "bounceSubType": "MailboxFull"}
    body = sign(sns_signer[0], ses_notification(ses_message, "Bounce", soft))

    post_sns(client, body, auth(ses_message.workspace))

    assert events(ses_message).get().kind == "soft_bounced"
    assert not Suppression.objects.for_workspace(ses_message.workspace).exists()


def test_ses_deliveries_and_complaints_map(client, aws, sns_signer, ses_message):
    delivery = {
        "timestamp": iso(timezone.now()),
        "processingTimeMillis": 546,
        "recipients": ["jamie@example.com"],
        "smtpResponse": "250 ok",
    }
    complaint = {
        "complainedRecipients": [{"emailAddress": "jamie@example.com"}],
        "timestamp": iso(timezone.now()),
        "feedbackId": "0100018e-complaint",
        "complaintFeedbackType": "abuse",
    }
    for event_type, detail in (("Delivery", delivery), ("Complaint", complaint)):
        body = sign(sns_signer[0], ses_notification(ses_message, event_type, detail))
        assert post_sns(client, body, auth(ses_message.workspace)).status_code == 200

    assert reload(ses_message).status == "complained"
    assert contact_of(ses_message).status == SubscriptionStatus.COMPLAINED


def test_a_forged_sns_message_is_refused(client, aws, sns_signer, ses_message):
    body = sign(sns_signer[0], ses_notification(ses_message, "Delivery", {"recipients": []}))
    body["Message"] = ses_notification(ses_message, "Bounce", BOUNCE)["Message"]  # swapped

    response = post_sns(client, body, auth(ses_message.workspace))

    assert response.status_code == 403
    assert nothing_written(ses_message)


def test_an_sns_message_signed_with_another_key_is_refused(client, aws, ses_message):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = sign(other, ses_notification(ses_message, "Bounce", BOUNCE))

    assert post_sns(client, body, auth(ses_message.workspace)).status_code == 403
    assert nothing_written(ses_message)


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/not-a-certificate.txt",
    ],
)
def test_a_certificate_from_outside_aws_is_never_fetched(
    client, aws, sns_signer, ses_message, cert_url
):
    body = ses_notification(ses_message, "Bounce", BOUNCE)
    body["SigningCertURL"] = cert_url
    body = sign(sns_signer[0], body)

    assert post_sns(client, body, auth(ses_message.workspace)).status_code == 403
    assert aws == []
    assert nothing_written(ses_message)


def test_an_unsigned_sns_message_is_refused(client, aws, ses_message):
    body = ses_notification(ses_message, "Bounce", BOUNCE)

    assert post_sns(client, body, auth(ses_message.workspace)).status_code == 403
    assert nothing_written(ses_message)


def test_sns_gets_a_401_challenge_before_sending_credentials(client, aws, sns_signer, ses_message):
    body = sign(sns_signer[0], ses_notification(ses_message, "Bounce", BOUNCE))

    response = post_sns(client, body, {})

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert nothing_written(ses_message)


def test_a_replayed_sns_message_writes_nothing_new(client, aws, sns_signer, ses_message):
    body = sign(sns_signer[0], ses_notification(ses_message, "Bounce", BOUNCE))
    for _ in range(2):
        assert post_sns(client, body, auth(ses_message.workspace)).status_code == 200

    assert events(ses_message).count() == 1
    assert aws == [CERT_URL]  # the certificate is fetched once and cached


def test_an_sns_subscription_is_confirmed_once_signed_and_authenticated(
    client, aws, sns_signer, acme
):
    connect(acme, "amazon_ses")
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e2425",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:mailpath-ses",
        "Message": "You have chosen to subscribe to the topic ...",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": iso(timezone.now()),
    }
    forged = sign(sns_signer[0], confirmation)
    forged["SubscribeURL"] = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&x=2"
    assert post_sns(client, forged, auth(acme)).status_code == 403
    assert SUBSCRIBE_URL not in aws

    assert post_sns(client, sign(sns_signer[0], confirmation), auth(acme)).status_code == 200
    assert aws[-1] == SUBSCRIBE_URL


def test_the_sns_string_to_sign_follows_the_aws_order():
    body = {
        "Type": "Notification",
        "MessageId": "m1",
        "TopicArn": "arn",
        "Message": "hello",
        "Timestamp": "t",
        "Subject": "s",
        "UnsubscribeURL": "ignored",
    }
    assert sns.string_to_sign(body) == (
        b"Message\nhello\nMessageId\nm1\nSubject\ns\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
    )
    del body["Subject"]
    assert b"Subject" not in sns.string_to_sign(body)

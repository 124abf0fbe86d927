"""Delivery: claiming, policies, personalisation, the ESP hand-off and its errors, and
reconciling rows a dead worker left behind. Anymail's test backend stands in for the ESP,
and the shared mock ESP (a subprocess speaking Postmark's API) referees exactly-once."""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import time_machine
from anymail.exceptions import AnymailRequestsAPIError
from django.core import mail
from django.db import connection as db
from django.utils import timezone

from campaigns.models import (
    EspConnection,
    Message,
    MessageSource,
    MessageStatus,
    SendingPolicy,
)
from campaigns.sending import deliver, outbox, secrets
from contacts.models import Event, Suppression, email_hash
from tests.factories import ContactFactory, EmailTemplateFactory, TagFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db
MOCK_ESP = Path(os.environ.get("MAILPATH_MOCK_ESP", "/work/shared/tools/mock_esp.py"))


# --- the mock ESP ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_mock_esp(*args: str) -> Iterator[str]:
    """The shared mock ESP in a subprocess on a free port; yields its base URL."""
    if not MOCK_ESP.exists():
        pytest.skip(f"the mock ESP is not at {MOCK_ESP} (set MAILPATH_MOCK_ESP)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(MOCK_ESP), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                requests.get(url + "_stats", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def mock_stats(url: str) -> dict:
    return requests.get(url + "_stats", timeout=5).json()


def connect_to_mock(workspace, url: str, rate: int = 5000) -> EspConnection:
    """The workspace sends through Postmark, whose API is the mock."""
    EspConnection.objects.for_workspace(workspace).delete()
    return EspConnection.objects.create(
        workspace=workspace,
        provider="postmark",
        credentials=secrets.encrypt({"server_token": "test-token"}),
        settings={"api_url": url},
        rate_per_second=rate,
        status="ok",
    )


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def anymail_test_backend(settings, monkeypatch):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.MAILPATH_CONNECTION_FACTORY = "campaigns.sending.esp.build_connection"
    mail.outbox = []
    monkeypatch.setattr("campaigns.tasks.deliver_queued.delay", lambda *a: None)


def queue(workspace, contacts, template=None, source_id="cmp_1", **kwargs) -> None:
    template = template or EmailTemplateFactory(workspace=workspace)
    outbox.enqueue(
        workspace,
        template=template,
        contacts=contacts,
        source=kwargs.pop("source", MessageSource.CAMPAIGN),
        source_id=source_id,
        **kwargs,
    )


def send_all() -> dict:
    return dict(deliver.deliver_queued(time_budget=30))


def rows(workspace):
    return Message.objects.for_workspace(workspace).order_by("id")


def no_policy(workspace, **fields) -> SendingPolicy:
    return SendingPolicy.objects.create(
        workspace=workspace, daily_cap=None, weekly_cap=None, **fields
    )


# --- delivering through Anymail ----------------------------------------------------------


def test_each_message_is_personalised_tracked_and_recorded(workspace_a):
    template = EmailTemplateFactory(
        workspace=workspace_a,
        subject="Hi {{ contact.first_name }} ({{ contact.tags | join: '+' }}), "
        "order {{ event.properties.order_id }}",
    )
    contact = ContactFactory(workspace=workspace_a, first_name="Ann", email="ann@example.com")
    contact.tags.add(TagFactory(workspace=workspace_a, name="vip"))
    contact.tags.add(TagFactory(workspace=workspace_a, name="early"))
    event = {"name": "Order Completed", "properties": {"order_id": "A-17"}, "occurred_at": ""}
    queue(workspace_a, [contact], template=template, context=event)

    report = send_all()

    assert report["sent"] == 1
    [email] = mail.outbox
    message = rows(workspace_a).get()
    assert email.subject == "Hi Ann (early+vip), order A-17"
    assert email.to == ["ann@example.com"]
    assert email.from_email == "Shop <hello@shop.example.com>"
    assert "Welcome, Ann!" in email.body
    html = email.alternatives[0][0]
    assert "/c/" in html and "https://example.com/start" not in html.split("?u=")[0]
    assert "/o/" in html  # the open pixel
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.extra_headers["List-Unsubscribe"].startswith("<http")
    assert "mailto:" in email.extra_headers["List-Unsubscribe"]
    assert email.metadata == {
        "workspace_id": str(workspace_a.public_id),
        "message_id": str(message.public_id),
    }
    assert message.status == MessageStatus.SENT
    assert message.subject == "Hi Ann (early+vip), order A-17"
    assert message.esp == "sandbox" and message.esp_message_id == "0"
    assert message.sent_at is not None and message.attempts == 1
    received = Event.objects.for_workspace(workspace_a).get(name="email_received")
    assert received.contact_id == contact.pk
    assert received.properties == {"campaign_id": "cmp_1", "message_id": str(message.public_id)}


def test_a_message_that_fails_to_personalise_fails_alone_with_the_reason(workspace_a):
    template = EmailTemplateFactory(workspace=workspace_a, subject="{{ contact.first_name }}")
    named = ContactFactory(workspace=workspace_a, first_name="Bo")
    nameless = ContactFactory(workspace=workspace_a, first_name="")
    queue(workspace_a, [named, nameless], template=template)

    send_all()

    assert [e.to for e in mail.outbox] == [[named.email]]
    failed = rows(workspace_a).get(contact=nameless)
    assert failed.status == MessageStatus.FAILED
    assert failed.failure_reason == "personalisation failed: the subject rendered empty"
    assert rows(workspace_a).get(contact=named).status == MessageStatus.SENT


def test_a_deleted_template_fails_its_messages(workspace_a):
    template = EmailTemplateFactory(workspace=workspace_a)
    queue(workspace_a, [ContactFactory(workspace=workspace_a)], template=template)
    template.delete()

    send_all()

    assert mail.outbox == []
    assert rows(workspace_a).get().failure_reason == (
        "personalisation failed: the template was deleted"
    )


def test_suppressed_unsubscribed_and_bounced_contacts_get_no_marketing(workspace_a):
    fine = ContactFactory(workspace=workspace_a)
    left = ContactFactory(workspace=workspace_a, status="unsubscribed")
    bounced = ContactFactory(workspace=workspace_a, status="bounced")
    listed = ContactFactory(workspace=workspace_a)
    Suppression.objects.create(
        workspace=workspace_a, email_hash=email_hash(listed.email), reason="complained"
    )
    queue(workspace_a, [fine, left, bounced, listed])

    report = send_all()

    assert [e.to for e in mail.outbox] == [[fine.email]]
    assert report["sent"] == 1 and report["suppressed"] == 3
    by_contact = {m.contact_id: m for m in rows(workspace_a)}
    assert by_contact[left.pk].status == MessageStatus.SUPPRESSED
    assert by_contact[left.pk].failure_reason == "the contact unsubscribed"
    assert by_contact[bounced.pk].failure_reason == "the address bounced (hard bounce)"
    assert "spam complaint" in by_contact[listed.pk].failure_reason


def test_transactional_bypasses_caps_and_quiet_hours_but_not_a_hard_bounce(workspace_a):
    receipts = EmailTemplateFactory(workspace=workspace_a, purpose="transactional")
    news = EmailTemplateFactory(workspace=workspace_a, purpose="marketing")
    SendingPolicy.objects.create(
        workspace=workspace_a, daily_cap=1, quiet_start=dt.time(0), quiet_end=dt.time(23, 59)
    )
    busy = ContactFactory(workspace=workspace_a, status="unsubscribed")
    bounced = ContactFactory(workspace=workspace_a, status="bounced")
    Message.objects.create(
        workspace=workspace_a, contact=busy, to_email=busy.email, idempotency_key="earlier",
        source="campaign", status="sent", sent_at=timezone.now(),
    )  # fmt: skip
    queue(workspace_a, [busy, bounced], template=receipts, source=MessageSource.TRANSACTIONAL)
    queue(workspace_a, [ContactFactory(workspace=workspace_a)], template=news, source_id="n")

    with time_machine.travel(timezone.now().replace(hour=12), tick=False):
        send_all()

    assert [e.to for e in mail.outbox] == [[busy.email]]
    assert rows(workspace_a).get(contact=bounced).status == MessageStatus.SUPPRESSED
    deferred = rows(workspace_a).get(template=news)
    assert deferred.status == MessageStatus.QUEUED and deferred.not_before is not None


def test_frequency_caps_skip_marketing_over_the_cap(workspace_a):
    SendingPolicy.objects.create(workspace=workspace_a, daily_cap=1, weekly_cap=2)
    contact = ContactFactory(workspace=workspace_a)
    start = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)

    with time_machine.travel(start, tick=False):
        queue(workspace_a, [contact], source_id="monday-1")
        queue(workspace_a, [contact], source_id="monday-2")
        send_all()
    with time_machine.travel(start + dt.timedelta(days=1, hours=1), tick=False):
        queue(workspace_a, [contact], source_id="tuesday")
        send_all()
    with time_machine.travel(start + dt.timedelta(days=2, hours=2), tick=False):
        queue(workspace_a, [contact], source_id="wednesday")
        send_all()

    outcome = {m.source_id: (m.status, m.failure_reason) for m in rows(workspace_a)}
    assert outcome == {
        "monday-1": ("sent", ""),
        "monday-2": ("skipped", "frequency cap: 1 a day"),
        "tuesday": ("sent", ""),
        "wednesday": ("skipped", "frequency cap: 2 a week"),
    }
    assert len(mail.outbox) == 2


def test_quiet_hours_defer_in_the_contacts_timezone_and_send_later(workspace_a):
    no_policy(workspace_a, quiet_start=dt.time(21), quiet_end=dt.time(8))
    tokyo = ContactFactory(workspace=workspace_a, timezone="Asia/Tokyo")
    lisbon = ContactFactory(workspace=workspace_a, timezone="Europe/Lisbon")
    # 14:00 UTC: 23:00 in Tokyo (quiet), 14:00 in Lisbon (fine)
    now = dt.datetime(2026, 1, 20, 14, 0, tzinfo=dt.UTC)

    with time_machine.travel(now, tick=False):
        queue(workspace_a, [tokyo, lisbon])
        report = send_all()

    assert report["sent"] == 1 and report["deferred"] == 1
    held = rows(workspace_a).get(contact=tokyo)
    assert held.status == MessageStatus.QUEUED
    assert held.not_before == dt.datetime(2026, 1, 20, 23, 0, tzinfo=dt.UTC)  # 08:00 Tokyo
    assert held.attempts == 0

    with time_machine.travel(dt.datetime(2026, 1, 20, 22, 59, tzinfo=dt.UTC), tick=False):
        assert send_all() == {}
    with time_machine.travel(dt.datetime(2026, 1, 20, 23, 1, tzinfo=dt.UTC), tick=False):
        assert send_all()["sent"] == 1
    assert sorted(e.to[0] for e in mail.outbox) == sorted([tokyo.email, lisbon.email])


# --- ESP errors -------------------------------------------------------------------------


class FailingBackend:
    """A connection whose every send raises the error a test put in FAILURE."""

    def __init__(self) -> None:
        self.sent = 0

    def open(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def send_messages(self, messages) -> int:
        raise FAILURE["error"]


FAILURE: dict = {}


def failing_connection(workspace):
    return FailingBackend(), "sendgrid"


def http_error(status: int) -> AnymailRequestsAPIError:
    response = requests.Response()
    response.status_code = status
    response.reason = "Nope"
    response._content = json.dumps({"message": f"mock {status}"}).encode()
    return AnymailRequestsAPIError("ESP said no", response=response)


@pytest.fixture
def failing_esp(settings):
    settings.MAILPATH_CONNECTION_FACTORY = "tests.campaigns.test_deliver.failing_connection"
    settings.MAILPATH_SEND_THREADS = 2
    yield FAILURE
    FAILURE.clear()


def test_a_transient_error_retries_with_backoff_then_gives_up(workspace_a, failing_esp):
    failing_esp["error"] = http_error(503)
    queue(workspace_a, [ContactFactory(workspace=workspace_a)])
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        assert send_all()["retried"] == 1
    message = rows(workspace_a).get()
    assert message.status == MessageStatus.QUEUED and message.attempts == 1
    assert "HTTP 503" in message.failure_reason
    first_wait = (message.not_before - start).total_seconds()
    assert 24 <= first_wait <= 36
    assert message.esp == ""  # a retry starts from scratch

    moment = start
    for attempt in range(2, deliver.MAX_ATTEMPTS + 1):
        moment += dt.timedelta(hours=2)
        with time_machine.travel(moment, tick=False):
            send_all()
        message.refresh_from_db()
        assert message.attempts == attempt
    wait = (message.not_before - moment).total_seconds() if message.not_before else None
    assert message.status == MessageStatus.FAILED, wait
    assert message.failure_reason.startswith(f"gave up after {deliver.MAX_ATTEMPTS} attempts")


def test_backoff_doubles_and_is_capped():
    waits = [deliver.backoff(n).total_seconds() for n in (1, 2, 3, 10)]
    assert 24 <= waits[0] <= 36 and 48 <= waits[1] <= 72 and 96 <= waits[2] <= 144
    assert waits[3] <= deliver.BACKOFF_MAX * 1.2


@pytest.mark.parametrize("status", [400, 422])
def test_a_permanent_error_fails_the_message_with_the_reason(workspace_a, failing_esp, status):
    failing_esp["error"] = http_error(status)
    queue(workspace_a, [ContactFactory(workspace=workspace_a)])

    assert send_all()["failed"] == 1
    message = rows(workspace_a).get()
    assert message.status == MessageStatus.FAILED
    assert f"HTTP {status}" in message.failure_reason
    assert f"mock {status}" in message.failure_reason


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_error_marks_the_connection_failing_and_stops_the_workspace(
    workspace_a, workspace_b, failing_esp, status
):
    failing_esp["error"] = http_error(status)
    queue(workspace_a, ContactFactory.create_batch(5, workspace=workspace_a))

    report = send_all()

    assert report == {"claimed": 5, "held": 5}
    connection = EspConnection.objects.for_workspace(workspace_a).get()
    assert connection.status == "failing"
    assert f"HTTP {status}" in connection.last_error
    assert {(m.status, m.attempts) for m in rows(workspace_a)} == {("queued", 0)}
    # no crash loop: nothing is claimed from the failing workspace, others go on
    assert deliver.claim(100) == []
    queue(workspace_b, [ContactFactory(workspace=workspace_b)])
    assert [m.workspace_id for m in deliver.claim(100)] == [workspace_b.pk]


def test_credentials_that_cannot_be_read_stop_the_workspace_with_the_reason(workspace_a):
    EspConnection.objects.create(workspace=workspace_a, provider="postmark", credentials="junk")
    queue(workspace_a, ContactFactory.create_batch(2, workspace=workspace_a))

    assert send_all() == {"claimed": 2, "held": 2}
    connection = EspConnection.objects.for_workspace(workspace_a).get()
    assert connection.status == "failing"
    assert "the connection cannot be set up" in connection.last_error
    assert {(m.status, m.attempts) for m in rows(workspace_a)} == {("queued", 0)}


class RefusingSmtp(FailingBackend):
    def open(self) -> bool:
        raise smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication failed")


def refusing_smtp(workspace):
    return RefusingSmtp(), "smtp"


def test_an_smtp_server_refusing_the_login_stops_the_workspace(workspace_a, settings):
    settings.MAILPATH_CONNECTION_FACTORY = "tests.campaigns.test_deliver.refusing_smtp"
    queue(workspace_a, ContactFactory.create_batch(3, workspace=workspace_a))

    assert send_all() == {"claimed": 3, "held": 3}
    connection = EspConnection.objects.for_workspace(workspace_a).get()
    assert connection.status == "failing" and "Authentication failed" in connection.last_error


def test_a_paused_connection_leaves_its_messages_queued(workspace_a):
    EspConnection.objects.create(workspace=workspace_a, paused_at=timezone.now())
    queue(workspace_a, [ContactFactory(workspace=workspace_a)])

    assert send_all() == {}
    assert rows(workspace_a).get().status == MessageStatus.QUEUED

    EspConnection.objects.for_workspace(workspace_a).update(paused_at=None)
    assert send_all()["sent"] == 1


def test_each_workspace_sends_as_itself(workspace_a, workspace_b):
    queue(workspace_a, [ContactFactory(workspace=workspace_a)])
    queue(workspace_b, [ContactFactory(workspace=workspace_b)])
    workspace_b.default_from_email = "hi@bloom.example.com"
    workspace_b.save()

    send_all()

    senders = {e.metadata["workspace_id"]: e.from_email for e in mail.outbox}
    assert senders == {
        str(workspace_a.public_id): "Shop <hello@shop.example.com>",
        str(workspace_b.public_id): "Shop <hi@bloom.example.com>",
    }


def test_the_send_rate_is_a_per_second_budget_per_workspace(workspace_a, workspace_b):
    with time_machine.travel(dt.datetime(2026, 1, 1, 12, 0, 0, 100000, tzinfo=dt.UTC)):
        assert deliver.take_tokens(workspace_a.pk, 5, 4) == 4
        assert deliver.take_tokens(workspace_a.pk, 5, 4) == 1
        assert deliver.take_tokens(workspace_a.pk, 5, 4) == 0
        assert deliver.take_tokens(workspace_b.pk, 5, 4) == 4
        assert deliver.take_tokens(workspace_b.pk, 0, 400) == 400  # 0: no limit
    with time_machine.travel(dt.datetime(2026, 1, 1, 12, 0, 1, 100000, tzinfo=dt.UTC)):
        assert deliver.take_tokens(workspace_a.pk, 5, 4) == 4


def test_a_slow_rate_spreads_the_batch_over_seconds(workspace_a):
    EspConnection.objects.create(workspace=workspace_a, rate_per_second=3)
    queue(workspace_a, ContactFactory.create_batch(7, workspace=workspace_a))

    started = time.monotonic()
    assert send_all()["sent"] == 7
    assert time.monotonic() - started >= 1.0  # 3 + 3 + 1 in three one-second windows


# --- reconciling what a dead worker left ------------------------------------------------


def stuck(workspace, esp: str, minutes: int = 20, key: str = "") -> Message:
    contact = ContactFactory(workspace=workspace)
    return Message.objects.create(
        workspace=workspace,
        contact=contact,
        to_email=contact.email,
        source="campaign",
        source_id="cmp_9",
        idempotency_key=key or f"stuck-{contact.pk}",
        status="sending",
        esp=esp,
        attempts=1,
        claim_token="dead",
        claimed_at=timezone.now() - dt.timedelta(minutes=minutes),
    )


def test_reconcile_settles_rows_a_dead_worker_left_in_sending(workspace_a):
    never_handed = stuck(workspace_a, esp="")
    in_doubt = stuck(workspace_a, esp="postmark")
    idempotent = stuck(workspace_a, esp="resend")
    recent = stuck(workspace_a, esp="postmark", minutes=1)

    report = deliver.reconcile_stuck()

    assert report == {"requeued": 2, "unconfirmed": 1}
    for message in (never_handed, idempotent, in_doubt, recent):
        message.refresh_from_db()
    assert never_handed.status == idempotent.status == MessageStatus.QUEUED
    assert never_handed.esp == ""
    assert in_doubt.status == MessageStatus.SENT
    assert in_doubt.failure_reason == deliver.UNCONFIRMED
    assert recent.status == MessageStatus.SENDING  # its worker may still be at it
    assert Event.objects.for_workspace(workspace_a).filter(name="email_received").count() == 1


def test_reconcile_fails_a_message_that_keeps_killing_its_worker(workspace_a):
    message = stuck(workspace_a, esp="")
    Message.objects.for_workspace(workspace_a).update(attempts=deliver.MAX_ATTEMPTS)

    assert deliver.reconcile_stuck() == {"failed": 1}
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED


def test_a_worker_whose_rows_were_reconciled_does_not_overwrite_them(workspace_a):
    queue(workspace_a, [ContactFactory(workspace=workspace_a)])
    [claimed] = deliver.claim(10)
    Message.objects.for_workspace(workspace_a).update(claim_token="someone-else")

    deliver.deliver([claimed])

    assert rows(workspace_a).get().status == MessageStatus.SENDING


# --- claiming ---------------------------------------------------------------------------


def test_claim_takes_due_rows_in_id_order(workspace_a):
    contacts = ContactFactory.create_batch(4, workspace=workspace_a)
    queue(workspace_a, contacts)
    later = rows(workspace_a)[1]
    Message.objects.for_workspace(workspace_a).filter(pk=later.pk).update(
        not_before=timezone.now() + dt.timedelta(minutes=5)
    )

    first = deliver.claim(2, worker_token="w1")
    second = deliver.claim(5, worker_token="w2")

    ids = [m.pk for m in rows(workspace_a)]
    assert [m.pk for m in first] == [ids[0], ids[2]]
    assert [m.pk for m in second] == [ids[3]]
    assert {(m.status, m.claim_token, m.attempts) for m in first} == {("sending", "w1", 1)}
    assert first[0].claimed_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(db.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_workers_claiming_at_once_never_get_the_same_row():
    workspace = WorkspaceFactory()
    template = EmailTemplateFactory(workspace=workspace)
    contacts = ContactFactory.create_batch(600, workspace=workspace)
    outbox.enqueue(workspace, template=template, contacts=contacts, source="campaign")
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def worker(name: str) -> None:
        from django.db import connection

        try:
            start.wait()
            while batch := deliver.claim(25, worker_token=name):
                claimed[name] += [m.pk for m in batch]
                time.sleep(0.001)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    a, b = set(claimed["a"]), set(claimed["b"])
    assert not a & b
    assert len(a) + len(b) == 600 == len(claimed["a"]) + len(claimed["b"])
    assert a and b  # both really worked
    tokens = Message.objects.for_workspace(workspace).values_list("claim_token", flat=True)
    assert set(tokens) == {"a", "b"}


# --- through the mock ESP (Postmark's API) ----------------------------------------------


@pytest.fixture(scope="module")
def mock_esp() -> Iterator[str]:
    with running_mock_esp("--latency-ms", "5") as url:
        yield url


@pytest.fixture
def fresh_mock(mock_esp) -> str:
    requests.post(mock_esp + "_reset", timeout=5)
    return mock_esp


def test_a_send_through_the_batch_api_lands_every_message_exactly_once(workspace_a, fresh_mock):
    connect_to_mock(workspace_a, fresh_mock)
    no_policy(workspace_a)
    contacts = ContactFactory.create_batch(1100, workspace=workspace_a)
    queue(workspace_a, contacts)

    assert send_all()["sent"] == 1100
    assert send_all() == {}  # nothing left, nothing sent again

    stats = mock_stats(fresh_mock)
    assert stats["messages"] == 1100 == stats["distinct_recipients"]
    assert stats["duplicates"] == 0
    assert stats["missing_list_unsubscribe"] == stats["missing_list_unsubscribe_post"] == 0
    assert stats["calls"] == 3  # 500 + 500 + 100
    sent = rows(workspace_a)
    assert {m.status for m in sent} == {"sent"}
    assert {m.esp for m in sent} == {"postmark"}
    assert len({m.esp_message_id for m in sent}) == 1100
    recent = requests.get(fresh_mock + "_messages?limit=1", timeout=5).json()[0]
    assert recent["key"] == str(sent.get(to_email=recent["to"]).public_id)


def test_several_calls_in_flight_also_land_exactly_once(workspace_a, fresh_mock, settings):
    settings.MAILPATH_ESP_BATCH_API = False
    settings.MAILPATH_SEND_THREADS = 4
    connect_to_mock(workspace_a, fresh_mock)
    no_policy(workspace_a)
    queue(workspace_a, ContactFactory.create_batch(60, workspace=workspace_a))

    assert send_all()["sent"] == 60

    stats = mock_stats(fresh_mock)
    assert (stats["messages"], stats["calls"], stats["duplicates"]) == (60, 60, 0)
    assert stats["missing_list_unsubscribe"] == 0


def test_the_batch_api_retries_when_the_esp_is_down(workspace_a):
    with running_mock_esp("--latency-ms", "1", "--fail-rate", "1.0") as url:
        connect_to_mock(workspace_a, url)
        queue(workspace_a, ContactFactory.create_batch(3, workspace=workspace_a))

        assert send_all()["retried"] == 3
        assert mock_stats(url)["messages"] == 0
    assert {(m.status, m.attempts) for m in rows(workspace_a)} == {("queued", 1)}
    assert "503" in rows(workspace_a)[0].failure_reason


def test_the_batch_body_is_what_anymails_postmark_payload_would_send(workspace_a):
    from django.core.mail import get_connection

    from campaigns.sending import policies

    news = EmailTemplateFactory(workspace=workspace_a, subject="Grüße, {{ contact.first_name }}")
    receipt = EmailTemplateFactory(workspace=workspace_a, purpose="transactional")
    queue(workspace_a, ContactFactory.create_batch(2, workspace=workspace_a), template=news)
    queue(workspace_a, [ContactFactory(workspace=workspace_a)], template=receipt, source_id="r")
    queue(
        workspace_a,
        [ContactFactory(workspace=workspace_a, email="zoë@bücher.example")],
        template=news,
        source_id="idna",
    )
    claimed = deliver.claim(10)
    policy = policies.policy_for(workspace_a)
    personaliser = deliver.Personaliser(workspace_a, policy, timezone.now())
    outgoing = [personaliser.build(m) for m in claimed]
    backend = get_connection(
        "anymail.backends.postmark.EmailBackend", server_token="t", message_stream="broadcast"
    )

    body = json.loads(deliver.PostmarkBatch(backend).prepare(outgoing))

    expected = [backend.build_message_payload(o.email, {}).data for o in outgoing]
    assert body == json.loads(json.dumps(expected))
    assert [item["MessageStream"] for item in body] == ["broadcast"] * 4
    assert "Headers" not in body[2]  # transactional: no List-Unsubscribe
    assert body[3]["To"] == "zoë@xn--bcher-kva.example"  # through Anymail: IDNA


# --- the hand-off: the last byte waits for the mark ---------------------------------------


class HandOffDied(Exception):
    pass


def marker(marks: list):  # type: ignore[no-untyped-def]
    def mark():  # type: ignore[no-untyped-def]
        marks.append(1)
        return lambda: None

    return mark


def test_a_worker_dying_at_the_hand_off_mark_leaves_nothing_at_the_esp(fresh_mock):
    body = json.dumps([{"From": "a@example.com", "To": "b@example.com", "Subject": "x",
                        "TextBody": "x", "Metadata": {"message_id": "m1"}}]).encode()  # fmt: skip

    def die() -> None:
        raise HandOffDied

    with pytest.raises(HandOffDied):
        deliver.post_marked(fresh_mock + "email/batch", body, {}, die, timeout=5)
    time.sleep(0.2)
    assert mock_stats(fresh_mock)["messages"] == 0  # an incomplete request does nothing

    marks = []
    status, _ = deliver.post_marked(fresh_mock + "email/batch", body, {}, marker(marks), timeout=5)
    assert (status, marks, mock_stats(fresh_mock)["messages"]) == (200, [1], 1)


def test_an_esp_that_cannot_be_reached_is_retried_and_never_marked():
    marks = []
    url = f"http://127.0.0.1:{free_port()}/email/batch"
    with pytest.raises(deliver.NotDelivered):
        deliver.post_marked(url, b"[]", {}, marker(marks), timeout=2)
    assert marks == []


def test_no_answer_after_the_whole_request_counts_as_sent_unconfirmed():
    """The ESP got everything and hung up: it may have sent them, so they are not sent
    again (for an ESP without idempotency keys)."""
    from django.core.mail import get_connection

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def hang_up() -> None:
        peer, _ = server.accept()
        peer.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            data += peer.recv(65536)
        head, rest = data.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))  # fmt: skip
        while len(rest) < length:
            rest += peer.recv(65536)
        peer.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    backend = get_connection(
        "anymail.backends.postmark.EmailBackend",
        server_token="t",
        api_url=f"http://127.0.0.1:{server.getsockname()[1]}/",
    )
    sender = deliver.PostmarkBatch(backend)
    sender.token = "t"
    marks = []
    results = sender.send(b'[{"To": "x@example.com"}]', 1, marker(marks))
    thread.join()
    server.close()

    assert marks == [1]
    assert [r.kind for r in results] == [deliver.SENT]
    assert results[0].reason.startswith("unconfirmed: no answer from the ESP")


def test_transactional_email_is_claimed_before_a_queued_campaign(workspace_a):
    from campaigns.models import Message
    from campaigns.sending import deliver as deliver_module

    template = EmailTemplateFactory(workspace=workspace_a)
    for n in range(5):
        contact = ContactFactory(workspace=workspace_a, email=f"c{n}@example.com")
        Message.objects.create(
            workspace=workspace_a, contact=contact, to_email=contact.email, template=template,
            source="campaign", idempotency_key=f"campaign-{n}",
        )  # fmt: skip
    receipt = Message.objects.create(
        workspace=workspace_a, to_email="buyer@example.com", template=template,
        purpose="transactional", source="transactional", idempotency_key="receipt-1",
    )  # fmt: skip
    claimed = deliver_module.claim(limit=2)
    assert receipt.pk in [m.pk for m in claimed]

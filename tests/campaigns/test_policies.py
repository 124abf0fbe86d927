"""Who may get which email, and when: suppression, caps, quiet hours and the sunset rule."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import time_machine
from django.utils import timezone

from campaigns.models import Message, MessageStatus, SendingPolicy
from campaigns.sending import policies
from contacts.models import Suppression, email_hash
from tests.factories import ContactFactory, EmailTemplateFactory

pytestmark = pytest.mark.django_db
SUPPRESSED, SKIPPED = MessageStatus.SUPPRESSED, MessageStatus.SKIPPED
_keys = itertools.count()


def message(contact, purpose="marketing", **fields):
    return Message.objects.create(
        workspace=contact.workspace,
        contact=contact,
        to_email=contact.email,
        template=EmailTemplateFactory(workspace=contact.workspace),
        purpose=purpose,
        source="campaign",
        idempotency_key=f"k{next(_keys)}",
        **fields,
    )


def check(msg, policy=None, now=None):
    policy = policy or SendingPolicy(workspace=msg.workspace, daily_cap=None, weekly_cap=None)
    now = now or timezone.now()
    facts = policies.load_facts(msg.workspace, [msg], policy, now)
    return policies.blocked_reason(msg, msg.contact, policy, now, facts)


@pytest.mark.parametrize(
    "status, reason",
    [
        ("unsubscribed", "the contact unsubscribed"),
        ("pending", "the contact has not confirmed their subscription"),
        ("bounced", "the address bounced (hard bounce)"),
        ("complained", "the contact marked an email as spam"),
    ],
)
def test_marketing_never_goes_to_a_contact_who_left(workspace_a, status, reason):
    contact = ContactFactory(workspace=workspace_a, status=status)
    assert check(message(contact)) == (SUPPRESSED, reason)


def test_transactional_goes_to_unsubscribed_but_never_to_a_hard_bounce(workspace_a):
    unsubscribed = ContactFactory(workspace=workspace_a, status="unsubscribed")
    pending = ContactFactory(workspace=workspace_a, status="pending")
    bounced = ContactFactory(workspace=workspace_a, status="bounced")
    complained = ContactFactory(workspace=workspace_a, status="complained")

    assert check(message(unsubscribed, "transactional")) is None
    assert check(message(pending, "transactional")) is None
    assert check(message(bounced, "transactional"))[0] == SUPPRESSED
    assert check(message(complained, "transactional"))[0] == SUPPRESSED


@pytest.mark.parametrize(
    "reason, blocks_transactional",
    [("bounced", True), ("complained", True), ("erased", True), ("manual", False)],
)
def test_a_suppressed_address_is_not_mailed(workspace_a, reason, blocks_transactional):
    contact = ContactFactory(workspace=workspace_a, email="Ann@Example.com")
    Suppression.objects.create(
        workspace=workspace_a, email_hash=email_hash("ann@example.com"), reason=reason
    )

    assert check(message(contact))[0] == SUPPRESSED
    assert (check(message(contact, "transactional")) is not None) is blocks_transactional


def test_suppression_is_per_workspace(workspace_a, workspace_b):
    contact = ContactFactory(workspace=workspace_a, email="ann@example.com")
    Suppression.objects.create(
        workspace=workspace_b, email_hash=email_hash("ann@example.com"), reason="bounced"
    )
    assert check(message(contact)) is None


def test_frequency_caps_count_marketing_sent_in_the_last_day_and_week(workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    policy = SendingPolicy(workspace=workspace_a, daily_cap=1, weekly_cap=2)
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    with time_machine.travel(start, tick=False):
        assert check(message(contact), policy) is None
        message(contact, sent_at=timezone.now(), status="sent")
        message(contact, "transactional", sent_at=timezone.now(), status="sent")  # not counted
        assert check(message(contact), policy) == (SKIPPED, "frequency cap: 1 a day")
        assert check(message(contact, "transactional"), policy) is None

    with time_machine.travel(start + dt.timedelta(hours=25), tick=False):
        assert check(message(contact), policy) is None
        message(contact, sent_at=timezone.now(), status="sent")

    with time_machine.travel(start + dt.timedelta(hours=50), tick=False):
        assert check(message(contact), policy) == (SKIPPED, "frequency cap: 2 a week")

    with time_machine.travel(start + dt.timedelta(days=8), tick=False):
        assert check(message(contact), policy) is None


def test_caps_count_messages_of_the_running_batch(workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    policy = SendingPolicy(workspace=workspace_a, daily_cap=1, weekly_cap=None)
    first, second = message(contact), message(contact)
    now = timezone.now()
    facts = policies.load_facts(workspace_a, [first, second], policy, now)

    assert policies.blocked_reason(first, contact, policy, now, facts) is None
    policies.note_sent(facts, first)
    assert policies.blocked_reason(second, contact, policy, now, facts)[0] == SKIPPED


def test_sunset_skips_contacts_who_stopped_opening(workspace_a):
    policy = SendingPolicy(workspace=workspace_a, daily_cap=None, weekly_cap=None, sunset_days=90)
    now = timezone.now()
    long_ago = now - dt.timedelta(days=120)
    asleep = ContactFactory(workspace=workspace_a)
    message(asleep, sent_at=long_ago, status="sent")
    awake = ContactFactory(workspace=workspace_a)
    message(awake, sent_at=long_ago, status="sent")
    message(awake, sent_at=now - dt.timedelta(days=5), status="sent", clicked_at=now)
    newcomer = ContactFactory(workspace=workspace_a)  # never mailed before: not sunset

    assert check(message(asleep), policy, now) == (
        SKIPPED,
        "sunset: no open or click in 90 days",
    )
    assert check(message(awake), policy, now) is None
    assert check(message(newcomer), policy, now) is None
    assert check(message(asleep, "transactional"), policy, now) is None


QUIET = dict(quiet_start=dt.time(21, 0), quiet_end=dt.time(8, 0))


def test_quiet_hours_defer_to_their_end_in_the_contacts_timezone(workspace_a):
    policy = SendingPolicy(workspace=workspace_a, **QUIET)
    contact = ContactFactory(workspace=workspace_a, timezone="America/New_York")
    msg = message(contact)
    # 03:00 UTC is 23:00 in New York (EDT, UTC-4): quiet until 08:00 there, 12:00 UTC
    now = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
    assert policies.defer_until(msg, contact, policy, now, "UTC") == dt.datetime(
        2026, 3, 10, 12, 0, tzinfo=dt.UTC
    )
    # 13:00 UTC is 09:00 in New York: no wait
    assert policies.defer_until(msg, contact, policy, now.replace(hour=13), "UTC") is None
    # 05:00 in New York (09:00 UTC): until 08:00 the same day
    assert policies.defer_until(msg, contact, policy, now.replace(hour=9), "UTC") == (
        dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
    )
    # transactional mail is never held
    receipt = message(contact, "transactional")
    assert policies.defer_until(receipt, contact, policy, now, "UTC") is None


def test_quiet_hours_fall_back_to_the_workspace_timezone(workspace_a):
    policy = SendingPolicy(workspace=workspace_a, quiet_start=dt.time(12), quiet_end=dt.time(14))
    unknown = ContactFactory(workspace=workspace_a, timezone="Mars/Olympus")
    blank = ContactFactory(workspace=workspace_a, timezone="")
    now = dt.datetime(2026, 7, 1, 11, 0, tzinfo=dt.UTC)  # 13:00 in Paris (CEST)

    for contact in (unknown, blank):
        assert policies.defer_until(message(contact), contact, policy, now, "Europe/Paris") == (
            dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
        )
        assert policies.defer_until(message(contact), contact, policy, now, "UTC") is None


def test_policy_for_a_workspace_without_one_uses_the_defaults(workspace_a, workspace_b):
    SendingPolicy.objects.create(workspace=workspace_b, daily_cap=5)
    policy = policies.policy_for(workspace_a)
    assert policy.pk is None
    assert (policy.daily_cap, policy.weekly_cap) == (1, 3)
    assert policies.policy_for(workspace_b).daily_cap == 5


def test_a_pause_skips_marketing_until_it_ends_but_not_transactional(workspace_a):
    now = timezone.now()
    until = now + dt.timedelta(days=3)
    contact = ContactFactory(workspace=workspace_a, marketing_paused_until=until)
    reason = "paused by the contact in the preference centre"
    assert check(message(contact), now=now) == (SKIPPED, reason)
    assert check(message(contact, purpose="transactional"), now=now) is None
    assert check(message(contact), now=now + dt.timedelta(days=4)) is None

"""The public endpoints emails link to: open pixel, click redirect, unsubscribe (RFC 8058
one-click included) and preference centre."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Message, MessageEvent, MessageEventKind
from campaigns.sending import links
from campaigns.services import update_brand_kit
from campaigns.tracking_views import PIXEL_GIF, HitBatch, hits
from contacts.models import ConsentRecord, Contact, Event, SubscriptionStatus, TopicPreference
from tests.campaigns.test_links import make_message
from tests.factories import ContactFactory, TopicFactory

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"
SHOP = "https://shop.example.com/sale?a=1&b=2"


@pytest.fixture(autouse=True)
def _hits_stored_by_an_eager_task(db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    hits.flush()  # inside the test's transaction (this fixture needs db)


@pytest.fixture
def client():
    # A mail client or a mailbox provider: no session, no CSRF cookie, and CSRF enforced.
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER)


@pytest.fixture
def message(workspace_a):
    contact = ContactFactory(workspace=workspace_a, email="jamie@example.com")
    return make_message(workspace_a, contact=contact)


def path(url: str) -> str:
    """The path and query of a link (the tracking host is another name for this app)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def open_path(message) -> str:
    return f"/o/{links.message_token(message)}.gif"


def click_path(message, url=SHOP) -> str:
    return path(links.click_url(links.message_token(message), url))


def fetch(client, url, method="get"):
    """A request, then what the batch's timer does a second later: store the hits."""
    response = getattr(client, method)(url)
    hits.flush()
    return response


def events(message, kind=None):
    found = MessageEvent.objects.for_workspace(message.workspace_id).filter(message=message)
    return found.filter(kind=kind) if kind else found


def tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("B" if token[middle] != "B" else "C") + token[middle + 1 :]


# --- open pixel -----------------------------------------------------------------------------


def test_the_pixel_is_a_gif_that_records_one_open(client, message):
    response = fetch(client, open_path(message))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == PIXEL_GIF and len(PIXEL_GIF) == 43
    assert "no-store" in response["Cache-Control"]
    event = events(message).get()
    assert (event.kind, event.machine, event.user_agent) == ("opened", False, BROWSER)
    message.refresh_from_db()
    assert message.opened_at == event.occurred_at


def test_repeated_opens_keep_the_first_open_time(client, message):
    fetch(client, open_path(message))
    message.refresh_from_db()
    first = message.opened_at

    fetch(client, open_path(message))
    message.refresh_from_db()

    assert events(message, "opened").count() == 2
    assert message.opened_at == first


def test_the_pixel_and_the_redirect_touch_no_database(client, message):
    with CaptureQueriesContext(connection) as during_requests:
        assert client.get(open_path(message)).status_code == 200
        assert client.get(click_path(message)).status_code == 302
    assert during_requests.captured_queries == []
    assert events(message).count() == 0  # until the batch is stored
    hits.flush()
    assert events(message).count() == 2


def test_apple_privacy_proxy_opens_are_kept_as_machine_opens(message):
    fetch(Client(HTTP_USER_AGENT="Mozilla/5.0"), open_path(message))

    event = events(message).get()
    assert event.machine and event.data == {"machine": "mail privacy proxy"}
    message.refresh_from_db()
    assert message.opened_at is None


def test_an_open_without_user_agent_right_after_sending_is_a_machine(workspace_a):
    message = make_message(workspace_a, sent_at=timezone.now() - dt.timedelta(seconds=3))
    fetch(Client(), open_path(message))
    assert events(message).get().data == {"machine": links.OPENED_RIGHT_AFTER_SENDING}


def test_the_pixel_of_a_message_that_is_gone_still_answers(client, message):
    url = open_path(message)
    message.delete()
    assert fetch(client, url).status_code == 200


# --- click redirect ------------------------------------------------------------------------


def test_a_signed_click_redirects_and_records_the_click(client, message):
    response = fetch(client, click_path(message))

    assert response.status_code == 302
    assert response["Location"] == SHOP
    event = events(message).get()
    assert (event.kind, event.url, event.machine) == ("clicked", SHOP, False)
    message.refresh_from_db()
    assert message.clicked_at == event.occurred_at
    assert message.opened_at == event.occurred_at  # a click shows it was opened


def test_a_click_with_a_changed_destination_or_signature_is_a_404(client, message):
    good = click_path(message)
    other = click_path(message, "https://evil.example.com/")
    forged = good.split("?")[0] + "?" + other.split("?")[1]
    token = links.message_token(message)
    signature = good.split("/")[3].split("?")[0]

    assert fetch(client, forged).status_code == 404
    assert fetch(client, good.split("?")[0]).status_code == 404  # no destination
    assert fetch(client, good.replace(signature, tampered(signature))).status_code == 404
    assert fetch(client, good.replace(token, tampered(token))).status_code == 404
    assert events(message).count() == 0


def test_only_web_destinations_are_redirected_to(client, message):
    # Even a correctly signed javascript: URL is refused (we never sign one).
    assert client.get(click_path(message, "javascript:alert(1)")).status_code == 404


def test_scanner_clicks_redirect_but_are_flagged(message):
    scanner = Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; Barracuda Sentinel)")
    assert fetch(scanner, click_path(message))["Location"] == SHOP
    assert fetch(Client(HTTP_USER_AGENT=BROWSER), click_path(message), "head").status_code == 302

    assert list(events(message).values_list("machine", flat=True)) == [True, True]
    message.refresh_from_db()
    assert message.clicked_at is None


def test_a_click_seconds_after_delivery_is_a_scanner(client, workspace_a):
    message = make_message(workspace_a, delivered_at=timezone.now() - dt.timedelta(seconds=2))
    fetch(client, click_path(message))
    assert events(message).get().data == {"machine": links.CLICKED_RIGHT_AFTER_DELIVERY}


# --- storing hits ----------------------------------------------------------------------


def test_an_open_becomes_a_contact_event_the_segment_engine_reads(client, message):
    fetch(client, open_path(message))

    event = Event.objects.for_workspace(message.workspace_id).get(contact=message.contact)
    assert event.name == "email_opened"
    assert event.properties == {
        "campaign_id": "spring-sale",
        "message_id": str(message.public_id),
        "human": True,
    }


def test_hits_leave_in_one_task_per_workspace(client, message, workspace_b):
    other = make_message(workspace_b)
    with mock.patch("campaigns.tasks.record_tracking_hits.apply_async") as queue:
        client.get(open_path(message))
        client.get(click_path(message))
        client.get(open_path(other))
        assert queue.call_count == 0
        hits.flush()

    queued = {call.args[0][0]: call.args[0][1] for call in queue.call_args_list}
    assert sorted(queued) == sorted([message.workspace_id, workspace_b.pk])
    assert [hit[2] for hit in queued[message.workspace_id]] == ["opened", "clicked"]
    assert [hit[1] for hit in queued[workspace_b.pk]] == [str(other.public_id)]


def test_a_batch_is_sent_when_full_or_after_a_second():
    batch = HitBatch()
    batch.MAX_HITS, batch.MAX_DELAY = 3, 0.05
    one = links.TrackedHit(uuid.uuid4(), uuid.uuid4(), "opened", timezone.now(), links.Hit())
    with mock.patch.object(batch, "_send") as send:
        batch.add(1, one)
        batch.add(2, one)
        batch.add(1, one)  # the third: full
        assert [call.args for call in send.call_args_list] == [(1, [one, one]), (2, [one])]
        send.reset_mock()
        batch.add(1, one)
        time.sleep(0.5)
        assert [call.args for call in send.call_args_list] == [(1, [one])]


def test_without_a_broker_the_web_process_stores_the_hits_itself(client, message):
    with mock.patch(
        "campaigns.tasks.record_tracking_hits.apply_async", side_effect=OSError("no broker")
    ):
        fetch(client, open_path(message))
    assert events(message).count() == 1


def test_storing_the_same_hits_twice_stores_them_once(workspace_a, message):
    at = timezone.now()
    batch = [
        links.TrackedHit(uuid.uuid4(), message.public_id, "clicked", at, links.Hit(BROWSER), SHOP),
        links.TrackedHit(uuid.uuid4(), message.public_id, "opened", at, links.Hit("curl/8.4")),
    ]

    assert links.record_hits(workspace=workspace_a, hits=batch) == 2
    assert links.record_hits(workspace=workspace_a, hits=batch) == 0

    assert events(message).count() == 2
    contact_events = Event.objects.for_workspace(workspace_a).filter(contact=message.contact)
    assert sorted(contact_events.values_list("name", "properties__human")) == [
        ("email_clicked", True),
        ("email_opened", False),
    ]


def test_hits_of_another_workspaces_message_are_dropped(workspace_a, workspace_b, message):
    foreign = links.TrackedHit(
        uuid.uuid4(), message.public_id, "opened", timezone.now(), links.Hit(BROWSER)
    )
    assert links.record_hits(workspace=workspace_b, hits=[foreign]) == 0
    assert events(message).count() == 0


# --- unsubscribe -------------------------------------------------------------------------


def unsubscribe_path(message) -> str:
    return f"/u/{links.message_token(message)}"


def contact_status(message) -> str:
    return Contact.objects.for_workspace(message.workspace_id).get(pk=message.contact_id).status


def test_get_shows_the_question_and_unsubscribes_nobody(client, message):
    response = client.get(unsubscribe_path(message))

    assert response.status_code == 200
    assert "Unsubscribe jamie@example.com from Acme?" in response.content.decode()
    assert f'href="/p/{links.message_token(message)}"' in response.content.decode()
    assert contact_status(message) == SubscriptionStatus.SUBSCRIBED
    assert client.head(unsubscribe_path(message)).status_code == 200
    assert contact_status(message) == SubscriptionStatus.SUBSCRIBED
    assert events(message).count() == 0


def test_one_click_post_without_cookies_unsubscribes_at_once(client, message):
    response = client.post(
        unsubscribe_path(message),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert contact_status(message) == SubscriptionStatus.UNSUBSCRIBED
    event = events(message, MessageEventKind.UNSUBSCRIBED).get()
    assert event.data == {"one_click": True}
    consent = ConsentRecord.objects.for_workspace(message.workspace_id).get()
    assert consent.kind == "opt_out" and "One-click" in consent.source


def test_the_button_on_the_page_unsubscribes_and_a_repeat_changes_nothing(client, message):
    assert client.post(unsubscribe_path(message)).status_code == 200
    assert client.post(unsubscribe_path(message)).status_code == 200

    assert contact_status(message) == SubscriptionStatus.UNSUBSCRIBED
    assert events(message, MessageEventKind.UNSUBSCRIBED).get().data == {"one_click": False}


def test_a_bounced_address_stays_bounced(client, workspace_a):
    contact = ContactFactory(workspace=workspace_a, status=SubscriptionStatus.BOUNCED)
    message = make_message(workspace_a, contact=contact)

    client.post(unsubscribe_path(message))

    assert contact_status(message) == SubscriptionStatus.BOUNCED


def test_every_endpoint_answers_404_to_a_changed_token(client, message):
    token = links.message_token(message)
    bad = tampered(token)
    assert client.get(f"/o/{bad}.gif").status_code == 404
    assert client.get(click_path(message).replace(token, bad)).status_code == 404
    assert client.get(f"/u/{bad}").status_code == 404
    one_click = client.post(
        f"/u/{bad}", "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert one_click.status_code == 404
    assert client.get(f"/p/{bad}").status_code == 404
    assert contact_status(message) == SubscriptionStatus.SUBSCRIBED
    assert events(message).count() == 0


def test_another_workspaces_token_cannot_touch_this_workspaces_contacts(
    client, message, workspace_b
):
    # A validly signed token for workspace B that names workspace A's message.
    class Forged:
        workspace_id = workspace_b.pk
        public_id = message.public_id

    token = links.message_token(Forged())

    assert client.post(f"/u/{token}").status_code == 404
    assert client.post(f"/p/{token}", {"action": "unsubscribe"}).status_code == 404
    assert fetch(client, f"/o/{token}.gif").status_code == 200  # the image never fails...
    assert contact_status(message) == SubscriptionStatus.SUBSCRIBED
    assert events(message).count() == 0  # ...but records nothing


# --- preference centre -------------------------------------------------------------------


def preferences_path(message) -> str:
    return f"/p/{links.message_token(message)}"


def test_the_preference_centre_is_branded_and_lists_the_topics(client, message, workspace_a):
    update_brand_kit(workspace_a, primary_color="#ff5500", button_color="#123456")
    TopicFactory(workspace=workspace_a, name="Weekly news", default_subscribed=True)
    TopicFactory(workspace=workspace_a, name="Offers", default_subscribed=False)

    page = client.get(preferences_path(message)).content.decode()

    assert "#ff5500" in page and "#123456" in page
    assert "Weekly news" in page and "Offers" in page
    assert page.count(" checked") == 1
    assert "Unsubscribe from everything" in page


def test_saving_the_preference_centre_changes_topics(client, message, workspace_a):
    news = TopicFactory(workspace=workspace_a, name="Weekly news", default_subscribed=True)
    offers = TopicFactory(workspace=workspace_a, name="Offers", default_subscribed=False)

    response = client.post(
        preferences_path(message), {"action": "save", "topics": [str(offers.public_id)]}
    )

    assert response.status_code == 200
    assert "Your choices are saved." in response.content.decode()
    chosen = dict(
        TopicPreference.objects.for_workspace(workspace_a)
        .filter(contact=message.contact)
        .values_list("topic__name", "subscribed")
    )
    assert chosen == {"Weekly news": False, "Offers": True}
    event = events(message, MessageEventKind.PREFERENCES).get()
    assert event.data == {"topics": {str(news.public_id): False, str(offers.public_id): True}}
    assert contact_status(message) == SubscriptionStatus.SUBSCRIBED


def test_the_preference_centre_ignores_topics_of_another_workspace(client, message, workspace_b):
    foreign = TopicFactory(workspace=workspace_b)
    client.post(preferences_path(message), {"action": "save", "topics": [str(foreign.public_id)]})
    assert not TopicPreference.objects.for_workspace(workspace_b).exists()


def test_unsubscribe_from_everything_and_subscribe_again(client, message):
    page = client.post(preferences_path(message), {"action": "unsubscribe"}).content.decode()
    assert contact_status(message) == SubscriptionStatus.UNSUBSCRIBED
    assert "Subscribe again" in page

    client.post(preferences_path(message), {"action": "resubscribe"})
    assert contact_status(message) == SubscriptionStatus.SUBSCRIBED
    kinds = list(events(message).order_by("id").values_list("kind", flat=True))
    assert kinds == ["unsubscribed", "preferences"]


def test_an_unknown_action_is_a_400_that_changes_nothing(client, message):
    response = client.post(preferences_path(message), {"action": "delete_everything"})
    assert response.status_code == 400
    assert contact_status(message) == SubscriptionStatus.SUBSCRIBED


def test_a_deleted_contact_sees_a_plain_page(client, message):
    Contact.objects.for_workspace(message.workspace_id).filter(pk=message.contact_id).delete()
    assert "no longer on the mailing list" in client.get(preferences_path(message)).content.decode()
    assert client.post(unsubscribe_path(message)).status_code == 200
    assert Message.objects.for_workspace(message.workspace_id).filter(pk=message.pk).exists()


def test_our_own_opens_and_clicks_reach_outgoing_webhooks(
    workspace_a, message, django_capture_on_commit_callbacks
):
    from campaigns.signals import message_event_recorded

    heard = []

    def listener(sender, workspace, message, kind, event, **kwargs):
        heard.append((workspace.pk, message.pk, kind))

    message_event_recorded.connect(listener)
    try:
        at = timezone.now()
        hit = links.TrackedHit(uuid.uuid4(), message.public_id, "clicked", at, links.Hit(BROWSER))
        with django_capture_on_commit_callbacks(execute=True):
            links.record_hits(workspace=workspace_a, hits=[hit])
            links.record_hits(workspace=workspace_a, hits=[hit])  # a repeat is not announced
    finally:
        message_event_recorded.disconnect(listener)
    assert heard == [(workspace_a.pk, message.pk, "clicked")]


def test_the_preference_centre_pauses_marketing_for_30_days_and_resumes(client, message):
    prefs = path(links.preferences_url(message))
    response = client.post(prefs, {"action": "pause30"})
    assert response.status_code == 200
    assert "Paused for 30 days." in response.content.decode()
    message.contact.refresh_from_db()
    left = message.contact.marketing_paused_until - timezone.now()
    assert dt.timedelta(days=29) < left <= dt.timedelta(days=30)
    assert "Start again now" in client.get(prefs).content.decode()
    client.post(prefs, {"action": "resume"})
    message.contact.refresh_from_db()
    assert message.contact.marketing_paused_until is None

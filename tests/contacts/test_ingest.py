"""The Segment-compatible ingest API: Segment's own examples, identity merging, retries,
bad input, and that a write key only ever writes into its own workspace."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from contacts.ingest import identify_contact, parse_time
from contacts.models import AnonymousId, Contact, Event, FieldType
from tests.factories import ApiKeyFactory, ContactFactory, CustomFieldFactory
from workspaces.services import revoke_api_key

pytestmark = pytest.mark.django_db

# The examples of Segment's HTTP Tracking API documentation, as published (writeKey and all).
SEGMENT_IDENTIFY = {
    "userId": "019mr8mf4r",
    "traits": {"email": "pgibbons@example.com", "name": "Peter Gibbons", "industry": "Technology"},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:08.276Z",
    "writeKey": "YOUR_WRITE_KEY",
}
SEGMENT_IDENTIFY_WITH_INTEGRATIONS = {
    **SEGMENT_IDENTIFY,
    "integrations": {
        "All": False,
        "Mixpanel": True,
        "Kissmetrics": True,
        "Google Analytics": False,
    },
}
SEGMENT_TRACK = {
    "userId": "019mr8mf4r",
    "event": "Item Purchased",
    "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:12.984Z",
    "writeKey": "YOUR_WRITE_KEY",
}
SEGMENT_PAGE = {
    "userId": "019mr8mf4r",
    "name": "Tracking HTTP API",
    "timestamp": "2012-12-02T00:31:29.738Z",
    "writeKey": "YOUR_WRITE_KEY",
}
SEGMENT_TRACK_WITH_MESSAGE_ID = {
    "event": "happy-path-a3ef8a6f-0482-4694-bc4d-4afba03a0eab",
    "email": "test@example.org",
    "messageId": "58524f3a-3b76-4eac-aa97-d88bccdf4f77",
    "userId": "123",
    "type": "track",
    "writeKey": "DmBXIN4JnwqBnTqXccTF0wBnLXNQmFtk",
}
SEGMENT_BATCH = {
    "batch": [
        {
            "type": "identify",
            "userId": "019mr8mf4r",
            "traits": {"email": "jake@yahoo.com", "name": "Jake Peterson", "age": 26},
            "timestamp": "2012-12-02T00:30:08.276Z",
        },
        {
            "type": "track",
            "userId": "019mr8mf4r",
            "event": "Song Played",
            "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
        {
            "type": "identify",
            "userId": "971mj8mk7p",
            "traits": {"email": "cindy@example.com", "name": "Cindy Gonzalez", "age": 23},
            "timestamp": "2015-2-02T00:30:08.276Z",
        },
        {
            "type": "track",
            "userId": "971mj8mk7p",
            "event": "Song Played",
            "properties": {"name": "Get Right", "artist": "Jennifer Lopez"},
            "timestamp": "2015-2-02T00:30:12.984Z",
        },
    ],
    "writeKey": "YOUR_WRITE_KEY",
    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
}


@pytest.fixture
def key_a(workspace_a):
    return ApiKeyFactory(workspace=workspace_a)


@pytest.fixture
def key_b(workspace_b):
    return ApiKeyFactory(workspace=workspace_b)


def basic_auth(key) -> dict[str, str]:
    token = base64.b64encode(f"{key.secret}:".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def send(path, payload, key=None, client=None, **extra):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    headers = basic_auth(key) if key is not None else {}
    return (client or Client()).post(
        f"/v1/{path}", data=body, content_type="application/json", **headers, **extra
    )


def contacts(workspace):
    return Contact.objects.for_workspace(workspace)


def events(workspace):
    return Event.objects.for_workspace(workspace)


# --- Segment's examples ----------------------------------------------------------------


def test_segment_identify_example_creates_the_contact(workspace_a, key_a):
    response = send("identify", SEGMENT_IDENTIFY_WITH_INTEGRATIONS, key_a)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    contact = contacts(workspace_a).get()
    assert contact.email == "pgibbons@example.com"
    assert contact.external_id == "019mr8mf4r"
    assert (contact.first_name, contact.last_name) == ("Peter", "Gibbons")
    assert contact.attributes == {"industry": "Technology"}
    assert contact.source == "api"


def test_segment_track_example_is_stored_as_sent_with_its_revenue(workspace_a, key_a):
    send("identify", SEGMENT_IDENTIFY, key_a)
    response = send("track", SEGMENT_TRACK, key_a)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    event = events(workspace_a).get()
    assert event.name == "Item Purchased"
    assert event.contact == contacts(workspace_a).get()
    assert event.properties == {"name": "Leap to Conclusions Mat", "revenue": 14.99}
    assert event.revenue == Decimal("14.99")
    assert event.context == {"ip": "24.5.68.47"}
    assert event.occurred_at == dt.datetime(2012, 12, 2, 0, 30, 12, 984000, tzinfo=dt.UTC)


def test_segment_page_example_becomes_a_page_view(workspace_a, key_a):
    response = send("page", SEGMENT_PAGE, key_a)

    assert response.status_code == 200
    event = events(workspace_a).get()
    assert event.name == "page_viewed"
    assert event.properties == {"name": "Tracking HTTP API"}
    assert event.user_id == "019mr8mf4r"  # kept until that user is identified


def test_segment_batch_example_is_accepted_as_published(workspace_a, key_a):
    response = send("batch", SEGMENT_BATCH, key_a)

    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 4, "duplicates": 0}
    jake = contacts(workspace_a).get(external_id="019mr8mf4r")
    assert jake.email == "jake@yahoo.com"
    assert jake.attributes == {"age": 26}
    played = events(workspace_a).filter(name="Song Played").order_by("occurred_at")
    assert [e.contact.email for e in played] == ["jake@yahoo.com", "cindy@example.com"]
    assert played[1].occurred_at == dt.datetime(2015, 2, 2, 0, 30, 12, 984000, tzinfo=dt.UTC)
    assert played[0].context == {"device": {"type": "phone", "name": "Apple iPhone 6"}}


def test_segment_track_with_message_id_and_write_key_in_the_body(workspace_a, key_a):
    payload = {**SEGMENT_TRACK_WITH_MESSAGE_ID, "writeKey": key_a.secret}

    response = send("track", payload)

    assert response.status_code == 200
    event = events(workspace_a).get()
    assert event.message_id == "58524f3a-3b76-4eac-aa97-d88bccdf4f77"
    assert event.name == "happy-path-a3ef8a6f-0482-4694-bc4d-4afba03a0eab"


def test_screen_group_and_alias_calls_are_accepted(workspace_a, key_a):
    ContactFactory(workspace=workspace_a, external_id="019mr8mf4r")
    send("track", {"anonymousId": "39239-239239-239239-23923", "event": "Viewed"}, key_a)

    screen = send("screen", {**SEGMENT_PAGE, "name": "Home"}, key_a)
    group = send(
        "group",
        {"userId": "019mr8mf4r", "groupId": "8e9df332ac", "traits": {"name": "Initech"}},
        key_a,
    )
    alias = send(
        "alias", {"previousId": "39239-239239-239239-23923", "userId": "019mr8mf4r"}, key_a
    )

    assert [screen.status_code, group.status_code, alias.status_code] == [200, 200, 200]
    names = set(events(workspace_a).values_list("name", flat=True))
    assert names == {"Viewed", "screen_viewed", "group_joined"}
    assert not events(workspace_a).filter(contact__isnull=True).exists()


def test_older_libraries_post_batches_to_import_and_may_gzip_them(workspace_a, key_a):
    body = gzip.compress(json.dumps(SEGMENT_BATCH).encode())

    response = send("import", body, key_a, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 200
    assert events(workspace_a).count() == 2


def test_a_batch_as_analytics_python_sends_it(workspace_a, key_a):
    """The shape of analytics-python 2.x: nulls for absent ids, empty integrations, an
    offset time, the library in the context and sentAt and writeKey beside the batch."""
    message = {
        "integrations": {},
        "anonymousId": None,
        "timestamp": "2026-11-23T09:30:12.984000+00:00",
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        "type": "track",
        "userId": "u-9",
        "event": "Signed Up",
        "properties": {"plan": "pro"},
        "messageId": "0d1f6a8e-2c49-4b77-9f0e-5b3c1a7d2e64",
    }
    body = {"batch": [message], "sentAt": "2026-11-23T09:30:13.001000+00:00", "writeKey": "x"}

    response = send("batch", body, key_a)

    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}
    event = events(workspace_a).get()
    assert (event.name, event.user_id, event.anonymous_id) == ("Signed Up", "u-9", "")
    assert event.occurred_at == dt.datetime(2026, 11, 23, 9, 30, 12, 984000, tzinfo=dt.UTC)


# --- identity ---------------------------------------------------------------------------


def test_identify_ties_the_visitors_anonymous_history_to_the_contact(workspace_a, key_a):
    visitor = {"anonymousId": "anon-42"}
    send("page", {**visitor, "name": "Pricing"}, key_a)
    send("track", {**visitor, "event": "Cart Viewed"}, key_a)
    assert events(workspace_a).filter(contact__isnull=True).count() == 2

    send(
        "identify",
        {**visitor, "userId": "u-42", "traits": {"email": "Ana@Example.com", "firstName": "Ana"}},
        key_a,
    )
    send("track", {**visitor, "event": "Checkout Started"}, key_a)

    ana = contacts(workspace_a).get()
    assert ana.email == "ana@example.com"
    assert ana.external_id == "u-42"
    assert set(events(workspace_a).values_list("contact", flat=True)) == {ana.pk}
    assert AnonymousId.objects.for_workspace(workspace_a).get().contact == ana


def test_identify_without_email_waits_for_one_then_links_everything(workspace_a, key_a):
    send("track", {"anonymousId": "a-1", "event": "Signed Up"}, key_a)
    first = send(
        "identify", {"anonymousId": "a-1", "userId": "u-1", "traits": {"plan": "pro"}}, key_a
    )
    assert first.status_code == 200
    assert not contacts(workspace_a).exists()
    send("track", {"userId": "u-1", "event": "Upgraded"}, key_a)

    send("identify", {"userId": "u-1", "traits": {"email": "late@example.com"}}, key_a)

    contact = contacts(workspace_a).get()
    assert contact.events.count() == 2


def test_identify_updates_the_contact_and_merges_attributes(workspace_a, key_a):
    contact = ContactFactory(
        workspace=workspace_a, email="sam@example.com", attributes={"plan": "free", "seats": 1}
    )

    send(
        "identify",
        {
            "userId": "sam-1",
            "traits": {
                "email": "sam@example.com",
                "first_name": "Sam",
                "lastName": "Lee",
                "phone": "+44 20 7946 0000",
                "birthday": "1990-04-01",
                "timezone": "Europe/London",
                "locale": "en-GB",
                "plan": "pro",
            },
        },
        key_a,
    )

    contact.refresh_from_db()
    assert contact.external_id == "sam-1"
    assert (contact.first_name, contact.last_name) == ("Sam", "Lee")
    assert contact.phone == "+44 20 7946 0000"
    assert contact.birthday == dt.date(1990, 4, 1)
    assert (contact.timezone, contact.locale) == ("Europe/London", "en-GB")
    assert contact.attributes == {"plan": "pro", "seats": 1}


def test_identify_service_reports_a_new_address_taken_by_someone_else(workspace_a):
    ContactFactory(workspace=workspace_a, email="taken@example.com")
    ContactFactory(workspace=workspace_a, email="me@example.com", external_id="me")

    with pytest.raises(Exception) as caught:
        identify_contact(workspace=workspace_a, user_id="me", traits={"email": "taken@example.com"})

    assert "traits.email" in caught.value.message_dict


# --- retries ----------------------------------------------------------------------------


def test_a_retried_call_with_the_same_message_id_is_stored_once(workspace_a, key_a):
    call = {"userId": "u1", "event": "Order Completed", "messageId": "m-1"}

    assert send("track", call, key_a).status_code == 200
    assert send("track", call, key_a).status_code == 200
    retried = send("batch", {"batch": [{**call, "type": "track"}] * 3}, key_a)

    assert retried.json() == {"success": True, "accepted": 3, "duplicates": 3}
    assert events(workspace_a).count() == 1


# --- bad input --------------------------------------------------------------------------


def test_malformed_json_gets_400_with_a_clear_message(key_a):
    response = send("track", '{"userId": "u1", "event": ', key_a)

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["detail"].startswith("Malformed JSON")


def test_a_body_that_is_not_an_object_or_is_empty_is_refused(key_a):
    assert send("track", "[1, 2]", key_a).json()["detail"] == "The body must be a JSON object."
    assert send("track", "", key_a).status_code == 400


def test_track_without_an_event_name_names_the_field(workspace_a, key_a):
    response = send("track", {"userId": "u1", "properties": {}}, key_a)

    assert response.status_code == 400
    assert "event" in response.json()["errors"]
    assert not events(workspace_a).exists()


def test_a_call_without_any_identity_is_refused(key_a):
    response = send("track", {"event": "Orphan"}, key_a)

    assert response.json()["errors"] == {"userId": ["Give a userId or an anonymousId."]}


def test_wrong_types_are_named_field_by_field(workspace_a, key_a):
    response = send(
        "track",
        {
            "userId": {"id": 1},
            "event": "Order Completed",
            "properties": ["not", "an", "object"],
            "context": "web",
            "timestamp": "yesterday",
        },
        key_a,
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"userId", "properties", "context", "timestamp"}
    assert not events(workspace_a).exists()


def test_revenue_must_be_an_amount_and_currency_a_code(workspace_a, key_a):
    bad = send(
        "track",
        {
            "userId": "u",
            "event": "Order Completed",
            "properties": {"total": "lots", "currency": "euro"},
        },
        key_a,
    )
    good = send(
        "track",
        {
            "userId": "u",
            "event": "Order Completed",
            "properties": {"total": "42.50", "currency": "eur"},
        },
        key_a,
    )

    assert set(bad.json()["errors"]) == {"properties.total", "properties.currency"}
    assert good.status_code == 200
    order = events(workspace_a).get()
    assert (order.revenue, order.currency) == (Decimal("42.50"), "EUR")


def test_an_invalid_email_in_traits_is_named(workspace_a, key_a):
    response = send("identify", {"userId": "u1", "traits": {"email": "not-an-address"}}, key_a)

    assert response.status_code == 400
    assert "traits.email" in response.json()["errors"]
    assert not contacts(workspace_a).exists()


def test_traits_are_checked_against_custom_fields(workspace_a, key_a):
    CustomFieldFactory(workspace=workspace_a, key="age", field_type=FieldType.NUMBER)

    response = send(
        "identify", {"userId": "u1", "traits": {"email": "a@example.com", "age": "old"}}, key_a
    )

    assert response.status_code == 400
    assert "traits.age" in response.json()["errors"]


def test_an_oversized_call_gets_413_naming_the_limit(workspace_a, key_a):
    big = {"userId": "u1", "event": "Big", "properties": {"blob": "x" * 33_000}}

    response = send("track", big, key_a)

    assert response.status_code == 413
    assert "32 KB" in response.json()["detail"]
    assert not events(workspace_a).exists()


def test_an_oversized_batch_gets_413_naming_the_limit(key_a):
    calls = [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 20_000}}]

    response = send("batch", {"batch": calls * 30}, key_a)

    assert response.status_code == 413
    assert "500 KB" in response.json()["detail"]


def test_a_batch_reports_each_refused_call_and_writes_the_others(workspace_a, key_a):
    batch = [
        {"type": "track", "userId": "u", "event": "Fine"},
        {"type": "track", "userId": "u"},
        {"type": "page", "anonymousId": "a", "name": "Home"},
        {"type": "identify", "userId": "u", "traits": {"email": "nope"}},
        {"type": "launch", "userId": "u"},
        "not a call",
        {"userId": "u", "event": "No type"},
        {"type": "track", "userId": "u", "event": "Huge", "properties": {"x": "y" * 33_000}},
    ]

    response = send("batch", {"batch": batch}, key_a)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is False
    assert body["accepted"] == 2
    refused = {item["index"]: item["errors"] for item in body["results"]}
    assert sorted(refused) == [1, 3, 4, 5, 6, 7]
    assert "event" in refused[1]
    assert "traits.email" in refused[3]
    assert "type" in refused[4] and "type" in refused[6]
    assert "32 KB" in refused[7]["call"][0]
    assert set(events(workspace_a).values_list("name", flat=True)) == {"Fine", "page_viewed"}


def test_a_batch_without_a_list_of_calls_is_refused(key_a):
    response = send("batch", {"batch": {"type": "track"}}, key_a)

    assert response.status_code == 400
    assert "batch" in response.json()["detail"]


def test_lenient_and_strict_times():
    assert parse_time("2015-2-02T00:30:08.276Z") == dt.datetime(
        2015, 2, 2, 0, 30, 8, 276000, tzinfo=dt.UTC
    )
    assert parse_time("2026-11-23T10:00:00+02:00") == dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)
    with pytest.raises(Exception, match="not a valid time"):
        parse_time("2026-13-40T00:00:00Z")


def test_the_senders_clock_skew_is_corrected_with_sent_at(workspace_a, key_a):
    call = {
        "userId": "u",
        "event": "Clicked",
        "originalTimestamp": "2026-11-23T09:59:00Z",  # the device clock is 2 hours fast
        "sentAt": "2026-11-23T10:00:00Z",
    }
    with time_machine.travel(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC), tick=False):
        send("track", call, key_a)

    assert events(workspace_a).get().occurred_at == dt.datetime(2026, 11, 23, 7, 59, tzinfo=dt.UTC)


# --- authentication and tenancy --------------------------------------------------------


def test_a_revoked_key_gets_401(workspace_a, key_a):
    revoke_api_key(workspace=workspace_a, api_key=key_a)

    response = send("track", SEGMENT_TRACK, key_a)

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert not events(workspace_a).exists()


def test_no_key_and_a_wrong_write_key_get_401(workspace_a):
    assert send("track", {"userId": "u", "event": "E"}).status_code == 401
    assert send("track", SEGMENT_TRACK).status_code == 401  # "YOUR_WRITE_KEY"
    assert send("track", "{broken").status_code == 401
    assert not events(workspace_a).exists()


def test_a_signed_in_session_is_not_a_write_key(owner_client, workspace_a):
    response = send("track", {"userId": "u", "event": "E"}, client=owner_client)

    assert response.status_code == 401
    assert not events(workspace_a).exists()


def test_a_key_of_workspace_b_never_touches_workspace_a(workspace_a, workspace_b, key_b):
    known = ContactFactory(
        workspace=workspace_a, email="shared@example.com", external_id="u-1", first_name="Ann"
    )

    send(
        "batch",
        {
            "batch": [
                {
                    "type": "identify",
                    "userId": "u-1",
                    "anonymousId": "a-1",
                    "traits": {"email": "shared@example.com", "firstName": "Bea"},
                },
                {"type": "track", "userId": "u-1", "event": "Order Completed"},
                {"type": "alias", "userId": "u-1", "previousId": "a-1"},
            ]
        },
        key_b,
    )

    known.refresh_from_db()
    assert known.first_name == "Ann"
    assert not events(workspace_a).exists()
    in_b = contacts(workspace_b).get()
    assert in_b.first_name == "Bea"
    assert events(workspace_b).get().contact == in_b


def test_a_batch_of_100_events_takes_a_bounded_number_of_queries(
    workspace_a, key_a, django_assert_max_num_queries
):
    for n in range(20):
        ContactFactory(workspace=workspace_a, external_id=f"user-{n}")
    batch = [
        {
            "type": "track",
            "userId": f"user-{n % 30}",
            "event": "Product Viewed",
            "messageId": f"msg-{n}",
            "timestamp": f"2026-11-23T10:{n % 60:02d}:00Z",
        }
        for n in range(100)
    ]
    send("track", {"userId": "warm-up", "event": "E"}, key_a)  # the key's last use is written

    with django_assert_max_num_queries(8):
        response = send("batch", {"batch": batch}, key_a)

    assert response.json()["accepted"] == 100
    assert events(workspace_a).count() == 101

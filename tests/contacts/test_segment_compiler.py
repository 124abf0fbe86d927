"""The rule compiler against hand-made contacts and events. Every answer is also checked
against the Python evaluator, so these cases pin down both."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from contacts.models import (
    Contact,
    FieldType,
    Segment,
    SegmentKind,
    SegmentMembership,
    TopicPreference,
)
from contacts.segments.compiler import compile_rules, matching_contacts
from contacts.segments.evaluator import evaluate, facts_for
from contacts.segments.rules import EMAIL_CLICKED, EMAIL_OPENED, validate_rules
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    EventFactory,
    LifecycleStageFactory,
    PersonaFactory,
    TagFactory,
    TopicFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def shop():
    return WorkspaceFactory(name="Shop", slug="shop", timezone="Europe/Paris")


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def person(workspace, email, **fields):
    return ContactFactory(workspace=workspace, email=f"{email}@example.com", **fields)


def event(contact, name, *, days_ago=0.0, at=None, **fields):
    occurred_at = at or NOW - dt.timedelta(days=days_ago)
    return EventFactory(
        workspace=contact.workspace, contact=contact, name=name, occurred_at=occurred_at, **fields
    )


def matches(workspace, tree, *, now=NOW):
    """Who the SQL selects (by email prefix), after checking the evaluator agrees."""
    tree = validate_rules(workspace, tree)
    selected = {c.email.split("@")[0] for c in matching_contacts(workspace, tree, now=now)}
    everyone = Contact.objects.for_workspace(workspace)
    evaluated = {
        c.email.split("@")[0] for c in everyone if evaluate(tree, facts_for(workspace, c), now=now)
    }
    assert selected == evaluated, "compiler and evaluator disagree"
    return selected


def field(name, op, value=None):
    return {"type": "field", "field": name, "op": op, "value": value}


def group(match, *children):
    return {"type": "group", "match": match, "children": list(children)}


# --- contact fields ----------------------------------------------------------------------


def test_text_operators_ignore_case_and_skip_missing_values(shop):
    person(shop, "ann", first_name="Ann", last_name="")
    person(shop, "anna", first_name="ANNA", last_name="Smith")
    person(shop, "bob", first_name="Bob", last_name="Annis")
    person(shop, "blank", first_name="", last_name="")

    assert matches(shop, field("first_name", "equals", "ann")) == {"ann"}
    assert matches(shop, field("first_name", "contains", "NN")) == {"ann", "anna"}
    assert matches(shop, field("first_name", "starts_with", "an")) == {"ann", "anna"}
    assert matches(shop, field("first_name", "ends_with", "b")) == {"bob"}
    assert matches(shop, field("first_name", "in", ["bob", "ann"])) == {"ann", "bob"}
    # A missing value matches no operator but "is not set".
    assert matches(shop, field("first_name", "not_equals", "ann")) == {"anna", "bob"}
    assert matches(shop, field("first_name", "not_in", ["ann"])) == {"anna", "bob"}
    assert matches(shop, field("last_name", "not_contains", "ann")) == {"anna"}
    assert matches(shop, field("last_name", "is_set")) == {"anna", "bob"}
    assert matches(shop, field("last_name", "is_not_set")) == {"ann", "blank"}


def test_like_wildcards_in_a_value_are_taken_literally(shop):
    person(shop, "percent", first_name="100% fun")
    person(shop, "plain", first_name="100 fun")
    assert matches(shop, field("first_name", "contains", "0%")) == {"percent"}
    assert matches(shop, field("first_name", "contains", "_")) == set()


def test_nullable_text_field(shop):
    person(shop, "known", external_id="cus_1")
    person(shop, "unknown", external_id=None)
    assert matches(shop, field("external_id", "is_not_set")) == {"unknown"}
    assert matches(shop, field("external_id", "not_equals", "cus_2")) == {"known"}


def test_datetime_fields_use_windows_and_the_workspace_day(shop, clock):
    with time_machine.travel(NOW - dt.timedelta(days=3), tick=False):
        person(shop, "recent")
    with time_machine.travel(NOW - dt.timedelta(days=40), tick=False):
        person(shop, "old")
    # 31 Jan 23:30 UTC is already 1 February in Paris.
    person(shop, "late", last_activity_at=dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.UTC))
    person(shop, "early", last_activity_at=dt.datetime(2026, 1, 31, 22, 30, tzinfo=dt.UTC))

    assert matches(shop, field("created_at", "within_last_days", 7)) == {"recent", "late", "early"}
    assert matches(shop, field("created_at", "more_than_days_ago", 30)) == {"old"}
    assert matches(shop, field("last_activity_at", "after", "2026-01-31")) == {"late"}
    assert matches(shop, field("last_activity_at", "before", "2026-02-01")) == {"early"}
    assert matches(shop, field("last_activity_at", "between", ["2026-02-01", "2026-02-01"])) == {
        "late"
    }
    assert matches(shop, field("last_activity_at", "is_not_set")) == {"recent", "old"}


def test_birthday_anniversaries_wrap_round_the_new_year(shop):
    person(shop, "dec30", birthday=dt.date(1990, 12, 30))
    person(shop, "jan3", birthday=dt.date(1985, 1, 3))
    person(shop, "jan10", birthday=dt.date(1985, 1, 10))
    person(shop, "none", birthday=None)
    new_year = dt.datetime(2026, 12, 28, 9, 0, tzinfo=dt.UTC)
    tree = field("birthday", "anniversary_within_days", 7)
    assert matches(shop, tree, now=new_year) == {"dec30", "jan3"}
    assert matches(shop, field("birthday", "anniversary_within_days", 400), now=new_year) == {
        "dec30",
        "jan3",
        "jan10",
    }


def test_a_leap_day_birthday_is_celebrated_on_28_february(shop):
    person(shop, "leap", birthday=dt.date(2000, 2, 29))
    feb_28_2027 = dt.datetime(2027, 2, 28, 9, 0, tzinfo=dt.UTC)
    assert matches(shop, field("birthday", "anniversary_within_days", 0), now=feb_28_2027) == {
        "leap"
    }
    mar_1_2027 = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert matches(shop, field("birthday", "anniversary_within_days", 5), now=mar_1_2027) == set()


def test_birthday_date_comparisons(shop, clock):
    person(shop, "young", birthday=dt.date(2010, 5, 1))
    person(shop, "old", birthday=dt.date(1950, 5, 1))
    person(shop, "soon", birthday=dt.date(2026, 3, 20))
    assert matches(shop, field("birthday", "before", "2000-01-01")) == {"old"}
    assert matches(shop, field("birthday", "within_next_days", 10)) == {"soon"}
    assert matches(shop, field("birthday", "more_than_days_ago", 3650)) == {"old", "young"}


# --- custom attributes ---------------------------------------------------------------------


def test_number_attributes_compare_only_numbers(shop):
    CustomFieldFactory(workspace=shop, key="shoe_size", label="Shoe size", field_type="number")
    person(shop, "small", attributes={"shoe_size": 37})
    person(shop, "big", attributes={"shoe_size": 45.5})
    person(shop, "text", attributes={"shoe_size": "45"})  # stored before the field existed
    person(shop, "null", attributes={"shoe_size": None})
    person(shop, "none", attributes={})
    person(shop, "huge", attributes={"shoe_size": 10**400})  # no float holds it

    assert matches(shop, field("attributes.shoe_size", "gt", "40")) == {"big", "huge"}
    assert matches(shop, field("attributes.shoe_size", "between", [37, 45.5])) == {"small", "big"}
    assert matches(shop, field("attributes.shoe_size", "not_equals", 37)) == {"big", "huge"}
    assert matches(shop, field("attributes.shoe_size", "is_set")) == {
        "small",
        "big",
        "text",
        "huge",
    }
    assert matches(shop, field("attributes.shoe_size", "is_not_set")) == {"null", "none"}


def test_text_boolean_and_choice_attributes(shop):
    CustomFieldFactory(
        workspace=shop,
        key="tier",
        label="Tier",
        field_type=FieldType.CHOICE,
        choices=["Gold", "Silver"],
    )
    CustomFieldFactory(workspace=shop, key="vip", label="VIP", field_type=FieldType.BOOLEAN)
    person(shop, "gold", attributes={"tier": "Gold", "vip": True, "city": "Paris"})
    person(shop, "silver", attributes={"tier": "Silver", "vip": False, "city": ""})
    person(shop, "bare", attributes={"city": 75})

    assert matches(shop, field("attributes.tier", "in", ["gold"])) == {"gold"}
    assert matches(shop, field("attributes.vip", "is_true")) == {"gold"}
    assert matches(shop, field("attributes.vip", "is_false")) == {"silver"}
    assert matches(shop, field("attributes.city", "equals", "PARIS")) == {"gold"}
    # An attribute without a custom field is text: the number 75 is not the text "75".
    assert matches(shop, field("attributes.city", "equals", "75")) == set()
    assert matches(shop, field("attributes.city", "is_not_set")) == {"silver"}


def test_date_attributes(shop, clock):
    CustomFieldFactory(workspace=shop, key="renews", label="Renews on", field_type=FieldType.DATE)
    person(shop, "soon", attributes={"renews": "2026-03-20"})
    person(shop, "later", attributes={"renews": "2026-09-01"})
    person(shop, "anniversary", attributes={"renews": "2019-03-16"})
    person(shop, "garbage", attributes={"renews": "next spring"})

    assert matches(shop, field("attributes.renews", "within_next_days", 30)) == {"soon"}
    assert matches(shop, field("attributes.renews", "after", "2026-03-19")) == {"soon", "later"}
    assert matches(shop, field("attributes.renews", "anniversary_within_days", 7)) == {
        "soon",
        "anniversary",
    }
    assert matches(shop, field("attributes.renews", "is_set")) == {
        "soon",
        "later",
        "anniversary",
        "garbage",
    }


# --- the audience --------------------------------------------------------------------------


def test_tags_stages_personas_and_status(shop):
    vip, lapsed = TagFactory(workspace=shop, name="VIP"), TagFactory(workspace=shop, name="Lapsed")
    decision = LifecycleStageFactory(workspace=shop, name="Decision")
    other_stage = LifecycleStageFactory(workspace=shop, name="Awareness")
    maker = PersonaFactory(workspace=shop, name="Maker")
    a = person(shop, "a", lifecycle_stage=decision, persona=maker, status="subscribed")
    a.tags.add(vip)
    b = person(shop, "b", lifecycle_stage=other_stage, status="unsubscribed")
    b.tags.add(vip, lapsed)
    person(shop, "c")

    def ref(kind, op, value):
        return {"type": kind, "op": op, "value": str(value.public_id) if value else None}

    assert matches(shop, ref("tag", "has", vip)) == {"a", "b"}
    assert matches(shop, ref("tag", "has_not", lapsed)) == {"a", "c"}
    assert matches(shop, ref("stage", "is", decision)) == {"a"}
    assert matches(shop, ref("stage", "is_not", decision)) == {"b", "c"}
    assert matches(shop, ref("stage", "is", None)) == {"c"}
    assert matches(shop, ref("persona", "is", maker)) == {"a"}
    assert matches(shop, ref("persona", "is_not", None)) == {"a"}
    assert matches(shop, {"type": "status", "op": "is_not", "value": "subscribed"}) == {"b"}


def test_topics_follow_preferences_then_the_topic_default(shop):
    news = TopicFactory(workspace=shop, name="News", default_subscribed=True)
    offers = TopicFactory(workspace=shop, name="Offers", default_subscribed=False)
    out = person(shop, "out")
    opted_in = person(shop, "in")
    person(shop, "default")
    TopicPreference.objects.create(workspace=shop, contact=out, topic=news, subscribed=False)
    TopicPreference.objects.create(workspace=shop, contact=opted_in, topic=offers, subscribed=True)

    def topic(op, value):
        return {"type": "topic", "op": op, "value": str(value.public_id)}

    assert matches(shop, topic("subscribed", news)) == {"in", "default"}
    assert matches(shop, topic("subscribed", offers)) == {"in"}
    assert matches(shop, topic("not_subscribed", offers)) == {"out", "default"}


def test_segment_membership_reads_current_memberships(shop):
    vips = Segment.objects.create(workspace=shop, name="VIPs", kind=SegmentKind.STATIC)
    inside, left = person(shop, "inside"), person(shop, "left")
    person(shop, "never")
    SegmentMembership.objects.create(workspace=shop, segment=vips, contact=inside, entered_at=NOW)
    SegmentMembership.objects.create(
        workspace=shop, segment=vips, contact=left, entered_at=NOW, exited_at=NOW
    )
    member = {"type": "segment", "op": "member", "value": str(vips.public_id)}
    assert matches(shop, member) == {"inside"}
    assert matches(shop, {**member, "op": "not_member"}) == {"left", "never"}


# --- events --------------------------------------------------------------------------------


def test_event_counts_in_a_window(shop, clock):
    twice, once, old, none = (person(shop, n) for n in ("twice", "once", "old", "none"))
    event(twice, "order_placed", days_ago=5)
    event(twice, "order_placed", days_ago=80)
    event(once, "order_placed", days_ago=10)
    event(old, "order_placed", days_ago=100)
    event(old, "order_placed", days_ago=200)
    event(none, "page_viewed", days_ago=1)

    def placed(count=None, window=None, performed=True):
        tree = {"type": "event", "name": "order_placed", "performed": performed}
        if count:
            tree["count"] = {"op": count[0], "value": count[1]}
        if window:
            tree["window"] = {"kind": "last_days", "days": window}
        return tree

    assert matches(shop, placed()) == {"twice", "once", "old"}
    assert matches(shop, placed(("at_least", 2), 90)) == {"twice"}
    assert matches(shop, placed(("at_least", 2))) == {"twice", "old"}
    assert matches(shop, placed(("at_most", 1), 90)) == {"once", "old", "none"}
    assert matches(shop, placed(("exactly", 0), 90)) == {"old", "none"}
    assert matches(shop, placed(("exactly", 1), 30)) == {"twice", "once"}
    assert matches(shop, placed(window=30, performed=False)) == {"old", "none"}


def test_event_property_filters_and_date_windows(shop):
    big, small, text = person(shop, "big"), person(shop, "small"), person(shop, "text")
    feb_1_paris = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.UTC)
    event(big, "order_placed", at=feb_1_paris, properties={"total": 120, "coupon": "SPRING"})
    event(small, "order_placed", at=feb_1_paris, properties={"total": 20, "coupon": "spring"})
    event(text, "order_placed", at=feb_1_paris, properties={"total": "120"})

    def placed(*where, window=None):
        return {
            "type": "event",
            "name": "order_placed",
            "where": list(where),
            "window": window or {"kind": "ever"},
        }

    assert matches(shop, placed({"property": "total", "op": "gte", "value": 100})) == {"big"}
    assert matches(shop, placed({"property": "coupon", "op": "equals", "value": "Spring"})) == {
        "big",
        "small",
    }
    assert matches(shop, placed({"property": "coupon", "op": "is_not_set"})) == {"text"}
    february = {"kind": "between", "start": "2026-02-01", "end": "2026-02-28"}
    assert matches(shop, placed(window=february)) == {"big", "small", "text"}
    january = {"kind": "between", "start": "2026-01-01", "end": "2026-01-31"}
    assert matches(shop, placed(window=january)) == set()


def test_first_and_last_time_performed(shop, clock):
    regular, lapsed, newcomer = (person(shop, n) for n in ("regular", "lapsed", "newcomer"))
    person(shop, "never")
    event(regular, "order_placed", days_ago=300)
    event(regular, "order_placed", days_ago=2)
    event(lapsed, "order_placed", days_ago=200)
    event(newcomer, "order_placed", days_ago=5)

    def timed(which, op, value):
        return {
            "type": "event_time",
            "name": "order_placed",
            "which": which,
            "op": op,
            "value": value,
        }

    assert matches(shop, timed("last", "more_than_days_ago", 60)) == {"lapsed"}
    assert matches(shop, timed("last", "within_last_days", 30)) == {"regular", "newcomer"}
    assert matches(shop, timed("first", "within_last_days", 30)) == {"newcomer"}
    assert matches(shop, timed("first", "before", "2025-12-01")) == {"regular", "lapsed"}
    assert matches(shop, timed("last", "after", "2026-03-01")) == {"regular", "newcomer"}
    assert matches(shop, timed("last", "before", "2026-03-01")) == {"lapsed"}


def test_revenue_sums_over_a_window(shop, clock):
    whale, minnow, old = person(shop, "whale"), person(shop, "minnow"), person(shop, "old")
    person(shop, "browser")
    event(whale, "order_placed", days_ago=3, revenue=Decimal("120.00"))
    event(whale, "order_placed", days_ago=20, revenue=Decimal("90.50"))
    event(whale, "refund_issued", days_ago=1, revenue=Decimal("-50.00"))
    event(minnow, "order_placed", days_ago=3, revenue=Decimal("9.99"))
    event(old, "order_placed", days_ago=400, revenue=Decimal("999.00"))

    def spent(op, value, name=None, days=None):
        window = {"kind": "last_days", "days": days} if days else {"kind": "ever"}
        return {"type": "revenue", "name": name, "op": op, "value": value, "window": window}

    assert matches(shop, spent("gt", 200, name="order_placed", days=90)) == {"whale"}
    assert matches(shop, spent("gt", 200, days=90)) == set()  # 160.50 after the refund
    assert matches(shop, spent("gte", 160.5, days=90)) == {"whale"}
    # No revenue is a total of 0, so "less than 10" includes contacts who bought nothing.
    assert matches(shop, spent("lt", 10, days=90)) == {"minnow", "old", "browser"}
    assert matches(shop, spent("between", [0, 10], days=90)) == {"minnow", "old", "browser"}
    assert matches(shop, spent("gte", 999)) == {"old"}


def test_email_engagement(shop, clock):
    campaign = "1f0c5c1e-5b1a-4e57-9d6c-2b1b8f2f2a11"
    reader, bot, clicker, silent = (person(shop, n) for n in ("reader", "bot", "clicker", "silent"))
    event(reader, EMAIL_OPENED, days_ago=3, properties={"campaign_id": campaign})
    event(bot, EMAIL_OPENED, days_ago=3, properties={"campaign_id": campaign, "human": False})
    event(clicker, EMAIL_CLICKED, days_ago=40, properties={"journey_id": campaign})
    event(silent, "email_received", days_ago=2, properties={"campaign_id": campaign})

    def engaged(action, performed=True, scope=None, days=30):
        return {
            "type": "engagement",
            "action": action,
            "performed": performed,
            "scope": scope or {"kind": "any"},
            "days": days,
        }

    assert matches(shop, engaged("opened")) == {"reader"}
    assert matches(shop, engaged("opened", scope={"kind": "campaign", "id": campaign})) == {
        "reader"
    }
    assert matches(shop, engaged("clicked", days=60)) == {"clicker"}
    assert matches(shop, engaged("received")) == {"silent"}
    assert matches(shop, engaged("opened", performed=False)) == {"bot", "clicker", "silent"}


# --- groups --------------------------------------------------------------------------------


def test_nested_groups_with_all_any_and_none(shop, clock):
    vip = TagFactory(workspace=shop, name="VIP")
    ann = person(shop, "ann", first_name="Ann", birthday=dt.date(1990, 3, 20))
    ann.tags.add(vip)
    bob = person(shop, "bob", first_name="Bob")
    event(bob, "order_placed", days_ago=2)
    person(shop, "cy", first_name="Cy")

    vip_or_buyer = group(
        "any",
        {"type": "tag", "op": "has", "value": str(vip.public_id)},
        {"type": "event", "name": "order_placed"},
    )
    assert matches(shop, vip_or_buyer) == {"ann", "bob"}
    assert matches(shop, group("none", vip_or_buyer)) == {"cy"}
    # NONE over a nullable field keeps contacts without a birthday.
    birthday_soon = field("birthday", "anniversary_within_days", 30)
    assert matches(shop, group("none", birthday_soon)) == {"bob", "cy"}
    assert matches(
        shop, group("all", group("none", field("first_name", "equals", "bob")), vip_or_buyer)
    ) == {"ann"}


def test_another_workspaces_contacts_never_match(shop, workspace_b):
    person(shop, "mine", first_name="Ann")
    ContactFactory(workspace=workspace_b, email="theirs@example.com", first_name="Ann")
    assert matches(shop, field("first_name", "equals", "ann")) == {"mine"}


def test_unknown_ids_match_nothing(shop):
    person(shop, "a")
    unknown = "2a3f3b1c-1111-4222-8333-944455556666"
    q_has = compile_rules(shop, {"type": "tag", "op": "has", "value": unknown}, now=NOW)
    q_not = compile_rules(shop, {"type": "stage", "op": "is_not", "value": unknown}, now=NOW)
    contacts = Contact.objects.for_workspace(shop)
    assert contacts.filter(q_has).count() == 0
    assert contacts.filter(q_not).count() == 1


def test_counting_a_segment_is_one_query(shop, django_assert_num_queries):
    vip = TagFactory(workspace=shop, name="VIP")
    stage = LifecycleStageFactory(workspace=shop)
    topic = TopicFactory(workspace=shop)
    segment = Segment.objects.create(workspace=shop, name="Old", kind=SegmentKind.STATIC)
    tree = group(
        "all",
        {"type": "tag", "op": "has", "value": str(vip.public_id)},
        {"type": "stage", "op": "is_not", "value": str(stage.public_id)},
        {"type": "topic", "op": "subscribed", "value": str(topic.public_id)},
        {"type": "segment", "op": "not_member", "value": str(segment.public_id)},
        {
            "type": "event",
            "name": "order_placed",
            "count": {"op": "at_least", "value": 2},
            "window": {"kind": "last_days", "days": 90},
        },
        {"type": "revenue", "op": "gt", "value": 100, "window": {"kind": "ever"}},
        {
            "type": "event_time",
            "name": "order_placed",
            "which": "last",
            "op": "more_than_days_ago",
            "value": 10,
        },
        group("none", {"type": "engagement", "action": "opened", "days": 30}),
        field("attributes.size", "gt", 3),
    )
    with django_assert_num_queries(1):
        assert matching_contacts(shop, tree, now=NOW).count() == 0

"""Rule trees: validation that points at the bad condition, the allowlists that keep
request text out of SQL, and the plain-language summary."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from contacts.models import FieldType, Segment, SegmentKind
from contacts.segments.compiler import compile_rules, matching_contacts
from contacts.segments.describe import describe_rules, event_verbs
from contacts.segments.rules import MAX_CONDITIONS, RuleError, validate_rules
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    LifecycleStageFactory,
    PersonaFactory,
    TagFactory,
    TopicFactory,
)

pytestmark = pytest.mark.django_db


def field(name, op, value=None):
    return {"type": "field", "field": name, "op": op, "value": value}


def group(match, *children):
    return {"type": "group", "match": match, "children": list(children)}


def refused(workspace, tree, segment=None) -> RuleError:
    with pytest.raises(RuleError) as caught:
        validate_rules(workspace, tree, segment)
    return caught.value


@pytest.fixture
def shoe_size(workspace_a):
    return CustomFieldFactory(
        workspace=workspace_a, key="shoe_size", label="shoe size", field_type=FieldType.NUMBER
    )


# --- a valid tree comes back normalised ----------------------------------------------------


def test_a_valid_tree_comes_back_with_defaults_and_typed_values(workspace_a, shoe_size):
    tag = TagFactory(workspace=workspace_a)
    tree = group(
        "any",
        field("attributes.shoe_size", "gt", "42"),
        field("attributes.city", "equals", 75),
        {"type": "tag", "op": "has", "value": str(tag.public_id).upper()},
        {"type": "event", "name": " order_placed "},
        {"type": "event", "name": "order_placed", "performed": False, "count": {"value": 3}},
    )
    normalised = validate_rules(workspace_a, tree)
    children = normalised["children"]
    assert children[0]["value"] == 42  # a number field gets a number
    assert children[1]["value"] == "75"  # an attribute without a field is text
    assert children[2]["value"] == str(tag.public_id)
    assert children[3] == {
        "type": "event",
        "name": "order_placed",
        "performed": True,
        "where": [],
        "window": {"kind": "ever"},
        "count": {"op": "at_least", "value": 1},
    }
    assert "count" not in children[4]  # "did not" has no count
    assert validate_rules(workspace_a, normalised) == normalised  # idempotent


def test_a_lone_condition_is_wrapped_in_a_group(workspace_a):
    normalised = validate_rules(workspace_a, field("email", "ends_with", "@example.com"))
    assert normalised["type"] == "group" and normalised["match"] == "all"
    assert normalised["children"][0]["op"] == "ends_with"


# --- bad input points at the condition -----------------------------------------------------


def test_an_unknown_field_names_the_condition(workspace_a):
    error = refused(workspace_a, group("all", field("email", "is_set"), field("shoe", "is_set")))
    assert error.path == "children.1"
    assert error.messages == ["Condition 2 in group 1: unknown field “shoe”."]
    assert isinstance(error, ValidationError)


def test_a_wrong_operator_for_the_type_says_which_ones_fit(workspace_a, shoe_size):
    tree = group(
        "all",
        field("email", "is_set"),
        field("email", "is_set"),
        group("any", field("attributes.shoe_size", "contains", "4")),
    )
    error = refused(workspace_a, tree)
    assert error.path == "children.2.children.0"
    assert error.messages[0].startswith(
        "Condition 1 in group 1.3: “shoe size” is a number; use equals, does not equal, "
        "greater than, at least, less than, at most, between"
    )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (field("first_name", "contains"), "enter a value"),
        (field("first_name", "contains", "x" * 501), "at most 500 characters"),
        (field("first_name", "in", []), "a list of one or more values"),
        (field("first_name", "in", ["a"] * 501), "at most 500 values"),
        (field("created_at", "before", "31/01/2026"), "is not a date; use YYYY-MM-DD"),
        (field("created_at", "within_last_days", 0), "from 1 to 3650"),
        (field("created_at", "within_last_days", 3651), "from 1 to 3650"),
        (field("created_at", "between", ["2026-02-01", "2026-01-01"]), "swap them"),
        (field("created_at", "anniversary_within_days", 7), "is a date and time; use"),
        (field("attributes.shoe_size", "gt", "big"), "“big” is not a number"),
        (field("attributes.shoe_size", "between", [1]), "between needs two values"),
        (field("attributes.shoe size", "is_set"), "is not an attribute name"),
        (field("first_name", "matches", "x"), "unknown operator “matches”"),
        ({"type": "tag", "op": "has", "value": "not-a-uuid"}, "choose a tag"),
        ({"type": "status", "op": "is", "value": "happy"}, "unknown status “happy”"),
        ({"type": "sql", "op": "raw"}, "unknown condition type “sql”"),
        ({"type": "event", "name": ""}, "choose an event"),
        ({"type": "event", "name": "a", "count": {"op": "at_least", "value": 0}}, "from 1 to"),
        ({"type": "event", "name": "a", "window": {"kind": "last_days"}}, "from 1 to 3650"),
        (
            {"type": "event", "name": "a", "where": [{"property": "x'y", "op": "equals"}]},
            "property filter 1: “x'y” is not a property name",
        ),
        (
            {"type": "event", "name": "a", "where": [{"property": "t", "op": "gt", "value": "x"}]},
            "property filter 1: “x” is not a number",
        ),
        ({"type": "revenue", "op": "gt", "value": None}, "enter a number"),
        (
            {"type": "engagement", "action": "opened", "days": 30, "scope": {"kind": "campaign"}},
            "choose a campaign",
        ),
    ],
)
def test_bad_values_are_refused_with_the_reason(workspace_a, shoe_size, condition, message):
    error = refused(workspace_a, group("all", field("email", "is_set"), condition))
    assert error.path == "children.1"
    assert error.messages[0].startswith("Condition 2 in group 1: ")
    assert message in error.messages[0]


def test_a_choice_value_must_be_one_of_the_choices(workspace_a):
    CustomFieldFactory(
        workspace=workspace_a,
        key="tier",
        label="Tier",
        field_type=FieldType.CHOICE,
        choices=["Gold", "Silver"],
    )
    error = refused(workspace_a, field("attributes.tier", "equals", "Bronze"))
    assert "“Bronze” is not one of the choices of “Tier”: Gold, Silver" in error.messages[0]
    assert (
        validate_rules(workspace_a, field("attributes.tier", "equals", "gold"))["children"][0][
            "value"
        ]
        == "Gold"
    )


def test_empty_groups_are_refused(workspace_a):
    assert refused(workspace_a, group("all")).messages == [
        "Group 1 is empty; add a condition or remove the group."
    ]
    error = refused(workspace_a, group("all", field("email", "is_set"), group("none")))
    assert error.path == "children.1"
    assert error.messages == ["Group 1.2 is empty; add a condition or remove the group."]


def test_unknown_match_deep_nesting_and_too_many_conditions(workspace_a):
    assert (
        "match all, any or none"
        in refused(workspace_a, group("most", field("email", "is_set"))).messages[0]
    )
    deep = field("email", "is_set")
    for _ in range(6):
        deep = group("all", deep)
    validate_rules(workspace_a, deep)  # six groups, one inside the other
    assert "6 deep at most" in refused(workspace_a, group("all", deep)).messages[0]
    many = group("all", *[field("email", "is_set")] * (MAX_CONDITIONS + 1))
    assert refused(workspace_a, many).messages == ["The rules have 51 conditions; at most 50."]
    assert refused(workspace_a, ["not", "a", "tree"]).messages == [
        "The rules must be a group of conditions."
    ]


def test_every_error_is_listed(workspace_a):
    error = refused(
        workspace_a,
        group("all", field("nope", "is_set"), field("email", "is_set"), group("any")),
    )
    assert [path for path, _ in error.errors] == ["children.0", "children.2"]


def test_ids_must_belong_to_this_workspace(workspace_a, workspace_b):
    theirs = TagFactory(workspace=workspace_b)
    mine = TagFactory(workspace=workspace_a)
    stage = LifecycleStageFactory(workspace=workspace_b)
    topic = TopicFactory(workspace=workspace_b)
    persona = PersonaFactory(workspace=workspace_b)
    tree = group(
        "all",
        {"type": "tag", "op": "has", "value": str(mine.public_id)},
        {"type": "tag", "op": "has", "value": str(theirs.public_id)},
        {"type": "stage", "op": "is", "value": str(stage.public_id)},
        {"type": "topic", "op": "subscribed", "value": str(topic.public_id)},
        {"type": "persona", "op": "is_not", "value": str(persona.public_id)},
        {"type": "stage", "op": "is", "value": None},
    )
    error = refused(workspace_a, tree)
    assert error.errors == [
        ("children.1", "Condition 2 in group 1: that tag does not exist in this workspace."),
        ("children.2", "Condition 3 in group 1: that stage does not exist in this workspace."),
        ("children.3", "Condition 4 in group 1: that topic does not exist in this workspace."),
        ("children.4", "Condition 5 in group 1: that persona does not exist in this workspace."),
    ]


def _segment(workspace, name, rules=None):
    kind = SegmentKind.DYNAMIC if rules else SegmentKind.STATIC
    return Segment.objects.create(workspace=workspace, name=name, kind=kind, rules=rules)


def _member_of(segment):
    return {"type": "segment", "op": "member", "value": str(segment.public_id)}


def test_a_loop_through_segment_membership_is_refused(workspace_a):
    buyers = _segment(workspace_a, "Buyers")
    vips = _segment(workspace_a, "VIPs", rules=group("all", _member_of(buyers)))
    loyal = _segment(workspace_a, "Loyal", rules=group("all", _member_of(vips)))

    # Buyers may not use Loyal: Loyal → VIPs → Buyers.
    error = refused(workspace_a, group("all", field("email", "is_set"), _member_of(loyal)), buyers)
    assert error.path == "children.1"
    assert error.messages == [
        "Condition 2 in group 1: “Loyal” already depends on this segment, so using it here "
        "would make a loop."
    ]
    error = refused(workspace_a, _member_of(buyers), buyers)
    assert "cannot be built from its own members" in error.messages[0]
    # No loop: Loyal may use Buyers directly too; a new segment may use anything.
    validate_rules(workspace_a, group("all", _member_of(buyers)), loyal)
    validate_rules(workspace_a, group("all", _member_of(loyal)))


def test_a_segment_of_another_workspace_is_unknown(workspace_a, workspace_b):
    theirs = _segment(workspace_b, "Theirs")
    error = refused(workspace_a, _member_of(theirs))
    assert error.messages == [
        "Condition 1 in group 1: that segment does not exist in this workspace."
    ]


# --- the allowlists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        field('email" OR 1=1 --', "is_set"),
        field("workspace_id", "equals", "1"),
        field("public_id", "is_set"),
        field("attributes.a'b", "is_set"),
        field("attributes.123", "is_set"),  # would be an array index in a JSON path
        field("attributes.", "is_set"),
        field("email", "regex", ".*"),
        field("email", "equals); DROP TABLE contacts_contact; --", "x"),
        {"type": "event", "name": "x", "where": [{"property": 'a"b', "op": "is_set"}]},
        {"type": "event", "name": "x", "where": [{"property": "a", "op": "iregex"}]},
        {"type": "event", "name": "x", "window": {"kind": "last_days); --", "days": 1}},
        {"type": "event", "name": "x", "count": {"op": "HAVING", "value": 1}},
        {"type": "stage", "op": "is", "value": "1 OR 1=1"},
    ],
)
def test_names_off_the_allowlist_never_reach_sql(workspace_a, condition, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(RuleError):
        compile_rules(workspace_a, group("all", condition))


def test_keys_and_values_travel_as_parameters(workspace_a):
    ContactFactory(workspace=workspace_a, attributes={"shoe_size": 44, "a__contains": "x"})
    tree = group(
        "all",
        field("attributes.shoe_size", "gt", 40),
        field("first_name", "contains", "O'Brien"),
        {
            "type": "event",
            "name": "order'placed",
            "where": [{"property": "coupon code", "op": "equals", "value": "50% off"}],
        },
    )
    sql, params = matching_contacts(workspace_a, tree).query.sql_with_params()
    for text in ("shoe_size", "o'brien", "order'placed", "coupon code", "50% off"):
        assert text not in sql
    shown = " ".join(str(param) for param in params)  # SQLite gets keys as JSON paths
    for text in ("shoe_size", "o'brien", "order'placed", "coupon code", "50% off"):
        assert text in shown
    # A key that would be a lookup in a keyword filter is just a key here.
    assert (
        matching_contacts(workspace_a, field("attributes.a__contains", "equals", "X")).count() == 1
    )


# --- describe ------------------------------------------------------------------------------


def test_the_summary_reads_as_a_sentence(workspace_a):
    tree = group(
        "all",
        {
            "type": "event",
            "name": "order_placed",
            "count": {"op": "at_least", "value": 2},
            "window": {"kind": "last_days", "days": 90},
        },
        {
            "type": "engagement",
            "action": "opened",
            "performed": False,
            "scope": {"kind": "any"},
            "days": 30,
        },
    )
    assert describe_rules(workspace_a, tree) == (
        "Contacts who placed an order at least twice in the last 90 days "
        "and did not open any email in the last 30 days"
    )


def test_the_summary_names_things_and_nests_groups(workspace_a, shoe_size):
    vip = TagFactory(workspace=workspace_a, name="VIP")
    stage = LifecycleStageFactory(workspace=workspace_a, name="Decision")
    news = TopicFactory(workspace=workspace_a, name="News")
    loyal = _segment(workspace_a, "Loyal")
    tree = group(
        "any",
        {"type": "tag", "op": "has", "value": str(vip.public_id)},
        group(
            "all",
            {"type": "stage", "op": "is", "value": str(stage.public_id)},
            field("attributes.shoe_size", "between", [40, 44]),
        ),
        group(
            "none",
            {"type": "topic", "op": "subscribed", "value": str(news.public_id)},
            _member_of(loyal),
        ),
        field("birthday", "anniversary_within_days", 7),
        {"type": "revenue", "op": "gte", "value": 500, "window": {"kind": "ever"}},
        {
            "type": "event_time",
            "name": "Order Completed",
            "which": "last",
            "op": "more_than_days_ago",
            "value": 60,
        },
    )
    assert describe_rules(workspace_a, tree) == (
        "Contacts who have the tag “VIP” or (are in the stage “Decision” and whose shoe size "
        "is between 40 and 44) or match none of: are subscribed to “News”; are in the segment "
        "“Loyal” or whose birthday falls within the next 7 days or spent at least 500 in "
        "total or completed an order for the last time more than 60 days ago"
    )


def test_event_names_read_as_verbs_when_they_can():
    assert event_verbs("cart_abandoned") == ("abandoned a cart", "have not abandoned a cart")
    assert event_verbs("Order Completed")[0] == "completed an order"
    assert event_verbs("signup") == ("did “signup”", "have not done “signup”")


def test_a_summary_that_starts_with_a_field_reads_whose(workspace_a):
    tree = {
        "type": "group",
        "match": "all",
        "children": [
            {"type": "field", "field": "last_activity_at", "op": "more_than_days_ago", "value": 60},
            {"type": "status", "op": "is", "value": "subscribed"},
        ],
    }
    sentence = describe_rules(workspace_a, tree)
    assert sentence.startswith("Contacts whose last activity is more than 60 days ago")
    assert "who whose" not in sentence

"""The rule tree evaluated in Python on one contact: journeys use it for branch conditions
and the tests use it as the oracle the SQL compiler must agree with. Every rule here
mirrors compiler.py; the shared meaning (windows, date bounds, anniversaries, engagement)
lives in rules.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from contacts.models import Contact, Event, SegmentMembership, Topic, TopicPreference

from . import rules

MISSING = object()


class EventFact(NamedTuple):
    name: str
    occurred_at: dt.datetime
    properties: Any
    revenue: Decimal | None


@dataclass
class ContactFacts:
    """The plain data of one contact that rules can read. Ids are public ids (strings)."""

    fields: dict[str, Any]  # the FIELD_TYPES fields, plus "attributes": {...}
    tag_ids: frozenset[str] = frozenset()
    stage_id: str | None = None
    persona_id: str | None = None
    status: str = "subscribed"
    topic_preferences: dict[str, bool] = field(default_factory=dict)
    default_topic_ids: frozenset[str] = frozenset()  # topics subscribed by default
    events: list[EventFact] = field(default_factory=list)
    segment_ids: frozenset[str] = frozenset()  # current memberships
    timezone: str = "UTC"  # the workspace's, for day boundaries


def facts_for(
    workspace: Any, contact: Contact, *, event_names: Iterable[str] | None = None
) -> ContactFacts:
    """Everything about `contact` a rule can read (events limited to `event_names` when
    given). A handful of queries: for one contact, not for scanning an audience."""
    events = Event.objects.for_workspace(workspace).filter(contact=contact)
    if event_names is not None:
        events = events.filter(name__in=list(event_names))
    preferences = TopicPreference.objects.for_workspace(workspace).filter(contact=contact)
    memberships = SegmentMembership.objects.for_workspace(workspace).filter(
        contact=contact, exited_at__isnull=True
    )
    fields = {name: getattr(contact, name) for name in rules.FIELD_TYPES}
    fields["attributes"] = contact.attributes
    return ContactFacts(
        fields=fields,
        tag_ids=frozenset(str(p) for p in contact.tags.values_list("public_id", flat=True)),
        stage_id=_public_id(contact.lifecycle_stage),
        persona_id=_public_id(contact.persona),
        status=contact.status,
        topic_preferences={
            str(topic): subscribed
            for topic, subscribed in preferences.values_list("topic__public_id", "subscribed")
        },
        default_topic_ids=frozenset(
            str(p)
            for p in Topic.objects.for_workspace(workspace)
            .filter(default_subscribed=True)
            .values_list("public_id", flat=True)
        ),
        events=[
            EventFact(*row)
            for row in events.values_list("name", "occurred_at", "properties", "revenue")
        ],
        segment_ids=frozenset(
            str(p) for p in memberships.values_list("segment__public_id", flat=True)
        ),
        timezone=getattr(workspace, "timezone", "") or "UTC",
    )


def _public_id(related: Any) -> str | None:
    return str(related.public_id) if related is not None else None


def evaluate(tree: Any, facts: ContactFacts, *, now: dt.datetime) -> bool:
    """Whether the contact described by `facts` matches the tree at `now`."""
    return _Evaluator(facts, now).node(rules.normalise_tree(tree))


class _Evaluator:
    def __init__(self, facts: ContactFacts, now: dt.datetime) -> None:
        self.facts = facts
        self.now = now
        self.zone = facts.timezone
        self.today = rules.local_today(now, self.zone)

    def node(self, node: Mapping[str, Any]) -> bool:
        if node["type"] == "group":
            results = (self.node(child) for child in node["children"])
            if node["match"] == "all":
                return all(results)
            return not any(results) if node["match"] == "none" else any(results)
        return getattr(self, f"_{node['type']}")(node)

    # -- contact fields and attributes

    def _field(self, condition: Mapping[str, Any]) -> bool:
        name, op, value = condition["field"], condition["op"], condition["value"]
        if name.startswith(rules.ATTRIBUTE_PREFIX):
            key = name.removeprefix(rules.ATTRIBUTE_PREFIX)
            return self.json_condition(self.facts.fields.get("attributes"), key, op, value)
        field_type = rules.FIELD_TYPES[name]
        current = self.facts.fields.get(name)
        present = current is not None and current != ""
        if op == "is_set":
            return present
        if op == "is_not_set":
            return not present
        if not present:
            return False
        if field_type == rules.TEXT:
            return text_matches(str(current), op, value)
        if op == "anniversary_within_days":
            return self.month_day_matches((current.month, current.day), value)
        if field_type == rules.DATE:
            checks = rules.date_checks(op, value, self.today)
        else:
            checks = rules.instant_checks(op, value, self.now, self.zone)
        return all(rules.compare(check, current, bound) for check, bound in checks)

    def json_condition(self, container: Any, key: str, op: str, value: Any) -> bool:
        raw = container.get(key, MISSING) if isinstance(container, dict) else MISSING
        kind = json_kind(raw)
        comparison = rules.comparison_kind(op, value)
        if comparison == "presence":
            missing = kind in ("missing", "null") or raw == ""
            return not missing if op == "is_set" else missing
        if comparison == "boolean":
            if op == rules.NOT_FALSE_OP:
                return kind != "false"
            return kind == ("true" if op == "is_true" else "false")
        if comparison == "number":
            return kind == "number" and number_matches(Decimal(str(raw)), op, value)
        if kind != "string" or raw == "":
            return False
        if comparison == "text":
            return text_matches(raw, op, value)
        if not rules.ISO_DATE_PREFIX.match(raw):
            return False
        if op == "anniversary_within_days":
            return self.month_day_text_matches(raw[5:10], value)
        checks = rules.date_checks(op, value, self.today)
        return all(rules.compare(check, raw[:10], bound.isoformat()) for check, bound in checks)

    def month_day_matches(self, month_day: tuple[int, int], days: int) -> bool:
        runs = rules.anniversary_runs(self.today, days)
        return runs is None or any(start <= month_day <= end for start, end in runs)

    def month_day_text_matches(self, month_day: str, days: int) -> bool:
        runs = rules.anniversary_runs(self.today, days)
        return runs is None or any(
            f"{start[0]:02d}-{start[1]:02d}" <= month_day <= f"{end[0]:02d}-{end[1]:02d}"
            for start, end in runs
        )

    # -- audience

    def _tag(self, condition: Mapping[str, Any]) -> bool:
        has = condition["value"] in self.facts.tag_ids
        return has if condition["op"] == "has" else not has

    def _stage(self, condition: Mapping[str, Any]) -> bool:
        is_it = self.facts.stage_id == condition["value"]
        return is_it if condition["op"] == "is" else not is_it

    def _persona(self, condition: Mapping[str, Any]) -> bool:
        is_it = self.facts.persona_id == condition["value"]
        return is_it if condition["op"] == "is" else not is_it

    def _status(self, condition: Mapping[str, Any]) -> bool:
        is_it = self.facts.status == condition["value"]
        return is_it if condition["op"] == "is" else not is_it

    def _topic(self, condition: Mapping[str, Any]) -> bool:
        topic = condition["value"]
        preference = self.facts.topic_preferences.get(topic)
        subscribed = preference if preference is not None else topic in self.facts.default_topic_ids
        return subscribed if condition["op"] == "subscribed" else not subscribed

    def _segment(self, condition: Mapping[str, Any]) -> bool:
        member = condition["value"] in self.facts.segment_ids
        return member if condition["op"] == "member" else not member

    # -- events

    def events(self, name: str | None, window: Mapping[str, Any] | None = None) -> list[EventFact]:
        checks = rules.window_checks(window, self.now, self.zone) if window else []
        return [
            event
            for event in self.facts.events
            if (name is None or event.name == name)
            and all(rules.compare(check, event.occurred_at, bound) for check, bound in checks)
        ]

    def _event(self, condition: Mapping[str, Any]) -> bool:
        times = sum(
            1
            for event in self.events(condition["name"], condition["window"])
            if all(
                self.json_condition(event.properties, w["property"], w["op"], w["value"])
                for w in condition["where"]
            )
        )
        if not condition["performed"]:
            return times == 0
        op, wanted = condition["count"]["op"], condition["count"]["value"]
        if op == "at_least":
            return times >= wanted
        if op == "at_most":
            return times <= wanted
        return times == wanted

    def _engagement(self, condition: Mapping[str, Any]) -> bool:
        return self._event(rules.engagement_as_event(condition))

    def _event_time(self, condition: Mapping[str, Any]) -> bool:
        times = [event.occurred_at for event in self.events(condition["name"])]
        if not times:
            return False
        moment = min(times) if condition["which"] == "first" else max(times)
        check, instant = rules.event_time_check(
            condition["op"], condition["value"], self.now, self.zone
        )
        return rules.compare(check, moment, instant)

    def _revenue(self, condition: Mapping[str, Any]) -> bool:
        total = sum(
            (
                Decimal(event.revenue)
                for event in self.events(condition["name"], condition["window"])
                if event.revenue is not None
            ),
            Decimal(0),
        )
        return rules.revenue_passes(condition["op"], condition["value"], total)


def json_kind(value: Any) -> str:
    """The JSON kind of a value, named as compiler.JSONKind names it."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def text_matches(current: str, op: str, value: Any) -> bool:
    negated = op.startswith("not_")
    base = op.removeprefix("not_")
    text = current.lower()
    if base == "in":
        matched = text in {item.lower() for item in value}
    elif base == "equals":
        matched = text == value.lower()
    elif base == "contains":
        matched = value.lower() in text
    elif base == "starts_with":
        matched = text.startswith(value.lower())
    else:
        matched = text.endswith(value.lower())
    return not matched if negated else matched


def number_matches(current: Decimal, op: str, value: Any) -> bool:
    """Exact comparison, as the compiler's (numbers are compared as decimals)."""
    if op in ("equals", "not_equals"):
        equal = current == Decimal(str(value))
        return equal if op == "equals" else not equal
    return all(
        rules.compare(check, current, Decimal(str(bound)))
        for check, bound in rules.number_checks(op, value)
    )

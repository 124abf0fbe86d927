"""A rule tree in plain words: "Contacts who placed an order at least twice in the last 90
days and did not open any email in the last 30 days"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from contacts.models import (
    CustomField,
    LifecycleStage,
    Persona,
    Segment,
    SubscriptionStatus,
    Tag,
    Topic,
)

from . import rules

NAMED_MODELS = {
    "tag": Tag,
    "stage": LifecycleStage,
    "persona": Persona,
    "topic": Topic,
    "segment": Segment,
}
TEXT_PHRASES = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "in": "is one of",
    "not_in": "is none of",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
}
REVENUE_PHRASES = {
    "gt": "more than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
}
ENGAGEMENT_VERBS = {
    "received": ("received", "receive"),
    "opened": ("opened", "open"),
    "clicked": ("clicked in", "click in"),
}
SPELLED = {1: "once", 2: "twice"}


def describe_rules(workspace: Any, tree: Any) -> str:
    """One sentence for the tree, naming tags, stages, personas, topics and segments by
    their names. Raises RuleError for a tree that is not valid."""
    normalised = rules.normalise_tree(tree)
    sentence = "Contacts who " + _Describer(workspace, normalised).group(normalised, top=True)
    return sentence.replace("Contacts who whose ", "Contacts whose ", 1)


class _Describer:
    def __init__(self, workspace: Any, tree: Mapping[str, Any]) -> None:
        self.names = _names(workspace, tree)
        self.labels = {
            f"{rules.ATTRIBUTE_PREFIX}{key}": label
            for key, label in CustomField.objects.for_workspace(workspace).values_list(
                "key", "label"
            )
        }

    def group(self, node: Mapping[str, Any], *, top: bool = False) -> str:
        parts = [self.node(child) for child in node["children"]]
        if node["match"] == "none":
            if len(parts) == 1:
                return f"do not match: {parts[0]}"
            return "match none of: " + "; ".join(parts)
        joined = (" and " if node["match"] == "all" else " or ").join(parts)
        return joined if top or len(parts) == 1 else f"({joined})"

    def node(self, node: Mapping[str, Any]) -> str:
        if node["type"] == "group":
            return self.group(node)
        return getattr(self, f"_{node['type']}")(node)

    def name(self, kind: str, public_id: str | None) -> str:
        if public_id is None:
            return ""
        return _quote(self.names.get((kind, public_id), f"a deleted {kind}"))

    # -- fields

    def _field(self, condition: Mapping[str, Any]) -> str:
        field, op, value = condition["field"], condition["op"], condition["value"]
        label = rules.FIELD_LABELS.get(field) or self.labels.get(field) or field.split(".", 1)[1]
        subject = f"whose {label}"
        if op == "is_set":
            return f"have a {label}"
        if op == "is_not_set":
            return f"have no {label}"
        if op in ("is_true", "is_false"):
            return f"{subject} is {'yes' if op == 'is_true' else 'no'}"
        if op == "anniversary_within_days":
            if value == 0:
                return f"{subject} is today"
            return f"{subject} falls within the next {_days(value)}"
        kind = rules.comparison_kind(op, value)
        if kind == "date":
            return f"{subject} is {_date_phrase(op, value)}"
        if op == "between":
            return f"{subject} is between {_number(value[0])} and {_number(value[1])}"
        if isinstance(value, list):
            shown = ", ".join(_quote(item) for item in value[:5])
            more = f" and {len(value) - 5} more" if len(value) > 5 else ""
            return f"{subject} {TEXT_PHRASES[op]} {shown}{more}"
        shown = _number(value) if kind == "number" else _quote(value)
        return f"{subject} {TEXT_PHRASES[op]} {shown}"

    # -- audience

    def _tag(self, condition: Mapping[str, Any]) -> str:
        verb = "have" if condition["op"] == "has" else "do not have"
        return f"{verb} the tag {self.name('tag', condition['value'])}"

    def _stage(self, condition: Mapping[str, Any]) -> str:
        return self._is_in("stage", condition, "are in the stage", "have no stage")

    def _persona(self, condition: Mapping[str, Any]) -> str:
        return self._is_in("persona", condition, "have the persona", "have no persona")

    def _is_in(self, kind: str, condition: Mapping[str, Any], phrase: str, empty: str) -> str:
        positive = condition["op"] == "is"
        if condition["value"] is None:
            return empty if positive else f"have a {kind}"
        name = self.name(kind, condition["value"])
        if positive:
            return f"{phrase} {name}"
        return (
            f"are not in the stage {name}" if kind == "stage" else f"do not have the persona {name}"
        )

    def _status(self, condition: Mapping[str, Any]) -> str:
        label = SubscriptionStatus(condition["value"]).label.lower()
        return f"are {label}" if condition["op"] == "is" else f"are not {label}"

    def _topic(self, condition: Mapping[str, Any]) -> str:
        name = self.name("topic", condition["value"])
        if condition["op"] == "subscribed":
            return f"are subscribed to {name}"
        return f"are not subscribed to {name}"

    def _segment(self, condition: Mapping[str, Any]) -> str:
        name = self.name("segment", condition["value"])
        if condition["op"] == "member":
            return f"are in the segment {name}"
        return f"are not in the segment {name}"

    # -- events

    def _event(self, condition: Mapping[str, Any]) -> str:
        past, not_done = event_verbs(condition["name"])
        where = _where_phrase(condition["where"])
        window = _window_phrase(condition["window"])
        if not condition["performed"]:
            return _join(not_done, where, window)
        count = condition["count"]
        times = "" if count == {"op": "at_least", "value": 1} else _times(count)
        return _join(past, where, times, window)

    def _event_time(self, condition: Mapping[str, Any]) -> str:
        past, _not_done = event_verbs(condition["name"])
        which = "first" if condition["which"] == "first" else "last"
        op, value = condition["op"], condition["value"]
        if op == "within_last_days":
            when = f"in the last {_days(value)}"
        elif op == "more_than_days_ago":
            when = f"more than {_days(value)} ago"
        else:
            when = f"{op} {_day(value)}"
        return f"{past} for the {which} time {when}"

    def _revenue(self, condition: Mapping[str, Any]) -> str:
        op, value = condition["op"], condition["value"]
        if op == "between":
            amount = f"between {_number(value[0])} and {_number(value[1])}"
        else:
            amount = f"{REVENUE_PHRASES[op]} {_number(value)}"
        source = f" on {_quote(condition['name'])}" if condition["name"] else ""
        return _join(f"spent {amount} in total{source}", _window_phrase(condition["window"]))

    def _engagement(self, condition: Mapping[str, Any]) -> str:
        past, present = ENGAGEMENT_VERBS[condition["action"]]
        scope = condition["scope"]["kind"]
        what = {
            "any": "any email",
            "campaign": "an email of the chosen campaign",
            "journey": "an email of the chosen journey",
        }[scope]
        window = f"in the last {_days(condition['days'])}"
        if condition["performed"]:
            return f"{past} {'an email' if scope == 'any' else what} {window}"
        return f"did not {present} {what} {window}"


def _names(workspace: Any, tree: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    wanted: dict[str, set[str]] = {}
    for node in _walk(tree):
        kind = node.get("type")
        if kind in NAMED_MODELS and node.get("value"):
            wanted.setdefault(kind, set()).add(node["value"])
    names = {}
    for kind, public_ids in wanted.items():
        rows = NAMED_MODELS[kind].objects.for_workspace(workspace).filter(public_id__in=public_ids)
        for public_id, name in rows.values_list("public_id", "name"):
            names[(kind, str(public_id))] = name
    return names


def _walk(node: Mapping[str, Any]) -> Any:
    yield node
    for child in node.get("children", ()):
        yield from _walk(child)


def event_verbs(name: str) -> tuple[str, str]:
    """("placed an order", "have not placed an order") for order_placed or "Order Placed";
    a name that does not read as object + past participle is quoted."""
    words = name.replace("-", " ").replace("_", " ").lower().split()
    if len(words) >= 2 and words[-1].endswith("ed") and len(words[-1]) > 3:
        thing = " ".join(words[:-1])
        article = "an" if thing[0] in "aeiou" else "a"
        done = f"{words[-1]} {article} {thing}"
        return done, f"have not {done}"
    return f"did {_quote(name)}", f"have not done {_quote(name)}"


def _where_phrase(where: list[Mapping[str, Any]]) -> str:
    parts = []
    for item in where:
        prop, op, value = item["property"], item["op"], item["value"]
        if op == "is_set":
            parts.append(f"{prop} is set")
        elif op == "is_not_set":
            parts.append(f"{prop} is not set")
        elif op in ("is_true", "is_false"):
            parts.append(f"{prop} is {'yes' if op == 'is_true' else 'no'}")
        elif op == "between":
            parts.append(f"{prop} is between {_number(value[0])} and {_number(value[1])}")
        elif isinstance(value, list):
            parts.append(f"{prop} {TEXT_PHRASES[op]} {', '.join(_quote(v) for v in value[:5])}")
        else:
            shown = (
                _number(value) if rules.comparison_kind(op, value) == "number" else _quote(value)
            )
            parts.append(f"{prop} {TEXT_PHRASES[op]} {shown}")
    return ("where " + " and ".join(parts)) if parts else ""


def _window_phrase(window: Mapping[str, Any]) -> str:
    if window["kind"] == "last_days":
        return f"in the last {_days(window['days'])}"
    if window["kind"] == "between":
        return f"between {_day(window['start'])} and {_day(window['end'])}"
    return ""


def _times(count: Mapping[str, Any]) -> str:
    value = count["value"]
    amount = SPELLED.get(value, f"{value} times")
    prefix = {"at_least": "at least ", "at_most": "at most ", "exactly": "exactly "}[count["op"]]
    return prefix + amount


def _date_phrase(op: str, value: Any) -> str:
    if op == "before":
        return f"before {_day(value)}"
    if op == "after":
        return f"after {_day(value)}"
    if op == "between":
        return f"between {_day(value[0])} and {_day(value[1])}"
    if op == "within_last_days":
        return f"in the last {_days(value)}"
    if op == "within_next_days":
        return f"in the next {_days(value)}"
    return f"more than {_days(value)} ago"


def _days(value: int) -> str:
    return "1 day" if value == 1 else f"{value} days"


def _day(value: str) -> str:
    day = dt.date.fromisoformat(value)
    return f"{day.day} {day:%b %Y}"


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}".rstrip("0").rstrip(".")


def _quote(value: Any) -> str:
    return f"“{value}”"


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)

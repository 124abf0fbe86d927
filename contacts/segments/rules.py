"""The segment rule tree: its format, its allowlists and its validation.

A tree is JSON. A group holds ALL / ANY / NONE of its children, nested up to six deep:

    {"type": "group", "match": "all" | "any" | "none", "children": [node, ...]}

and a condition is one of (every node has a "type"):

    {"type": "field", "field": "first_name" | ... | "attributes.<key>", "op": ..., "value": ...}
    {"type": "tag", "op": "has" | "has_not", "value": "<tag public id>"}
    {"type": "stage", "op": "is" | "is_not", "value": "<stage public id>" | null}
    {"type": "persona", "op": "is" | "is_not", "value": "<persona public id>" | null}
    {"type": "status", "op": "is" | "is_not", "value": "subscribed" | ...}
    {"type": "topic", "op": "subscribed" | "not_subscribed", "value": "<topic public id>"}
    {"type": "event", "name": "order_placed", "performed": true,
     "where": [{"property": "total", "op": "gt", "value": 50}],
     "count": {"op": "at_least" | "at_most" | "exactly", "value": 2},
     "window": {"kind": "ever"} | {"kind": "last_days", "days": 90}
               | {"kind": "between", "start": "2026-01-01", "end": "2026-01-31"}}
    {"type": "event_time", "name": "order_placed", "which": "first" | "last",
     "op": "before" | "after" | "within_last_days" | "more_than_days_ago", "value": ...}
    {"type": "revenue", "name": "order_placed" | null, "op": "gt" | ..., "value": 100,
     "window": {...}}
    {"type": "engagement", "action": "received" | "opened" | "clicked", "performed": true,
     "scope": {"kind": "any"} | {"kind": "campaign" | "journey", "id": "<public id>"},
     "days": 30}
    {"type": "segment", "op": "member" | "not_member", "value": "<segment public id>"}

How a condition reads a value (the compiler and the evaluator both follow this):
- A value that is absent, null or "" is *missing*: `is_not_set` is true for it and every
  other operator is false (so "first name does not contain x" skips contacts without one).
- Text comparisons ignore case. Values are only compared with values of the same kind: a
  text operator never matches a number stored in a JSON attribute, and the reverse.
- Dates are days in the workspace's time zone; "between" includes both ends. Date and time
  fields compare instants (a day starts at midnight in the workspace's zone).
- "within the last N days" on a field means between now minus N days and now; in an event
  window it means since now minus N days.
- An anniversary is the month and day of a date (a 29 February falls on 28 February in
  other years); "anniversary within N days" looks from today up to today + N days.
- An event condition without a count means "at least once"; performed=false means not
  once in the window. Revenue is the sum of Event.revenue in the window (0 without events).
- Engagement is an event condition on EMAIL_RECEIVED / EMAIL_OPENED / EMAIL_CLICKED in the
  last N days; opens and clicks whose "human" property is false are not counted.
- "member of segment" reads the segment's current memberships (static or dynamic).

`validate_rules` checks a tree against the workspace and returns it normalised (defaults
filled in, values converted to the field's type, ids as canonical UUID strings). The
compiler and the evaluator re-check the structure without the database; they trust only
names from the allowlists below, so nothing from a request reaches SQL as text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

from contacts.models import SubscriptionStatus

# --- the email activity the sending pipeline records as events ---------------------------

EMAIL_RECEIVED = "email_received"
EMAIL_OPENED = "email_opened"
EMAIL_CLICKED = "email_clicked"
ENGAGEMENT_EVENTS = {"received": EMAIL_RECEIVED, "opened": EMAIL_OPENED, "clicked": EMAIL_CLICKED}
HUMAN_PROPERTY = "human"  # opens/clicks with "human": false (machine prefetch) do not count
SCOPE_PROPERTIES = {"campaign": "campaign_id", "journey": "journey_id"}

# --- limits ------------------------------------------------------------------------------

MAX_DEPTH = 6
MAX_CONDITIONS = 50
MAX_LIST_ITEMS = 500
MAX_STRING = 500
MIN_DAYS, MAX_DAYS = 1, 3650
MAX_COUNT = 100_000
MAX_WHERE = 20
MAX_EVENT_NAME = 200

# --- allowlists --------------------------------------------------------------------------

TEXT, NUMBER, BOOLEAN, CHOICE, DATE, DATETIME = (
    "text",
    "number",
    "boolean",
    "choice",
    "date",
    "datetime",
)

FIELD_TYPES: dict[str, str] = {
    "email": TEXT,
    "first_name": TEXT,
    "last_name": TEXT,
    "phone": TEXT,
    "timezone": TEXT,
    "locale": TEXT,
    "external_id": TEXT,
    "source": TEXT,
    "created_at": DATETIME,
    "last_activity_at": DATETIME,
    "birthday": DATE,
}
FIELD_LABELS: dict[str, str] = {
    "email": "email",
    "first_name": "first name",
    "last_name": "last name",
    "phone": "phone",
    "timezone": "time zone",
    "locale": "language",
    "external_id": "external id",
    "source": "source",
    "created_at": "date added",
    "last_activity_at": "last activity",
    "birthday": "birthday",
}
ATTRIBUTE_PREFIX = "attributes."

PRESENCE_OPS = ("is_set", "is_not_set")
TEXT_OPS = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "in",
    "not_in",
)
NUMBER_OPS = ("equals", "not_equals", "gt", "gte", "lt", "lte", "between")
BOOLEAN_OPS = ("is_true", "is_false")
DATETIME_OPS = (
    "before",
    "after",
    "between",
    "within_last_days",
    "within_next_days",
    "more_than_days_ago",
)
OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: (*TEXT_OPS, *PRESENCE_OPS),
    NUMBER: (*NUMBER_OPS, *PRESENCE_OPS),
    BOOLEAN: (*BOOLEAN_OPS, *PRESENCE_OPS),
    CHOICE: ("equals", "not_equals", "in", "not_in", *PRESENCE_OPS),
    DATE: (*DATETIME_OPS, "anniversary_within_days", *PRESENCE_OPS),
    DATETIME: (*DATETIME_OPS, *PRESENCE_OPS),
}
# An attribute compiled without its workspace's custom fields (the compiler, the
# evaluator) may use any of these; its value says how it compares.
ANY_FIELD_OPS = frozenset(op for ops in OPERATORS.values() for op in ops)
# Event properties carry no declared type: text, number, yes/no and presence operators.
WHERE_OPS = frozenset((*TEXT_OPS, *NUMBER_OPS, *BOOLEAN_OPS, *PRESENCE_OPS))
# Only engagement conditions use it (opens and clicks count unless "human" is false).
NOT_FALSE_OP = "not_false"
DAY_OPS = frozenset(("within_last_days", "within_next_days", "more_than_days_ago"))

OPERATOR_LABELS: dict[str, str] = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "in": "is one of",
    "not_in": "is not one of",
    "is_set": "is set",
    "is_not_set": "is not set",
    "gt": "greater than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
    "between": "between",
    "is_true": "is yes",
    "is_false": "is no",
    "before": "before",
    "after": "after",
    "within_last_days": "within the last N days",
    "within_next_days": "within the next N days",
    "more_than_days_ago": "more than N days ago",
    "anniversary_within_days": "anniversary within N days",
}
TYPE_NAMES = {
    TEXT: "text",
    NUMBER: "a number",
    BOOLEAN: "a yes/no field",
    CHOICE: "a choice",
    DATE: "a date",
    DATETIME: "a date and time",
}

MATCHES = ("all", "any", "none")
CONDITION_TYPES = (
    "field",
    "tag",
    "stage",
    "persona",
    "status",
    "topic",
    "event",
    "event_time",
    "revenue",
    "engagement",
    "segment",
)
COUNT_OPS = ("at_least", "at_most", "exactly")
WINDOW_KINDS = ("ever", "last_days", "between")
EVENT_TIME_OPS = ("before", "after", "within_last_days", "more_than_days_ago")
REVENUE_OPS = ("gt", "gte", "lt", "lte", "between")
STATUSES = tuple(SubscriptionStatus.values)

_ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_PROPERTY_KEY = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$ .:-]{0,63}", re.ASCII)
ISO_DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def is_safe_key(key: object, pattern: re.Pattern[str] = _ATTRIBUTE_KEY) -> bool:
    """A JSON key we may pass (as a parameter) into a JSON path: allowlisted characters, and
    never all digits, which JSON paths would read as an array index."""
    if not isinstance(key, str) or not pattern.fullmatch(key):
        return False
    try:
        int(key)
    except ValueError:
        return True
    return False


# --- errors ------------------------------------------------------------------------------


class RuleError(ValidationError):
    """An invalid rule tree. `path` points at the first bad node ("children.2.children.0",
    "" for the root); `errors` lists every (path, message) found."""

    def __init__(
        self, message: str, *, path: str = "", errors: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message, code="invalid_rules")
        self.path = path
        self.errors = list(errors) or [(path, message)]


class _Bad(Exception):
    """One condition is wrong; the message says why (without saying where)."""


def node_path(indices: Sequence[int], *tail: str | int) -> str:
    parts = [f"children.{i}" for i in indices] + [str(t) for t in tail]
    return ".".join(parts)


def group_label(indices: Sequence[int]) -> str:
    return "group " + ".".join(["1", *(str(i + 1) for i in indices)])


def condition_label(indices: Sequence[int]) -> str:
    return f"Condition {indices[-1] + 1} in {group_label(indices[:-1])}"


def _quote(value: object, limit: int = 60) -> str:
    text = str(value)
    return f"“{text[:limit]}…”" if len(text) > limit else f"“{text}”"


# --- normalisation -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """What validation knows of a custom field (CustomField or a stand-in)."""

    field_type: str
    label: str
    choices: tuple[str, ...] = ()


@dataclass
class Reference:
    kind: str  # tag, stage, persona, topic, segment
    public_id: str
    indices: tuple[int, ...]


@dataclass
class _Normaliser:
    # key -> FieldSpec; None means "no workspace at hand": attributes then accept any
    # operator and compare by the kind of value given.
    attribute_fields: Mapping[str, FieldSpec] | None
    errors: list[tuple[str, str]] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    conditions: int = 0

    def root(self, tree: Any) -> dict[str, Any]:
        if isinstance(tree, Mapping) and tree.get("type") != "group":
            tree = {"type": "group", "match": "all", "children": [tree]}
        if not isinstance(tree, Mapping):
            self.errors.append(("", "The rules must be a group of conditions."))
            return {}
        normalised = self.group(tree, (), 1)
        if self.conditions > MAX_CONDITIONS:
            self.errors.append(
                ("", f"The rules have {self.conditions} conditions; at most {MAX_CONDITIONS}.")
            )
        return normalised

    def group(self, node: Mapping[str, Any], indices: tuple[int, ...], depth: int) -> dict:
        label = group_label(indices).capitalize()
        if depth > MAX_DEPTH:
            self.errors.append(
                (node_path(indices), f"{label}: groups nest {MAX_DEPTH} deep at most.")
            )
            return {}
        match = node.get("match", "all")
        if match not in MATCHES:
            self.errors.append(
                (node_path(indices), f"{label}: match all, any or none, not {_quote(match)}.")
            )
        children = node.get("children")
        if not isinstance(children, list) or not children:
            self.errors.append(
                (node_path(indices), f"{label} is empty; add a condition or remove the group.")
            )
            children = []
        normalised = []
        for index, child in enumerate(children):
            child_indices = (*indices, index)
            if isinstance(child, Mapping) and child.get("type") == "group":
                normalised.append(self.group(child, child_indices, depth + 1))
                continue
            self.conditions += 1
            try:
                normalised.append(self.condition(child, child_indices))
            except _Bad as exc:
                self.errors.append(
                    (node_path(child_indices), f"{condition_label(child_indices)}: {exc}")
                )
        return {"type": "group", "match": match, "children": normalised}

    def condition(self, node: Any, indices: tuple[int, ...]) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            raise _Bad("a condition must be an object with a type.")
        kind = node.get("type")
        if not isinstance(kind, str) or kind not in CONDITION_TYPES:
            raise _Bad(f"unknown condition type {_quote(kind)}.")
        return getattr(self, f"_{kind}")(node, indices)

    # -- contact fields and attributes

    def _field(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        name = node.get("field")
        spec = self.field_spec(name)
        op = node.get("op")
        allowed = OPERATORS[spec.field_type] if spec.field_type else ANY_FIELD_OPS
        if not isinstance(op, str) or op not in allowed:
            if isinstance(op, str) and op in ANY_FIELD_OPS and spec.field_type:
                choices = ", ".join(OPERATOR_LABELS[o] for o in OPERATORS[spec.field_type])
                raise _Bad(f"{_quote(spec.label)} is {TYPE_NAMES[spec.field_type]}; use {choices}.")
            raise _Bad(f"unknown operator {_quote(op)} for {_quote(spec.label)}.")
        value = self.field_value(spec, op, node.get("value"))
        return {"type": "field", "field": name, "op": op, "value": value}

    def field_spec(self, name: Any) -> FieldSpec:
        if not isinstance(name, str) or not name:
            raise _Bad("choose a field.")
        if name in FIELD_TYPES:
            return FieldSpec(FIELD_TYPES[name], FIELD_LABELS[name])
        if not name.startswith(ATTRIBUTE_PREFIX):
            raise _Bad(f"unknown field {_quote(name)}.")
        key = name.removeprefix(ATTRIBUTE_PREFIX)
        if not is_safe_key(key):
            raise _Bad(
                f"{_quote(key)} is not an attribute name (letters, digits, - and _, "
                "64 at most, not only digits)."
            )
        if self.attribute_fields is None:
            return FieldSpec("", key)
        return self.attribute_fields.get(key) or FieldSpec(TEXT, key)

    def field_value(self, spec: FieldSpec, op: str, value: Any) -> Any:
        kind = spec.field_type
        if op in PRESENCE_OPS or op in BOOLEAN_OPS:
            return None
        if op in ("contains", "not_contains", "starts_with", "ends_with"):
            return _text(value)
        if op in ("in", "not_in"):
            items = _list(value, _text)
            return [_choice(spec, item) for item in items] if kind == CHOICE else items
        if op in ("equals", "not_equals"):
            if kind == NUMBER or (not kind and _is_number(value)):
                return _number(value)
            return _choice(spec, _text(value)) if kind == CHOICE else _text(value)
        if op in ("gt", "gte", "lt", "lte"):
            return _number(value)
        if op == "between":
            if kind == NUMBER or (not kind and _is_pair(value) and all(map(_is_number, value))):
                return _ordered_pair(value, _number)
            return _ordered_pair(value, _date)
        if op in ("before", "after"):
            return _date(value)
        if op == "anniversary_within_days":
            return _int(value, 0, MAX_DAYS, "days")
        return _int(value, MIN_DAYS, MAX_DAYS, "days")

    # -- audience

    def _tag(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        return self.reference(node, indices, "tag", ("has", "has_not"), nullable=False)

    def _stage(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        return self.reference(node, indices, "stage", ("is", "is_not"), nullable=True)

    def _persona(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        return self.reference(node, indices, "persona", ("is", "is_not"), nullable=True)

    def _topic(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        ops = ("subscribed", "not_subscribed")
        return self.reference(node, indices, "topic", ops, nullable=False)

    def _segment(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        ops = ("member", "not_member")
        return self.reference(node, indices, "segment", ops, nullable=False)

    def reference(
        self,
        node: Mapping[str, Any],
        indices: tuple[int, ...],
        kind: str,
        ops: tuple[str, ...],
        *,
        nullable: bool,
    ) -> dict[str, Any]:
        op = _one_of(node.get("op"), ops, "operator")
        value = node.get("value")
        if value is None and nullable:
            return {"type": kind, "op": op, "value": None}
        public_id = _public_id(value, kind)
        self.references.append(Reference(kind, public_id, indices))
        return {"type": kind, "op": op, "value": public_id}

    def _status(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        op = _one_of(node.get("op"), ("is", "is_not"), "operator")
        return {"type": "status", "op": op, "value": _one_of(node.get("value"), STATUSES, "status")}

    # -- events

    def _event(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        performed = _bool(node.get("performed", True), "performed")
        condition: dict[str, Any] = {
            "type": "event",
            "name": _event_name(node.get("name")),
            "performed": performed,
            "where": _where_list(node.get("where")),
            "window": _window(node.get("window")),
        }
        if performed:
            condition["count"] = _count(node.get("count"))
        return condition

    def _event_time(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        op = _one_of(node.get("op"), EVENT_TIME_OPS, "operator")
        value = node.get("value")
        return {
            "type": "event_time",
            "name": _event_name(node.get("name")),
            "which": _one_of(node.get("which", "last"), ("first", "last"), "first or last"),
            "op": op,
            "value": _date(value) if op in ("before", "after") else _days(value),
        }

    def _revenue(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        name = node.get("name")
        op = _one_of(node.get("op"), REVENUE_OPS, "operator")
        value = node.get("value")
        return {
            "type": "revenue",
            "name": None if name in (None, "") else _event_name(name),
            "op": op,
            "value": _ordered_pair(value, _number) if op == "between" else _number(value),
            "window": _window(node.get("window")),
        }

    def _engagement(self, node: Mapping[str, Any], indices: tuple[int, ...]) -> dict[str, Any]:
        action = _one_of(node.get("action"), tuple(ENGAGEMENT_EVENTS), "email action")
        scope = node.get("scope") or {"kind": "any"}
        if not isinstance(scope, Mapping):
            raise _Bad("the email scope must be any, a campaign or a journey.")
        scope_kind = _one_of(scope.get("kind"), ("any", *SCOPE_PROPERTIES), "email scope")
        normalised_scope: dict[str, Any] = {"kind": scope_kind}
        if scope_kind != "any":
            normalised_scope["id"] = _public_id(scope.get("id"), scope_kind)
        return {
            "type": "engagement",
            "action": action,
            "performed": _bool(node.get("performed", True), "performed"),
            "scope": normalised_scope,
            "days": _days(node.get("days")),
        }


# --- value helpers -----------------------------------------------------------------------


def _one_of(value: Any, allowed: Sequence[str], what: str) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    return _fail(f"unknown {what} {_quote(value)}; use {', '.join(allowed)}.")


def _fail(message: str) -> Any:
    raise _Bad(message)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_pair(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2


def _text(value: Any) -> str:
    if _is_number(value):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise _Bad("enter a value.")
    value = value.strip()
    if len(value) > MAX_STRING:
        raise _Bad(f"a value has at most {MAX_STRING} characters.")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or value is None:
        raise _Bad("enter a number.")
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            raise _Bad(f"{_quote(value)} is not a number.") from None
        if not parsed.is_finite():
            raise _Bad(f"{_quote(value)} is not a number.")
        value = int(parsed) if parsed == parsed.to_integral_value() else float(parsed)
    if not _is_number(value) or not math.isfinite(value):
        raise _Bad(f"{_quote(value)} is not a number.")
    if abs(value) > 1e15:
        raise _Bad("that number is too large.")
    return value


def _int(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _Bad(f"the number of {what} must be a whole number from {low} to {high}.")
    return value


def _days(value: Any) -> int:
    return _int(value, MIN_DAYS, MAX_DAYS, "days")


def _date(value: Any) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise _Bad(f"{_quote(value)} is not a date; use YYYY-MM-DD.")


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _Bad(f"{what} must be true or false.")


def _list(value: Any, clean: Any) -> list[Any]:
    if not isinstance(value, list | tuple) or not value:
        raise _Bad("give a list of one or more values.")
    if len(value) > MAX_LIST_ITEMS:
        raise _Bad(f"a list has at most {MAX_LIST_ITEMS} values.")
    cleaned = [clean(item) for item in value]
    return list(dict.fromkeys(cleaned))


def _ordered_pair(value: Any, clean: Any) -> list[Any]:
    if not _is_pair(value):
        raise _Bad("between needs two values: [from, to].")
    low, high = clean(value[0]), clean(value[1])
    if low > high:
        raise _Bad(f"{_quote(low)} comes after {_quote(high)}; swap them.")
    return [low, high]


def _choice(spec: FieldSpec, text: str) -> str:
    if not spec.choices:
        return text
    for choice in spec.choices:
        if choice.lower() == text.lower():
            return choice
    raise _Bad(
        f"{_quote(text)} is not one of the choices of {_quote(spec.label)}: "
        f"{', '.join(spec.choices)}."
    )


def _public_id(value: Any, kind: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError, AttributeError):
        raise _Bad(f"choose a {kind}.") from None


def _event_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad("choose an event.")
    if len(value.strip()) > MAX_EVENT_NAME:
        raise _Bad(f"an event name has at most {MAX_EVENT_NAME} characters.")
    return value.strip()


def _where_list(value: Any) -> list[dict[str, Any]]:
    if value in (None, []):
        return []
    if not isinstance(value, list | tuple):
        raise _Bad("property filters must be a list.")
    if len(value) > MAX_WHERE:
        raise _Bad(f"at most {MAX_WHERE} property filters per event.")
    cleaned = []
    for number, item in enumerate(value, start=1):
        try:
            cleaned.append(_where(item))
        except _Bad as exc:
            raise _Bad(f"property filter {number}: {exc}") from None
    return cleaned


def _where(item: Any) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise _Bad("a property filter is an object with property, op and value.")
    key = item.get("property")
    if not is_safe_key(key, _PROPERTY_KEY):
        raise _Bad(f"{_quote(key)} is not a property name.")
    op = item.get("op")
    if not isinstance(op, str) or op not in WHERE_OPS:
        raise _Bad(f"unknown operator {_quote(op)} for a property.")
    value = item.get("value")
    if op in PRESENCE_OPS or op in BOOLEAN_OPS:
        value = None
    elif op in ("equals", "not_equals"):
        value = _number(value) if _is_number(value) else _text(value)
    elif op in ("in", "not_in"):
        value = _list(value, _text)
    elif op in ("gt", "gte", "lt", "lte"):
        value = _number(value)
    elif op == "between":
        value = _ordered_pair(value, _number)
    else:
        value = _text(value)
    return {"property": key, "op": op, "value": value}


def _count(value: Any) -> dict[str, Any]:
    if value is None:
        return {"op": "at_least", "value": 1}
    if not isinstance(value, Mapping):
        raise _Bad("the count must be at least, at most or exactly a number of times.")
    op = _one_of(value.get("op", "at_least"), COUNT_OPS, "count")
    low = 1 if op == "at_least" else 0
    return {"op": op, "value": _int(value.get("value", 1), low, MAX_COUNT, "times")}


def _window(value: Any) -> dict[str, Any]:
    if value is None:
        return {"kind": "ever"}
    if not isinstance(value, Mapping):
        raise _Bad("the time window must be ever, the last N days or between two dates.")
    kind = _one_of(value.get("kind"), WINDOW_KINDS, "time window")
    if kind == "last_days":
        return {"kind": kind, "days": _days(value.get("days"))}
    if kind == "between":
        start, end = _ordered_pair([value.get("start"), value.get("end")], _date)
        return {"kind": kind, "start": start, "end": end}
    return {"kind": "ever"}


# --- public entry points -----------------------------------------------------------------


def normalise_tree(
    tree: Any, *, attribute_fields: Mapping[str, FieldSpec] | None = None
) -> dict[str, Any]:
    """The structural check, without the database. Raises RuleError."""
    normaliser = _Normaliser(attribute_fields)
    normalised = normaliser.root(tree)
    _raise_errors(normaliser.errors)
    return normalised


def validate_rules(workspace: Any, tree: Any, segment: Any = None) -> dict[str, Any]:
    """The tree checked against the workspace (its custom fields, tags, stages, personas,
    topics and segments, and loops through "member of segment" when `segment` is the one
    being saved). Returns the normalised tree; raises RuleError pointing at the condition."""
    from contacts.models import CustomField

    fields = {
        custom.key: FieldSpec(custom.field_type, custom.label, tuple(custom.choices or ()))
        for custom in CustomField.objects.for_workspace(workspace).only(
            "key", "label", "field_type", "choices"
        )
    }
    normaliser = _Normaliser(fields)
    normalised = normaliser.root(tree)
    errors = list(normaliser.errors)
    errors += _missing_references(workspace, normaliser.references)
    errors += _segment_loops(workspace, normaliser.references, segment)
    _raise_errors(sorted(errors, key=lambda error: _path_order(error[0])))
    return normalised


def _path_order(path: str) -> list[int]:
    return [int(part) for part in path.split(".") if part.isdigit()]


def _raise_errors(errors: list[tuple[str, str]]) -> None:
    if errors:
        path, message = errors[0]
        raise RuleError(message, path=path, errors=errors)


def _reference_models() -> dict[str, Any]:
    from contacts.models import LifecycleStage, Persona, Segment, Tag, Topic

    return {
        "tag": Tag,
        "stage": LifecycleStage,
        "persona": Persona,
        "topic": Topic,
        "segment": Segment,
    }


def _missing_references(workspace: Any, references: list[Reference]) -> list[tuple[str, str]]:
    errors = []
    models = _reference_models()
    for kind in sorted({reference.kind for reference in references}):
        wanted = {ref.public_id for ref in references if ref.kind == kind}
        found = {
            str(public_id)
            for public_id in models[kind]
            .objects.for_workspace(workspace)
            .filter(public_id__in=wanted)
            .values_list("public_id", flat=True)
        }
        for reference in references:
            if reference.kind == kind and reference.public_id not in found:
                errors.append(
                    (
                        node_path(reference.indices),
                        f"{condition_label(reference.indices)}: that {kind} does not exist "
                        "in this workspace.",
                    )
                )
    return errors


def referenced_segments(tree: Any) -> Iterator[str]:
    """Public ids of the segments a (possibly unvalidated) tree names, for dependency walks."""
    if not isinstance(tree, Mapping):
        return
    if tree.get("type") == "segment" and isinstance(tree.get("value"), str):
        yield tree["value"]
    for child in tree.get("children") or ():
        yield from referenced_segments(child)


def _segment_loops(
    workspace: Any, references: list[Reference], segment: Any
) -> list[tuple[str, str]]:
    segment_refs = [ref for ref in references if ref.kind == "segment"]
    if segment is None or not segment_refs:
        return []
    from contacts.models import Segment

    own_id = str(segment.public_id)
    names = {}
    depends_on: dict[str, set[str]] = {}
    for public_id, name, rules in Segment.objects.for_workspace(workspace).values_list(
        "public_id", "name", "rules"
    ):
        names[str(public_id)] = name
        depends_on[str(public_id)] = {_canonical(ref) for ref in referenced_segments(rules)}
    errors = []
    for reference in segment_refs:
        label = condition_label(reference.indices)
        if reference.public_id == own_id:
            message = f"{label}: a segment cannot be built from its own members."
        elif _reaches(reference.public_id, own_id, depends_on):
            name = names.get(reference.public_id, "that segment")
            message = (
                f"{label}: {_quote(name)} already depends on this segment, so using it here "
                "would make a loop."
            )
        else:
            continue
        errors.append((node_path(reference.indices), message))
    return errors


def _canonical(public_id: str) -> str:
    try:
        return str(uuid.UUID(public_id))
    except ValueError:
        return public_id


def _reaches(start: str, target: str, depends_on: Mapping[str, set[str]]) -> bool:
    seen, stack = set(), [start]
    while stack:
        current = stack.pop()
        if current == target:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(depends_on.get(current, ()))
    return False


# --- shared pieces of meaning (compiler and evaluator) ------------------------------------


def engagement_as_event(condition: Mapping[str, Any]) -> dict[str, Any]:
    """An engagement condition is an event condition on the email activity events."""
    where: list[dict[str, Any]] = []
    scope = condition["scope"]
    if scope["kind"] != "any":
        where.append(
            {"property": SCOPE_PROPERTIES[scope["kind"]], "op": "equals", "value": scope["id"]}
        )
    if condition["action"] != "received":
        where.append({"property": HUMAN_PROPERTY, "op": NOT_FALSE_OP, "value": None})
    event: dict[str, Any] = {
        "type": "event",
        "name": ENGAGEMENT_EVENTS[condition["action"]],
        "performed": condition["performed"],
        "where": where,
        "window": {"kind": "last_days", "days": condition["days"]},
    }
    if condition["performed"]:
        event["count"] = {"op": "at_least", "value": 1}
    return event


def anniversary_runs(
    today: dt.date, days: int
) -> list[tuple[tuple[int, int], tuple[int, int]]] | None:
    """The (month, day) ranges, inclusive, that fall from today to today + days; None when
    that is the whole year. A 29 February counts on 28 February outside leap years."""
    if days >= 365:
        return None
    end = today + dt.timedelta(days=days)
    start_md, end_md = (today.month, today.day), (end.month, end.day)
    if end_md == (2, 28) and not _is_leap(end.year):
        end_md = (2, 29)
    if start_md <= end_md:
        return [(start_md, end_md)]
    return [(start_md, (12, 31)), ((1, 1), end_md)]


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def comparison_kind(op: str, value: Any) -> str:
    """How a field or property condition compares: presence, boolean, text, number or date.
    Decided by the operator and the (normalised) value alone, so a stored tree keeps its
    meaning even without the workspace's custom fields at hand."""
    if op in PRESENCE_OPS:
        return "presence"
    if op in BOOLEAN_OPS or op == NOT_FALSE_OP:
        return "boolean"
    if op in ("gt", "gte", "lt", "lte"):
        return "number"
    if op in ("equals", "not_equals"):
        return "number" if _is_number(value) else "text"
    if op == "between":
        return "number" if _is_number(value[0]) else "date"
    if op in TEXT_OPS:
        return "text"
    return "date"


def start_of_day(day: dt.date, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(zone))


def local_today(now: dt.datetime, zone: str) -> dt.date:
    return now.astimezone(ZoneInfo(zone)).date()


Check = tuple[str, Any]  # ("lt" | "lte" | "gt" | "gte", bound)


def instant_checks(op: str, value: Any, now: dt.datetime, zone: str) -> list[Check]:
    """A date operator on a date-and-time value, as comparisons with instants."""
    days = dt.timedelta(days=value) if op in DAY_OPS else None
    if op == "before":
        return [("lt", start_of_day(_day(value), zone))]
    if op == "after":
        return [("gte", start_of_day(_day(value) + dt.timedelta(days=1), zone))]
    if op == "between":
        low, high = _day(value[0]), _day(value[1]) + dt.timedelta(days=1)
        return [("gte", start_of_day(low, zone)), ("lt", start_of_day(high, zone))]
    if op == "within_last_days":
        return [("gte", now - days), ("lte", now)]
    if op == "within_next_days":
        return [("gte", now), ("lte", now + days)]
    return [("lt", now - days)]  # more_than_days_ago


def date_checks(op: str, value: Any, today: dt.date) -> list[Check]:
    """A date operator on a calendar date, as comparisons with dates."""
    days = dt.timedelta(days=value) if op in DAY_OPS else None
    if op == "before":
        return [("lt", _day(value))]
    if op == "after":
        return [("gt", _day(value))]
    if op == "between":
        return [("gte", _day(value[0])), ("lte", _day(value[1]))]
    if op == "within_last_days":
        return [("gte", today - days), ("lte", today)]
    if op == "within_next_days":
        return [("gte", today), ("lte", today + days)]
    return [("lt", today - days)]  # more_than_days_ago


def window_checks(window: Mapping[str, Any], now: dt.datetime, zone: str) -> list[Check]:
    """An event window as comparisons with occurred_at."""
    if window["kind"] == "last_days":
        return [("gte", now - dt.timedelta(days=window["days"]))]
    if window["kind"] == "between":
        end = _day(window["end"]) + dt.timedelta(days=1)
        return [("gte", start_of_day(_day(window["start"]), zone)), ("lt", start_of_day(end, zone))]
    return []


def event_time_check(op: str, value: Any, now: dt.datetime, zone: str) -> Check:
    """The first/last time an event happened, compared with one instant: ("lt" | "gte", t)."""
    if op == "before":
        return ("lt", start_of_day(_day(value), zone))
    if op == "after":
        return ("gte", start_of_day(_day(value) + dt.timedelta(days=1), zone))
    if op == "within_last_days":
        return ("gte", now - dt.timedelta(days=value))
    return ("lt", now - dt.timedelta(days=value))  # more_than_days_ago


def compare(check: str, left: Any, right: Any) -> bool:
    if check == "lt":
        return left < right
    if check == "lte":
        return left <= right
    if check == "gt":
        return left > right
    return left >= right


def number_checks(op: str, value: Any) -> list[Check]:
    """gt/gte/lt/lte/between as comparisons (equals and not_equals are handled apart)."""
    if op == "between":
        return [("gte", value[0]), ("lte", value[1])]
    return [(op, value)]


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def revenue_passes(op: str, value: Any, total: Decimal) -> bool:
    return all(
        compare(check, total, Decimal(str(bound))) for check, bound in number_checks(op, value)
    )

"""The builder page's model: the rule tree travels in a hidden JSON field, each condition's
controls are named `r:<path>:<key>` (path as in RuleError, "children.2.children.0"), and
every change posts the whole form. `tree_from_form` folds the controls back into the
tree and applies the button that was pressed (add a condition or group, remove one, add a
property filter); `node_views` lays the tree out for the template with the choices each
control offers. Nothing here checks the rules: contacts.segments.rules does, and its
error is shown next to the condition it points at."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..models import SubscriptionStatus
from .queries import Pickers

MAX_DEPTH = 6
PREFIX = "r:"

STANDARD_FIELDS = [
    ("email", "Email", "text"),
    ("first_name", "First name", "text"),
    ("last_name", "Last name", "text"),
    ("phone", "Phone", "text"),
    ("timezone", "Time zone", "text"),
    ("locale", "Locale", "text"),
    ("external_id", "External id", "text"),
    ("source", "Source", "text"),
    ("created_at", "Date added", "datetime"),
    ("last_activity_at", "Last activity", "datetime"),
    ("birthday", "Birthday", "date"),
]
OPERATORS = {
    "text": [
        ("equals", "is"),
        ("not_equals", "is not"),
        ("contains", "contains"),
        ("not_contains", "does not contain"),
        ("starts_with", "starts with"),
        ("ends_with", "ends with"),
        ("in", "is one of"),
        ("not_in", "is none of"),
        ("is_set", "is set"),
        ("is_not_set", "is not set"),
    ],
    "number": [
        ("equals", "is"),
        ("not_equals", "is not"),
        ("gt", "is more than"),
        ("gte", "is at least"),
        ("lt", "is less than"),
        ("lte", "is at most"),
        ("between", "is between"),
        ("is_set", "is set"),
        ("is_not_set", "is not set"),
    ],
    "boolean": [
        ("is_true", "is yes"),
        ("is_false", "is no"),
        ("is_set", "is set"),
        ("is_not_set", "is not set"),
    ],
    "choice": [
        ("equals", "is"),
        ("not_equals", "is not"),
        ("in", "is one of"),
        ("not_in", "is none of"),
        ("is_set", "is set"),
        ("is_not_set", "is not set"),
    ],
    "datetime": [
        ("within_last_days", "is in the last"),
        ("more_than_days_ago", "is more than"),
        ("within_next_days", "is in the next"),
        ("before", "is before"),
        ("after", "is after"),
        ("between", "is between"),
        ("is_set", "is set"),
        ("is_not_set", "is not set"),
    ],
}
OPERATORS["date"] = [
    *OPERATORS["datetime"][:3],
    ("anniversary_within_days", "has its anniversary in the next"),
    *OPERATORS["datetime"][3:],
]
NO_VALUE = {"is_set", "is_not_set", "is_true", "is_false"}
DAYS_OPS = {"within_last_days", "within_next_days", "more_than_days_ago", "anniversary_within_days"}
LIST_OPS = {"in", "not_in"}

CONDITION_TYPES = [
    ("field", "Contact field"),
    ("tag", "Tag"),
    ("stage", "Lifecycle stage"),
    ("persona", "Persona"),
    ("status", "Subscription status"),
    ("topic", "Topic"),
    ("event", "Did an event"),
    ("event_time", "First or last time of an event"),
    ("revenue", "Revenue"),
    ("engagement", "Email engagement"),
    ("segment", "Segment"),
]
MATCHES = [("all", "all of"), ("any", "any of"), ("none", "none of")]
SIMPLE_OPS = {
    "tag": [("has", "has"), ("has_not", "does not have")],
    "stage": [("is", "is"), ("is_not", "is not")],
    "persona": [("is", "is"), ("is_not", "is not")],
    "status": [("is", "is"), ("is_not", "is not")],
    "topic": [("subscribed", "is subscribed to"), ("not_subscribed", "is not subscribed to")],
    "segment": [("member", "is in"), ("not_member", "is not in")],
}
COUNT_OPS = [("at_least", "at least"), ("at_most", "at most"), ("exactly", "exactly")]
WINDOWS = [("ever", "ever"), ("last_days", "in the last"), ("between", "between")]
EVENT_TIME_OPS = [
    ("within_last_days", "in the last"),
    ("more_than_days_ago", "more than"),
    ("before", "before"),
    ("after", "after"),
]
REVENUE_OPS = [
    ("gt", "more than"),
    ("gte", "at least"),
    ("lt", "less than"),
    ("lte", "at most"),
    ("between", "between"),
]
PROPERTY_OPS = [
    ("equals", "is"),
    ("not_equals", "is not"),
    ("contains", "contains"),
    ("gt", "is more than"),
    ("gte", "is at least"),
    ("lt", "is less than"),
    ("lte", "is at most"),
    ("in", "is one of"),
    ("is_true", "is true"),
    ("is_false", "is false"),
    ("is_set", "is set"),
    ("is_not_set", "is not set"),
]
ENGAGEMENT_ACTIONS = [("received", "received"), ("opened", "opened"), ("clicked", "clicked in")]
SCOPES = [("any", "any email"), ("campaign", "a campaign"), ("journey", "a journey")]


def empty_tree() -> dict[str, Any]:
    return {"type": "group", "match": "all", "children": []}


def parse_tree(raw: str | None) -> dict[str, Any]:
    """The hidden field's tree, or an empty group if it is missing or not a group."""
    try:
        tree = json.loads(raw or "")
    except (TypeError, ValueError):
        return empty_tree()
    if not isinstance(tree, dict) or tree.get("type") != "group":
        return empty_tree()
    return tree


# --- defaults -----------------------------------------------------------------------------


def default_condition(kind: str, pickers: Pickers, event_names: list[str]) -> dict[str, Any]:
    def first(rows: list[Any]) -> str | None:
        return str(rows[0].public_id) if rows else None

    event = event_names[0] if event_names else ""
    defaults: dict[str, dict[str, Any]] = {
        "field": {"field": "email", "op": "contains", "value": ""},
        "tag": {"op": "has", "value": first(pickers.tags)},
        "stage": {"op": "is", "value": first(pickers.stages)},
        "persona": {"op": "is", "value": first(pickers.personas)},
        "status": {"op": "is", "value": SubscriptionStatus.SUBSCRIBED.value},
        "topic": {"op": "subscribed", "value": first(pickers.topics)},
        "event": {
            "name": event,
            "performed": True,
            "count": {"op": "at_least", "value": 1},
            "window": {"kind": "last_days", "days": 30},
        },
        "event_time": {"name": event, "which": "last", "op": "within_last_days", "value": 30},
        "revenue": {"op": "gt", "value": 100, "window": {"kind": "ever"}},
        "engagement": {
            "action": "opened",
            "performed": True,
            "scope": {"kind": "any"},
            "days": 30,
        },
        "segment": {"op": "member", "value": first(pickers.segments)},
    }
    return {"type": kind, **copy.deepcopy(defaults.get(kind, defaults["field"]))}


def field_catalogue(pickers: Pickers) -> list[tuple[str, str, str]]:
    """(field, label, type) for the field picker: standard fields, then custom fields."""
    custom = [(f"attributes.{f.key}", f.label, f.field_type) for f in pickers.custom_fields]
    return [*STANDARD_FIELDS, *custom]


def field_type(name: str, pickers: Pickers) -> str:
    for key, _, kind in field_catalogue(pickers):
        if key == name:
            return kind
    return "text"


# --- from the form ------------------------------------------------------------------------


def tree_from_form(
    data: Mapping[str, Any], pickers: Pickers, event_names: list[str]
) -> dict[str, Any]:
    """The tree in the hidden field with every control's value folded in, then the
    pressed button's change applied (op / at / index in the form data)."""
    tree = parse_tree(data.get("rules"))
    controls: dict[str, dict[str, Any]] = {}
    for name in data:
        if name.startswith(PREFIX):
            path, _, key = name[len(PREFIX) :].rpartition(":")
            values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
            controls.setdefault(path, {})[key] = values if len(values) > 1 else values[0]
    for path in sorted(controls, key=len):
        node = node_at(tree, path)
        if node is not None:
            _apply_controls(node, controls[path], pickers, event_names, path, tree)
    apply_action(tree, data, pickers, event_names)
    return tree


def node_at(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: Any = tree
    for part in [p for p in path.split(".") if p] if path else []:
        if part == "children" and isinstance(node, dict):
            node = node.get("children")
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node if isinstance(node, dict) else None


def _replace_at(tree: dict[str, Any], path: str, new: dict[str, Any]) -> None:
    parent_path, _, index = path.rpartition(".")
    parent_path = parent_path.removesuffix("children").rstrip(".")
    parent = node_at(tree, parent_path)
    if parent is not None and index.isdigit() and int(index) < len(parent.get("children", [])):
        parent["children"][int(index)] = new


def _apply_controls(node, values, pickers, event_names, path, tree) -> None:  # type: ignore[no-untyped-def]
    kind = node.get("type")
    posted_type = values.get("type")
    if posted_type and posted_type != kind and kind != "group":
        if posted_type in dict(CONDITION_TYPES):
            _replace_at(tree, path, default_condition(posted_type, pickers, event_names))
        return
    if kind == "group":
        if values.get("match") in dict(MATCHES):
            node["match"] = values["match"]
        return
    handler = _APPLY.get(kind)
    if handler is not None:
        handler(node, values, pickers)


def _number(text: Any) -> Any:
    if isinstance(text, list):
        return [_number(t) for t in text]
    text = str(text).strip().replace(",", "") if text is not None else ""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _text(value: Any) -> str:
    return (value[0] if isinstance(value, list) else str(value or "")).strip()


def _list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [item.strip() for item in items if str(item).strip()]


def _value_for(kind: str, op: str, values: Mapping[str, Any]) -> Any:
    """A field condition's value from its controls, typed as the rules expect it."""
    if op in NO_VALUE:
        return None
    if op in DAYS_OPS:
        return _number(values.get("value", ""))
    if op == "between":
        pair = [values.get("value", ""), values.get("value2", "")]
        return [_number(v) for v in pair] if kind == "number" else [_text(v) for v in pair]
    if op in LIST_OPS:
        items = _list(values.get("values", values.get("value", "")))
        return [_number(i) for i in items] if kind == "number" else items
    if kind == "number":
        return _number(values.get("value", ""))
    return _text(values.get("value", ""))


def _apply_field(node: dict[str, Any], values: Mapping[str, Any], pickers: Pickers) -> None:
    name = _text(values.get("field", node.get("field", "email")))
    kind = field_type(name, pickers)
    allowed = [op for op, _ in OPERATORS.get(kind, OPERATORS["text"])]
    op = _text(values.get("op", node.get("op", "")))
    if name != node.get("field") or op not in allowed:
        node.update(field=name, op=allowed[0], value=None)
        if allowed[0] in DAYS_OPS:
            node["value"] = 30
        elif allowed[0] not in NO_VALUE:
            node["value"] = ""
        _tidy(node)
        return
    node["op"] = op
    node["value"] = _value_for(kind, op, values)
    _tidy(node)


def _tidy(node: dict[str, Any]) -> None:
    if node.get("op") in NO_VALUE:
        node.pop("value", None)


def _apply_simple(node: dict[str, Any], values: Mapping[str, Any], pickers: Pickers) -> None:
    ops = [op for op, _ in SIMPLE_OPS[node["type"]]]
    if values.get("op") in ops:
        node["op"] = values["op"]
    if "value" in values:
        node["value"] = _text(values["value"]) or None


def _window(values: Mapping[str, Any], current: Any) -> dict[str, Any]:
    kind = _text(values.get("window_kind", (current or {}).get("kind", "ever")))
    if kind == "last_days":
        return {"kind": kind, "days": _number(values.get("window_days", 30))}
    if kind == "between":
        return {
            "kind": kind,
            "start": _text(values.get("window_start", "")),
            "end": _text(values.get("window_end", "")),
        }
    return {"kind": "ever"}


def _apply_event(node: dict[str, Any], values: Mapping[str, Any], pickers: Pickers) -> None:
    node["name"] = _text(values.get("name", node.get("name", "")))
    node["performed"] = _text(values.get("performed", "true")) != "false"
    if node["performed"]:
        count_op = _text(values.get("count_op", "at_least"))
        node["count"] = {
            "op": count_op if count_op in dict(COUNT_OPS) else "at_least",
            "value": _number(values.get("count_value", 1)),
        }
    else:
        node.pop("count", None)
    node["window"] = _window(values, node.get("window"))
    wheres = []
    for index, where in enumerate(node.get("where") or []):
        prefix = f"where.{index}."
        op = _text(values.get(prefix + "op", where.get("op", "equals")))
        item = {"property": _text(values.get(prefix + "property", where.get("property", "")))}
        item["op"] = op if op in dict(PROPERTY_OPS) else "equals"
        if item["op"] not in NO_VALUE:
            item["value"] = _where_value(item["op"], values.get(prefix + "value", ""))
        wheres.append(item)
    if wheres:
        node["where"] = wheres
    else:
        node.pop("where", None)


def _where_value(op: str, raw: Any) -> Any:
    if op in LIST_OPS:
        return [_property_value(v) for v in _list(raw)]
    if op in {"gt", "gte", "lt", "lte"}:
        return _number(raw)
    return _property_value(raw)


def _property_value(raw: Any) -> Any:
    """Property values compare as typed JSON: "5" is the number 5, anything else text."""
    text = _text(raw)
    number = _number(text)
    return number if text and not isinstance(number, str) else text


def _apply_event_time(node: dict[str, Any], values: Mapping[str, Any], pickers: Pickers) -> None:
    node["name"] = _text(values.get("name", node.get("name", "")))
    node["which"] = "first" if values.get("which") == "first" else "last"
    op = _text(values.get("op", node.get("op", "within_last_days")))
    node["op"] = op if op in dict(EVENT_TIME_OPS) else "within_last_days"
    raw = values.get("value", node.get("value", ""))
    node["value"] = _number(raw) if node["op"] in DAYS_OPS else _text(raw)


def _apply_revenue(node: dict[str, Any], values: Mapping[str, Any], pickers: Pickers) -> None:
    name = _text(values.get("name", node.get("name", "")))
    if name:
        node["name"] = name
    else:
        node.pop("name", None)
    op = _text(values.get("op", node.get("op", "gt")))
    node["op"] = op if op in dict(REVENUE_OPS) else "gt"
    if node["op"] == "between":
        node["value"] = [_number(values.get("value", "")), _number(values.get("value2", ""))]
    else:
        node["value"] = _number(values.get("value", ""))
    node["window"] = _window(values, node.get("window"))


def _apply_engagement(node: dict[str, Any], values: Mapping[str, Any], pickers: Pickers) -> None:
    action = _text(values.get("action", node.get("action", "opened")))
    node["action"] = action if action in dict(ENGAGEMENT_ACTIONS) else "opened"
    node["performed"] = _text(values.get("performed", "true")) != "false"
    scope = _text(values.get("scope_kind", "any"))
    if scope in ("campaign", "journey"):
        node["scope"] = {"kind": scope, "id": _text(values.get("scope_id", ""))}
    else:
        node["scope"] = {"kind": "any"}
    node["days"] = _number(values.get("days", node.get("days", 30)))


_APPLY = {
    "field": _apply_field,
    "tag": _apply_simple,
    "stage": _apply_simple,
    "persona": _apply_simple,
    "status": _apply_simple,
    "topic": _apply_simple,
    "segment": _apply_simple,
    "event": _apply_event,
    "event_time": _apply_event_time,
    "revenue": _apply_revenue,
    "engagement": _apply_engagement,
}


# --- buttons ------------------------------------------------------------------------------


def apply_action(
    tree: dict[str, Any], data: Mapping[str, Any], pickers: Pickers, event_names: list[str]
) -> None:
    action, at = data.get("op", ""), data.get("at", "")
    node = node_at(tree, at)
    if node is None:
        return
    if action == "add_condition" and node.get("type") == "group":
        kind = data.get(f"add:{at}") or data.get("kind") or "field"
        if kind not in dict(CONDITION_TYPES):
            kind = "field"
        node.setdefault("children", []).append(default_condition(kind, pickers, event_names))
    elif action == "add_group" and node.get("type") == "group" and _depth(at) < MAX_DEPTH - 1:
        node.setdefault("children", []).append({"type": "group", "match": "any", "children": []})
    elif action == "remove" and at:
        parent_path, _, index = at.rpartition(".")
        parent = node_at(tree, parent_path.removesuffix("children").rstrip("."))
        if parent is not None and index.isdigit() and int(index) < len(parent["children"]):
            parent["children"].pop(int(index))
    elif action == "add_where" and node.get("type") == "event":
        node.setdefault("where", []).append({"property": "", "op": "equals", "value": ""})
    elif action == "remove_where" and node.get("type") == "event":
        index = str(data.get("index", ""))
        wheres = node.get("where") or []
        if index.isdigit() and int(index) < len(wheres):
            wheres.pop(int(index))
        if not wheres:
            node.pop("where", None)


def _depth(path: str) -> int:
    return path.count("children")


# --- to the template ----------------------------------------------------------------------


@dataclass
class NodeView:
    """One node of the tree as the builder template shows it."""

    path: str
    node: dict[str, Any]
    depth: int
    number: str  # "2.1": the condition's position, as error messages count
    children: list[NodeView] = field(default_factory=list)
    error: str = ""
    field_type: str = ""
    ops: list[tuple[str, str]] = field(default_factory=list)
    value_kind: str = ""  # none | text | number | date | days | pair | list | choice | choices
    choices: list[str] = field(default_factory=list)
    property_keys: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)  # the value picker's
    field_known: bool = True

    @property
    def kind(self) -> str:
        return str(self.node.get("type", ""))

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.path}:"

    @property
    def dom_id(self) -> str:
        return "rule-" + (self.path.replace(".", "-") or "root")

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @property
    def can_nest(self) -> bool:
        return self.depth < MAX_DEPTH - 1

    @property
    def value(self) -> Any:
        return self.node.get("value")

    @property
    def value_text(self) -> str:
        value = self.node.get("value")
        if value is None:
            return ""
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    @property
    def value_list(self) -> list[str]:
        value = self.node.get("value")
        return [str(v) for v in value] if isinstance(value, list) else []

    @property
    def first_value(self) -> str:
        value = self.node.get("value")
        return str(value[0]) if isinstance(value, list) and value else ""

    @property
    def second_value(self) -> str:
        value = self.node.get("value")
        return str(value[1]) if isinstance(value, list) and len(value) > 1 else ""

    @property
    def wheres(self) -> list[dict[str, Any]]:
        rows = []
        for index, where in enumerate(self.node.get("where") or []):
            value = where.get("value", "")
            text = ", ".join(str(v) for v in value) if isinstance(value, list) else value
            if isinstance(text, bool):
                text = "true" if text else "false"
            rows.append({"index": index, **where, "text": "" if text is None else str(text)})
        return rows


def node_views(
    tree: dict[str, Any],
    pickers: Pickers,
    errors: Sequence[tuple[str, str]] = (),
    property_keys: Mapping[str, list[str]] | None = None,
) -> NodeView:
    """The root group's view, with its children's views inside; each (path, message) in
    `errors` shows on the condition or group it points at."""
    catalogue = {key: (label, kind) for key, label, kind in field_catalogue(pickers)}
    choices = {f"attributes.{f.key}": list(f.choices or []) for f in pickers.custom_fields}
    keys = property_keys or {}
    options = value_options(pickers)

    def view(node: dict[str, Any], path: str, depth: int, number: str) -> NodeView:
        item = NodeView(path=path, node=node, depth=depth, number=number)
        if node.get("type") == "group":
            for index, child in enumerate(node.get("children") or []):
                child_path = f"{path}.children.{index}" if path else f"children.{index}"
                label = f"{number}.{index + 1}" if number else str(index + 1)
                if isinstance(child, dict):
                    item.children.append(view(child, child_path, depth + 1, label))
        elif node.get("type") == "field":
            kind = catalogue.get(str(node.get("field")), ("", "text"))[1]
            item.field_type = kind
            item.field_known = str(node.get("field")) in catalogue
            item.ops = OPERATORS.get(kind, OPERATORS["text"])
            item.choices = choices.get(str(node.get("field")), [])
            item.value_kind = _value_kind(kind, str(node.get("op", "")))
        elif node.get("type") == "event":
            item.property_keys = keys.get(str(node.get("name", "")), [])
        elif node.get("type") in SIMPLE_OPS:
            item.ops = SIMPLE_OPS[str(node["type"])]
            item.options = options[str(node["type"])]
        return item

    root = view(tree, "", 0, "")
    for path, message in errors:
        target = _nearest(root, path)
        target.error = f"{target.error} {message}".strip()
    return root


def value_options(pickers: Pickers) -> dict[str, list[tuple[str, str]]]:
    def named(rows: list[Any]) -> list[tuple[str, str]]:
        return [(str(row.public_id), row.name) for row in rows]

    return {
        "tag": named(pickers.tags),
        "stage": [*named(pickers.stages), ("", "no stage")],
        "persona": [*named(pickers.personas), ("", "no persona")],
        "status": [(value, str(label)) for value, label in SubscriptionStatus.choices],
        "topic": named(pickers.topics),
        "segment": named(pickers.segments),
    }


def _nearest(view: NodeView, path: str) -> NodeView:
    """The deepest node at or above `path` (an error in "children.1.where.0" shows on the
    event condition "children.1"; one the page cannot place shows at the top)."""
    for child in view.children:
        if path == child.path or path.startswith(child.path + "."):
            return _nearest(child, path)
    return view


def _value_kind(kind: str, op: str) -> str:
    if op in NO_VALUE:
        return "none"
    if op in DAYS_OPS:
        return "days"
    if op == "between":
        return "pair"
    if op in LIST_OPS:
        return "choices" if kind == "choice" else "list"
    if kind == "choice":
        return "choice"
    if kind in ("date", "datetime"):
        return "date"
    if kind == "number":
        return "number"
    return "text"


def event_names_in(tree: Any) -> set[str]:
    """The event names the tree's event conditions use (for their property pickers)."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "group":
                stack.extend(node.get("children") or [])
            elif node.get("type") == "event" and node.get("name"):
                found.add(str(node["name"]))
    return found

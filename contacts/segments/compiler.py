"""A rule tree compiled to one ORM query over the workspace's contacts.

Every condition becomes a Q that is strictly true or false for every contact (never SQL
NULL), so a NONE group, compiled as NOT(ANY), means what it says. Relations are EXISTS
subqueries correlated on the contact (tags, topics, memberships, events); event counts
other than "at least once" and revenue sums are `id IN (grouped subquery)`, which
PostgreSQL answers with one pass over the matching events instead of one probe per
contact. Field names come only from the allowlists in rules.py; JSON keys and every value
are query parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db import NotSupportedError
from django.db.models import (
    CharField,
    Count,
    DecimalField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
)
from django.db.models.fields.json import compile_json_path
from django.db.models.functions import Lower, Substr
from django.db.models.lookups import (
    Contains,
    EndsWith,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Regex,
    StartsWith,
)
from django.utils import timezone

from contacts.models import (
    Contact,
    Event,
    LifecycleStage,
    Persona,
    SegmentMembership,
    Topic,
    TopicPreference,
)

from . import rules

ISO_DATE_PATTERN = "^" + rules.ISO_DATE_PREFIX.pattern
CHECK_LOOKUPS = {
    "lt": LessThan,
    "lte": LessThanOrEqual,
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
}
TEXT_LOOKUPS = {
    "equals": Exact,
    "contains": Contains,
    "starts_with": StartsWith,
    "ends_with": EndsWith,
    "in": In,
}


def compile_rules(workspace: Any, tree: Any, *, now: dt.datetime | None = None) -> Q:
    """The Q for `Contact.objects.for_workspace(workspace).filter(q)`. The tree is checked
    for structure (RuleError); ids unknown to the workspace simply match nothing."""
    normalised = rules.normalise_tree(tree)
    return _Compiler(workspace, now or timezone.now()).node(normalised)


def matching_contacts(
    workspace: Any, tree: Any, *, now: dt.datetime | None = None
) -> QuerySet[Contact]:
    return Contact.objects.for_workspace(workspace).filter(compile_rules(workspace, tree, now=now))


# --- JSON keys, alike on PostgreSQL and SQLite -------------------------------------------


class _JSONKey(Func):
    """One key of a JSON column. The key travels as a parameter, never as SQL text."""

    def __init__(self, column: str, key: str) -> None:
        super().__init__(F(column))
        self.key = key

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotSupportedError(f"Segments support PostgreSQL and SQLite, not {connection.vendor}.")

    def _column(self, compiler: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return sql, list(params)


class JSONKind(_JSONKey):
    """The kind of value under the key: string, number, true, false, null, object, array,
    or 'missing' when the key is absent (never NULL)."""

    output_field = CharField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = self._column(compiler)
        value = f"({column} -> %s)"
        sql = (
            f"COALESCE(CASE jsonb_typeof({value}) WHEN 'boolean' THEN {value}::text "
            f"ELSE jsonb_typeof({value}) END, 'missing')"
        )
        return sql, [*params, self.key] * 3

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = self._column(compiler)
        sql = (
            f"COALESCE(CASE json_type({column}, %s) WHEN 'text' THEN 'string' "
            f"WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            f"ELSE json_type({column}, %s) END, 'missing')"
        )
        return sql, [*params, compile_json_path([self.key])] * 2


class JSONText(_JSONKey):
    """The key's value as text (meaningful when its kind is 'string')."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = self._column(compiler)
        return f"({column} ->> %s)", [*params, self.key]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = self._column(compiler)
        return f"json_extract({column}, %s)", [*params, compile_json_path([self.key])]


class JSONNumber(_JSONKey):
    """The key's value as a number when it is a JSON number, else NULL: a cast that cannot
    fail whatever is stored under the key. Exact (numeric) on PostgreSQL, so no stored
    number is out of range."""

    output_field = DecimalField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = self._column(compiler)
        value = f"({column} -> %s)"
        sql = f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value})::numeric END)"
        return sql, [*params, self.key] * 2

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = self._column(compiler)
        sql = (
            f"(CASE WHEN json_type({column}, %s) IN ('integer', 'real') "
            f"THEN CAST(json_extract({column}, %s) AS REAL) END)"
        )
        return sql, [*params, compile_json_path([self.key])] * 2


# --- the compiler ------------------------------------------------------------------------


class _Compiler:
    def __init__(self, workspace: Any, now: dt.datetime) -> None:
        self.workspace = workspace
        self.now = now
        self.zone = getattr(workspace, "timezone", "") or "UTC"
        self.today = rules.local_today(now, self.zone)

    def node(self, node: Mapping[str, Any]) -> Q:
        if node["type"] == "group":
            parts = [self.node(child) for child in node["children"]]
            if node["match"] == "all":
                return reduce(and_, parts)
            either = reduce(or_, parts)
            return ~either if node["match"] == "none" else either
        return getattr(self, f"_{node['type']}")(node)

    # -- contact fields and attributes

    def _field(self, condition: Mapping[str, Any]) -> Q:
        name, op, value = condition["field"], condition["op"], condition["value"]
        if name.startswith(rules.ATTRIBUTE_PREFIX):
            key = name.removeprefix(rules.ATTRIBUTE_PREFIX)
            return self.json_condition("attributes", key, op, value)
        field_type = rules.FIELD_TYPES[name]
        present = Q(**{f"{name}__isnull": False})
        if field_type == rules.TEXT:
            present &= ~Q(**{name: ""})
        if op == "is_set":
            return present
        if op == "is_not_set":
            return ~present
        if field_type == rules.TEXT:
            return present & text_match(F(name), op, value)
        if op == "anniversary_within_days":
            return present & self.month_day_match(name, value)
        if field_type == rules.DATE:
            checks = rules.date_checks(op, value, self.today)
        else:
            checks = rules.instant_checks(op, value, self.now, self.zone)
        return present & checks_match(F(name), checks)

    def json_condition(self, column: str, key: str, op: str, value: Any) -> Q:
        kind = JSONKind(column, key)
        comparison = rules.comparison_kind(op, value)
        if comparison == "presence":
            return ~json_missing(column, key) if op == "is_set" else json_missing(column, key)
        if comparison == "boolean":
            if op == rules.NOT_FALSE_OP:
                return ~Q(Exact(kind, "false"))
            return Q(Exact(kind, "true" if op == "is_true" else "false"))
        if comparison == "number":
            number = JSONNumber(column, key)
            return Q(Exact(kind, "number")) & number_match(number, op, value)
        text = JSONText(column, key)
        is_text = Q(Exact(kind, "string")) & ~Q(Exact(text, ""))
        if comparison == "text":
            return is_text & text_match(text, op, value)
        is_date = is_text & Q(Regex(text, ISO_DATE_PATTERN))
        if op == "anniversary_within_days":
            return is_date & self.month_day_text_match(Substr(text, 6, 5), value)
        checks = [
            (check, bound.isoformat()) for check, bound in rules.date_checks(op, value, self.today)
        ]
        return is_date & checks_match(Substr(text, 1, 10), checks)

    def month_day_match(self, name: str, days: int) -> Q:
        runs = rules.anniversary_runs(self.today, days)
        if runs is None:
            return Q()
        month, day = f"{name}__month", f"{name}__day"
        matches = []
        for (start_month, start_day), (end_month, end_day) in runs:
            after_start = Q(**{f"{month}__gt": start_month}) | Q(
                **{month: start_month, f"{day}__gte": start_day}
            )
            before_end = Q(**{f"{month}__lt": end_month}) | Q(
                **{month: end_month, f"{day}__lte": end_day}
            )
            matches.append(after_start & before_end)
        return reduce(or_, matches)

    def month_day_text_match(self, month_day: Any, days: int) -> Q:
        runs = rules.anniversary_runs(self.today, days)
        if runs is None:
            return Q()
        return reduce(
            or_,
            (
                Q(GreaterThanOrEqual(month_day, _month_day(start)))
                & Q(LessThanOrEqual(month_day, _month_day(end)))
                for start, end in runs
            ),
        )

    # -- audience

    def _tag(self, condition: Mapping[str, Any]) -> Q:
        links = Contact.tags.through.objects.filter(
            contact_id=OuterRef("pk"),
            tag__workspace=self.workspace,
            tag__public_id=condition["value"],
        )
        has = Q(Exists(links))
        return has if condition["op"] == "has" else ~has

    def _stage(self, condition: Mapping[str, Any]) -> Q:
        return self._owned_by(LifecycleStage, "lifecycle_stage_id", condition)

    def _persona(self, condition: Mapping[str, Any]) -> Q:
        return self._owned_by(Persona, "persona_id", condition)

    def _owned_by(self, model: Any, column: str, condition: Mapping[str, Any]) -> Q:
        if condition["value"] is None:
            is_it = Q(**{f"{column}__isnull": True})
        else:
            rows = model.objects.for_workspace(self.workspace).filter(
                pk=OuterRef(column), public_id=condition["value"]
            )
            is_it = Q(Exists(rows))
        return is_it if condition["op"] == "is" else ~is_it

    def _status(self, condition: Mapping[str, Any]) -> Q:
        is_it = Q(status=condition["value"])
        return is_it if condition["op"] == "is" else ~is_it

    def _topic(self, condition: Mapping[str, Any]) -> Q:
        preferences = TopicPreference.objects.for_workspace(self.workspace).filter(
            contact=OuterRef("pk"), topic__public_id=condition["value"]
        )
        default_on = Topic.objects.for_workspace(self.workspace).filter(
            public_id=condition["value"], default_subscribed=True
        )
        subscribed = Q(Exists(preferences.filter(subscribed=True))) | (
            ~Q(Exists(preferences)) & Q(Exists(default_on))
        )
        return subscribed if condition["op"] == "subscribed" else ~subscribed

    def _segment(self, condition: Mapping[str, Any]) -> Q:
        current = SegmentMembership.objects.for_workspace(self.workspace).filter(
            contact=OuterRef("pk"), segment__public_id=condition["value"], exited_at__isnull=True
        )
        member = Q(Exists(current))
        return member if condition["op"] == "member" else ~member

    # -- events

    def events(self, name: str | None, window: Mapping[str, Any] | None = None) -> QuerySet:
        rows = Event.objects.for_workspace(self.workspace)
        if name is not None:
            rows = rows.filter(name=name)
        if window is not None:
            checks = rules.window_checks(window, self.now, self.zone)
            rows = rows.filter(checks_match(F("occurred_at"), checks))
        return rows

    def _event(self, condition: Mapping[str, Any]) -> Q:
        rows = self.events(condition["name"], condition["window"])
        for where in condition["where"]:
            rows = rows.filter(self.json_condition("properties", *_where_parts(where)))
        performed_once = Q(Exists(rows.filter(contact=OuterRef("pk"))))
        if not condition["performed"]:
            return ~performed_once
        op, times = condition["count"]["op"], condition["count"]["value"]
        if op == "at_least" and times == 1:
            return performed_once
        if op != "at_least" and times == 0:
            return ~performed_once
        counted = (
            rows.filter(contact__isnull=False)
            .order_by()
            .values("contact_id")
            .annotate(times=Count("*"))  # COUNT(*) lets PostgreSQL count from the index
        )
        if op == "at_least":
            return Q(pk__in=counted.filter(times__gte=times).values("contact_id"))
        if op == "at_most":
            return ~Q(pk__in=counted.filter(times__gt=times).values("contact_id"))
        return Q(pk__in=counted.filter(times=times).values("contact_id"))

    def _engagement(self, condition: Mapping[str, Any]) -> Q:
        return self._event(rules.engagement_as_event(condition))

    def _event_time(self, condition: Mapping[str, Any]) -> Q:
        rows = self.events(condition["name"]).filter(contact=OuterRef("pk"))
        check, instant = rules.event_time_check(
            condition["op"], condition["value"], self.now, self.zone
        )
        ever = Q(Exists(rows))
        if condition["which"] == "first":
            some_before = Q(Exists(rows.filter(occurred_at__lt=instant)))
            return some_before if check == "lt" else ever & ~some_before
        some_since = Q(Exists(rows.filter(occurred_at__gte=instant)))
        return some_since if check == "gte" else ever & ~some_since

    def _revenue(self, condition: Mapping[str, Any]) -> Q:
        rows = self.events(condition["name"], condition["window"]).filter(
            revenue__isnull=False, contact__isnull=False
        )
        totals = rows.order_by().values("contact_id").annotate(total=Sum("revenue"))
        op, value = condition["op"], condition["value"]
        passes = revenue_match(op, value)
        if rules.revenue_passes(op, value, Decimal(0)):
            # Contacts without revenue (total 0) pass: exclude those whose total fails.
            return ~Q(pk__in=totals.filter(~passes).values("contact_id"))
        return Q(pk__in=totals.filter(passes).values("contact_id"))


# --- building blocks ---------------------------------------------------------------------


def json_missing(column: str, key: str) -> Q:
    """Absent, null or "" (see rules.py: missing values)."""
    kind = JSONKind(column, key)
    empty_text = Q(Exact(kind, "string")) & Q(Exact(JSONText(column, key), ""))
    return Q(In(kind, ["missing", "null"])) | empty_text


def text_match(expression: Any, op: str, value: Any) -> Q:
    """Case-insensitive text comparison; `expression` must be non-NULL where it is used."""
    negated = op.startswith("not_")
    base = op.removeprefix("not_")
    lowered = Lower(expression)
    if base == "in":
        lookup = In(lowered, [item.lower() for item in value])
    else:
        lookup = TEXT_LOOKUPS[base](lowered, value.lower())
    return ~Q(lookup) if negated else Q(lookup)


def number_match(expression: Any, op: str, value: Any) -> Q:
    if op in ("equals", "not_equals"):
        equal = Q(Exact(expression, _amount(value)))
        return equal if op == "equals" else ~equal
    checks = [(check, _amount(bound)) for check, bound in rules.number_checks(op, value)]
    return checks_match(expression, checks)


def checks_match(expression: Any, checks: list[rules.Check]) -> Q:
    return reduce(
        and_, (Q(CHECK_LOOKUPS[check](expression, bound)) for check, bound in checks), Q()
    )


def revenue_match(op: str, value: Any) -> Q:
    checks = [(check, _amount(bound)) for check, bound in rules.number_checks(op, value)]
    return checks_match(F("total"), checks)


def _amount(number: Any) -> Value:
    """A number as an exact decimal parameter (numeric on PostgreSQL, NUMERIC on SQLite)."""
    return Value(Decimal(str(number)), output_field=DecimalField())


def _where_parts(where: Mapping[str, Any]) -> tuple[str, str, Any]:
    return where["property"], where["op"], where["value"]


def _month_day(month_day: tuple[int, int]) -> str:
    return f"{month_day[0]:02d}-{month_day[1]:02d}"

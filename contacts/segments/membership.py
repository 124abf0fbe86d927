"""Every write to segments: the segments themselves, static list members, and the
materialised membership of dynamic segments (and persona rules).

Membership lives in SegmentMembership: a row per time a contact spent in a segment,
current while exited_at is empty. It is kept up to date two ways:

- fully: `refresh_segment` diffs the rules against the current members in SQL (an
  INSERT … SELECT for the newcomers, an UPDATE for the leavers), run for every segment by
  the periodic task, and when a segment is saved;
- incrementally: when contacts or their events change (contacts.signals), only the
  segments whose rules read what changed are re-evaluated, and only for those contacts
  (`refresh_for_contacts`). Small batches run inline, big ones in Celery.

Static lists are never refreshed from rules: their members are added and removed
explicitly. A persona's rule gives the persona to matching contacts that have none yet
(see `assign_personas`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from workspaces.models import Workspace

from ..models import (
    Contact,
    Event,
    Persona,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentSize,
)
from ..signals import contacts_changed
from .compiler import matching_contacts
from .rules import validate_rules
from .signals import segment_membership_changed

logger = logging.getLogger(__name__)

NAME_LIMIT = 120
# Contact changes touching at most this many contacts are applied inline, right after the
# commit that made them; bigger batches go to Celery in chunks of CONTACT_CHUNK.
INLINE_CONTACTS = 20
CONTACT_CHUNK = 1000
# A saved segment is filled inline in a workspace of at most this many contacts, else by
# a Celery task (the page shows "counting" until it is done).
INLINE_REFRESH_CONTACTS = 20_000
UPDATE_CHUNK = 10_000

# Dependencies: what a rule tree reads, matched against what changed.
ANY_EVENT = "event:*"
EVERYTHING = "*"
_DEPENDENCY_OF_TYPE = {
    "tag": "tags",
    "stage": "stage",
    "persona": "persona",
    "status": "status",
    "topic": "topics",
}
# contacts_changed's `changes` -> the dependencies they can affect. update_contact reports
# any edit (standard fields, custom fields, persona) as "attributes", so that one reaches
# the standard fields and the persona too.
_CHANGE_REACHES = {
    "attributes": {"attributes", "fields", "persona"},
    "fields": {"fields"},
    "tags": {"tags"},
    "stage": {"stage"},
    "persona": {"persona"},
    "status": {"status"},
    "topics": {"topics"},
    "topic": {"topics"},
}


class RefreshResult(NamedTuple):
    """Contact ids (primary keys) that entered and left the segment."""

    entered: list[int]
    exited: list[int]


# --- segments ---------------------------------------------------------------------------


def _clean_name(workspace: Workspace, name: str, segment: Segment | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A name is required."})
    if len(name) > NAME_LIMIT:
        raise ValidationError({"name": f"A name has at most {NAME_LIMIT} characters."})
    others = Segment.objects.for_workspace(workspace).filter(name__iexact=name)
    if segment is not None and segment.pk:
        others = others.exclude(pk=segment.pk)
    clash = others.first()
    if clash is not None:
        raise ValidationError({"name": f"There is already a segment called “{clash.name}”."})
    return name


def _clean_rules(
    workspace: Workspace, kind: str, rules: Any, segment: Segment | None = None
) -> dict[str, Any] | None:
    if kind == SegmentKind.STATIC:
        if rules:
            raise ValidationError(
                {"rules": "A static list has members, not rules; make a dynamic segment."}
            )
        return None
    if not rules:
        raise ValidationError({"rules": "A dynamic segment needs at least one condition."})
    return validate_rules(workspace, rules, segment=segment)


@transaction.atomic
def create_segment(
    *,
    workspace: Workspace,
    name: str,
    kind: str = SegmentKind.DYNAMIC,
    rules: Any = None,
    description: str = "",
) -> Segment:
    """A new dynamic segment (validated rules) or static list (no rules), filled at once
    in a small workspace and by a Celery task in a big one."""
    if kind not in SegmentKind.values:
        raise ValidationError(
            {"kind": f"“{kind}” is not a kind of segment; use dynamic or static."}
        )
    segment = Segment(
        workspace=workspace,
        name=_clean_name(workspace, name),
        description=(description or "").strip(),
        kind=kind,
        rules=_clean_rules(workspace, kind, rules),
    )
    segment.full_clean(validate_constraints=False)
    segment.save()
    if kind == SegmentKind.DYNAMIC:
        _fill(workspace, segment)
    else:
        snapshot_sizes(workspace=workspace, segments=[segment])
    return segment


@transaction.atomic
def update_segment(
    *,
    workspace: Workspace,
    segment: Segment,
    name: str | None = None,
    description: str | None = None,
    rules: Any = None,
) -> Segment:
    """Rename, describe or change the rules (a segment keeps its kind). New rules refill
    the membership: contacts who no longer match leave, new matches enter."""
    if name is not None:
        segment.name = _clean_name(workspace, name, segment)
    if description is not None:
        segment.description = description.strip()
    rules_changed = False
    if rules is not None:
        cleaned = _clean_rules(workspace, segment.kind, rules, segment)
        rules_changed = cleaned != segment.rules
        segment.rules = cleaned
    segment.full_clean(validate_constraints=False)
    segment.save()
    if rules_changed:
        _fill(workspace, segment)
    return segment


@transaction.atomic
def delete_segment(*, workspace: Workspace, segment: Segment) -> None:
    """Delete a segment and its membership history, unless a rule uses it."""
    users = segments_using(workspace, segment)
    if users:
        names = ", ".join(f"“{name}”" for name in users)
        raise ValidationError(f"The rules of {names} use this segment; change them first.")
    segment.delete()


def segments_using(workspace: Workspace, segment: Segment) -> list[str]:
    """Names of the segments and personas whose rules refer to this segment."""
    needle = f"segment:{segment.public_id}"
    users = [
        other.name
        for other in Segment.objects.for_workspace(workspace).filter(kind=SegmentKind.DYNAMIC)
        if other.pk != segment.pk and needle in rule_dependencies(other.rules)
    ]
    users += [
        f"persona {persona.name}"
        for persona in _personas_with_rules(workspace)
        if needle in rule_dependencies(persona.rule)
    ]
    return users


def _fill(workspace: Workspace, segment: Segment) -> None:
    contacts = Contact.objects.for_workspace(workspace).values("pk")
    if contacts[: INLINE_REFRESH_CONTACTS + 1].count() <= INLINE_REFRESH_CONTACTS:
        refresh_segment_and_dependents(workspace=workspace, segment=segment)
        return
    from .tasks import refresh_segment_task

    transaction.on_commit(lambda: refresh_segment_task.delay(workspace.pk, segment.pk))


# --- static lists -----------------------------------------------------------------------


def _require_static(segment: Segment) -> None:
    if segment.kind != SegmentKind.STATIC:
        raise ValidationError(
            f"“{segment.name}” is a dynamic segment: its members follow its rules. "
            "Add and remove members on static lists only."
        )


def add_to_static(
    *,
    workspace: Workspace,
    segment: Segment,
    contact_ids: Collection[int],
    now: Any = None,
) -> list[int]:
    """Add contacts (primary keys) to a static list; returns those that were not members."""
    _require_static(segment)
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(workspace, segment)
        wanted = set(
            Contact.objects.for_workspace(workspace)
            .filter(pk__in=list(contact_ids))
            .values_list("pk", flat=True)
        )
        present = set(
            _current(workspace, locked)
            .filter(contact_id__in=wanted)
            .values_list("contact_id", flat=True)
        )
        entered = sorted(wanted - present)
        _enter(workspace, locked, entered, now)
        _count_moves(workspace, locked, len(entered), 0)
        _announce_moves(workspace, locked, RefreshResult(entered, []))
        _propagate(workspace, locked, RefreshResult(entered, []))
    segment.member_count = locked.member_count + len(entered)
    return entered


def remove_from_static(
    *,
    workspace: Workspace,
    segment: Segment,
    contact_ids: Collection[int],
    now: Any = None,
) -> list[int]:
    """Take contacts (primary keys) off a static list; returns those that were members."""
    _require_static(segment)
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(workspace, segment)
        rows = dict(
            _current(workspace, locked)
            .filter(contact_id__in=list(contact_ids))
            .values_list("contact_id", "pk")
        )
        exited = sorted(rows)
        _exit(workspace, [rows[c] for c in exited], now)
        _count_moves(workspace, locked, 0, len(exited))
        _announce_moves(workspace, locked, RefreshResult([], exited))
        _propagate(workspace, locked, RefreshResult([], exited))
    segment.member_count = locked.member_count - len(exited)
    return exited


# --- refreshing -------------------------------------------------------------------------


def refresh_segment(*, workspace: Workspace, segment: Segment, now: Any = None) -> RefreshResult:
    """Bring a dynamic segment's membership in line with its rules, as one set-based diff:
    current members who no longer match leave (exited_at = now), matching contacts who are
    not members enter. A static list only gets its member count checked."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(workspace, segment)
        current = _current(workspace, locked)
        if locked.kind == SegmentKind.STATIC or not locked.rules:
            result = RefreshResult([], [])
        else:
            matching = matching_contacts(workspace, locked.rules, now=now)
            leaving = list(
                current.filter(~Exists(matching.filter(pk=OuterRef("contact_id"))))
                .order_by()
                .values_list("pk", "contact_id")
            )
            _exit(workspace, [pk for pk, _ in leaving], now)
            entered = _enter_matching(workspace, locked, matching, current, now)
            result = RefreshResult(entered, sorted(contact for _, contact in leaving))
        count = current.count()
        Segment.objects.for_workspace(workspace).filter(pk=locked.pk).update(
            member_count=count, refreshed_at=now
        )
        _announce_moves(workspace, locked, result)
    segment.member_count, segment.refreshed_at = count, now
    return result


def refresh_segment_and_dependents(
    *, workspace: Workspace, segment: Segment, now: Any = None
) -> RefreshResult:
    """refresh_segment, then (after the commit) the segments whose rules use this one, for
    the contacts that moved."""
    result = refresh_segment(workspace=workspace, segment=segment, now=now)
    snapshot_sizes(workspace=workspace, now=now, segments=[segment])
    _propagate(workspace, segment, result)
    return result


def refresh_for_contacts(
    *,
    workspace: Workspace,
    contact_ids: Collection[int],
    changes: Iterable[str],
    now: Any = None,
    wait: bool = True,
) -> dict[int, RefreshResult]:
    """Re-evaluate, for these contacts only, the dynamic segments whose rules read what
    changed (`changes`: contacts.signals' change names, "event:<name>" per event name
    recorded, "segment:<public id>" for a segment whose members moved). A segment whose
    members move passes the change on to the segments that use it. Returns the results by
    segment id, for the segments that were looked at.

    With wait=False a segment that is being fully refreshed right now (its row is locked)
    is handed to Celery instead of waited for."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    now = now or timezone.now()
    reached = reached_dependencies(changes)
    results: dict[int, RefreshResult] = {}
    deferred: list[int] = []
    for segment in in_dependency_order(_dynamic_segments(workspace)):
        if reached is not None and not (rule_dependencies(segment.rules) & reached):
            continue
        try:
            result = _refresh_contacts(workspace, segment, ids, now, wait)
        except ValidationError:
            logger.warning("segment %s has rules that no longer compile", segment.pk)
            continue
        if result is None:
            deferred.append(segment.pk)
            continue
        results[segment.pk] = result
        if reached is not None and (result.entered or result.exited):
            reached.add(f"segment:{segment.public_id}")
    if deferred:
        _defer(workspace, ids, reached)
    assign_personas(workspace=workspace, contact_ids=ids, changes=reached, now=now)
    return results


def _refresh_contacts(
    workspace: Workspace, segment: Segment, ids: Sequence[int], now: Any, wait: bool
) -> RefreshResult | None:
    with transaction.atomic():
        locked = _lock(workspace, segment, wait=wait)
        if locked is None:
            return None
        matches = set(
            matching_contacts(workspace, locked.rules, now=now)
            .filter(pk__in=ids)
            .order_by()
            .values_list("pk", flat=True)
        )
        rows = dict(
            _current(workspace, locked).filter(contact_id__in=ids).values_list("contact_id", "pk")
        )
        result = RefreshResult(sorted(matches - rows.keys()), sorted(rows.keys() - matches))
        _enter(workspace, locked, result.entered, now)
        _exit(workspace, [rows[c] for c in result.exited], now)
        _count_moves(workspace, locked, len(result.entered), len(result.exited))
        _announce_moves(workspace, locked, result)
    return result


def _defer(workspace: Workspace, ids: list[int], reached: set[str] | None) -> None:
    from .tasks import refresh_contacts_task

    changes = sorted(reached) if reached is not None else ["created"]
    transaction.on_commit(lambda: refresh_contacts_task.delay(workspace.pk, ids, changes))


def refresh_workspace(*, workspace: Workspace, now: Any = None) -> dict[int, RefreshResult]:
    """The periodic full refresh: every dynamic segment (the ones others use first), then
    persona rules, then today's size of every segment."""
    now = now or timezone.now()
    results = {}
    for segment in in_dependency_order(_dynamic_segments(workspace)):
        try:
            results[segment.pk] = refresh_segment(workspace=workspace, segment=segment, now=now)
        except ValidationError:
            logger.warning("segment %s has rules that no longer compile", segment.pk)
    for segment in Segment.objects.for_workspace(workspace).filter(kind=SegmentKind.STATIC):
        refresh_segment(workspace=workspace, segment=segment, now=now)  # recount only
    assign_personas(workspace=workspace, now=now)
    snapshot_sizes(workspace=workspace, now=now)
    return results


def snapshot_sizes(
    *, workspace: Workspace, now: Any = None, segments: Collection[Segment] | None = None
) -> int:
    """Record each segment's (or these segments') member count for today, in the
    workspace's time zone; a later snapshot on the same day replaces the earlier one."""
    now = now or timezone.now()
    day = timezone.localtime(now, ZoneInfo(workspace.timezone or "UTC")).date()
    counts = Segment.objects.for_workspace(workspace)
    if segments is not None:
        counts = counts.filter(pk__in=[segment.pk for segment in segments])
    rows = [
        SegmentSize(workspace=workspace, segment_id=pk, day=day, member_count=count)
        for pk, count in counts.values_list("pk", "member_count")
    ]
    SegmentSize.objects.for_workspace(workspace).bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["segment", "day"],
        update_fields=["member_count", "updated_at"],
    )
    return len(rows)


# --- personas ---------------------------------------------------------------------------


@transaction.atomic
def persona_rule_for_segment(segment: Segment | None) -> dict[str, Any] | None:
    """The rule that gives a persona to the members of one segment (the settings page's
    "Assign automatically")."""
    if segment is None:
        return None
    condition = {"type": "segment", "op": "member", "value": str(segment.public_id)}
    return {"type": "group", "match": "all", "children": [condition]}


def segment_of_persona_rule(workspace: Workspace, rule: Any) -> Segment | None:
    """The segment a persona rule written by persona_rule_for_segment points at, if any."""
    try:
        (condition,) = rule["children"]
        if condition["type"] != "segment" or condition["op"] != "member":
            return None
        public_id = condition["value"]
    except (TypeError, KeyError, ValueError):
        return None
    return Segment.objects.for_workspace(workspace).filter(public_id=public_id).first()


def set_persona_rule(
    *, workspace: Workspace, persona: Persona, rule: Any, now: Any = None
) -> Persona:
    """Give a persona a rule (or None to remove it) and assign it to the contacts without
    a persona who match."""
    persona.rule = validate_rules(workspace, rule) if rule else None
    persona.save(update_fields=["rule", "updated_at"])
    if persona.rule:
        assign_personas(workspace=workspace, now=now)
    return persona


def assign_personas(
    *,
    workspace: Workspace,
    contact_ids: Collection[int] | None = None,
    changes: set[str] | None = None,
    now: Any = None,
) -> dict[int, int]:
    """Give each persona that has a rule to the matching contacts that have no persona.

    A persona set by hand, by an import or form, or earlier by a rule is never replaced,
    and stays when the contact stops matching: the rule only fills gaps. Personas are
    tried in name order, so where two rules match, the first persona by name wins.
    `changes` (see refresh_for_contacts) skips rules that cannot be affected.
    Returns {persona id: contacts assigned}."""
    now = now or timezone.now()
    assigned: dict[int, int] = {}
    moved: list[int] = []
    for persona in _personas_with_rules(workspace):
        if changes is not None and not (rule_dependencies(persona.rule) & changes):
            continue
        try:
            candidates = matching_contacts(workspace, persona.rule, now=now)
        except ValidationError:
            logger.warning("persona %s has a rule that no longer compiles", persona.pk)
            continue
        candidates = candidates.filter(persona__isnull=True)
        if contact_ids is not None:
            candidates = candidates.filter(pk__in=list(contact_ids))
        ids = list(candidates.order_by().values_list("pk", flat=True))
        for start in range(0, len(ids), UPDATE_CHUNK):
            Contact.objects.for_workspace(workspace).filter(
                pk__in=ids[start : start + UPDATE_CHUNK], persona__isnull=True
            ).update(persona=persona, updated_at=now)
        if ids:
            assigned[persona.pk] = len(ids)
            moved.extend(ids)
    if moved:
        transaction.on_commit(
            lambda: contacts_changed.send(
                sender=Contact, workspace_id=workspace.pk, contact_ids=moved, changes={"persona"}
            )
        )
    return assigned


def _personas_with_rules(workspace: Workspace) -> list[Persona]:
    personas = Persona.objects.for_workspace(workspace).filter(rule__isnull=False)
    return [p for p in personas.order_by("name", "pk") if p.rule]


# --- dependencies -----------------------------------------------------------------------


def rule_dependencies(tree: Any) -> frozenset[str]:
    """What a rule tree reads: "fields", "attributes", "tags", "stage", "persona",
    "status", "topics", "event:<name>" ("event:*" for any event), "segment:<public id>",
    or "*" for a condition this module does not know (it is then always refreshed)."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind == "group":
            stack.extend(node.get("children") or [])
        elif kind == "field":
            field = str(node.get("field", ""))
            if field.startswith("attributes."):
                found.add("attributes")
            elif field == "last_activity_at":
                found.add(ANY_EVENT)
            else:
                found.add("fields")
        elif kind in _DEPENDENCY_OF_TYPE:
            found.add(_DEPENDENCY_OF_TYPE[kind])
        elif kind in ("event", "event_time"):
            found.add(f"event:{node.get('name')}")
        elif kind == "revenue":
            found.add(f"event:{node['name']}" if node.get("name") else ANY_EVENT)
        elif kind == "engagement":
            found.add(f"event:email_{node.get('action')}")
        elif kind == "segment":
            found.add(f"segment:{node.get('value')}")
        else:
            found.add(EVERYTHING)
    return frozenset(found)


def reached_dependencies(changes: Iterable[str]) -> set[str] | None:
    """The dependencies that changes can affect; None means all of them (a new contact
    may match any rule, and an unknown kind of change is not guessed at)."""
    reached: set[str] = {EVERYTHING}
    for change in changes:
        if change.startswith("event:"):
            reached |= {change, ANY_EVENT}
        elif change.startswith("segment:"):
            reached.add(change)
        elif change in _CHANGE_REACHES:
            reached |= _CHANGE_REACHES[change]
        else:
            return None
    return reached


def in_dependency_order(segments: Iterable[Segment]) -> list[Segment]:
    """Segments sorted so that a segment comes after the segments its rules use (rules
    are validated against cycles; a cycle that slipped in is broken by id order)."""
    by_public_id = {str(s.public_id): s for s in segments}
    ordered: list[Segment] = []
    state: dict[int, str] = {}

    def visit(segment: Segment) -> None:
        if state.get(segment.pk):
            return
        state[segment.pk] = "visiting"
        for dependency in sorted(rule_dependencies(segment.rules)):
            used = by_public_id.get(dependency.removeprefix("segment:"))
            if dependency.startswith("segment:") and used is not None:
                visit(used)
        state[segment.pk] = "done"
        ordered.append(segment)

    for segment in sorted(by_public_id.values(), key=lambda s: s.pk):
        visit(segment)
    return ordered


# --- signal receivers (connected in contacts.apps) ---------------------------------------


def on_contacts_changed(
    sender: Any, workspace_id: int, contact_ids: list[int], changes: Any, **kwargs: Any
) -> None:
    workspace = _workspace_with_rules(workspace_id) if contact_ids else None
    if workspace is not None:
        _dispatch(workspace, contact_ids, set(changes or ()))


def on_events_recorded(
    sender: Any, workspace_id: int, event_ids: list[int], contact_ids: list[int], **kwargs: Any
) -> None:
    workspace = _workspace_with_rules(workspace_id) if contact_ids and event_ids else None
    if workspace is None:
        return
    names = (
        Event.objects.for_workspace(workspace)
        .filter(pk__in=event_ids)
        .order_by()
        .values_list("name", flat=True)
        .distinct()
    )
    _dispatch(workspace, contact_ids, {f"event:{name}" for name in names})


def _workspace_with_rules(workspace_id: int) -> Workspace | None:
    """The workspace, if it has anything to refresh (most writes stop at this query)."""
    has_rules = (
        Segment.objects.filter(workspace_id=workspace_id, kind=SegmentKind.DYNAMIC).exists()
        or Persona.objects.filter(workspace_id=workspace_id, rule__isnull=False).exists()
    )
    return Workspace.objects.filter(pk=workspace_id).first() if has_rules else None


def _dispatch(workspace: Workspace, contact_ids: list[int], changes: set[str]) -> None:
    """Small batches inline (so a journey sees the new membership at once), big ones in
    Celery, chunked. A failure here must not fail the write that announced the change:
    the periodic refresh repairs what was missed."""
    if not contact_ids:
        return
    if len(contact_ids) <= INLINE_CONTACTS:
        try:
            refresh_for_contacts(
                workspace=workspace, contact_ids=contact_ids, changes=changes, wait=False
            )
        except Exception:
            logger.exception("inline segment refresh failed; the periodic refresh catches up")
        return
    from .tasks import refresh_contacts_task

    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), CONTACT_CHUNK):
        refresh_contacts_task.delay(
            workspace.pk, ids[start : start + CONTACT_CHUNK], sorted(changes)
        )


# --- rows -------------------------------------------------------------------------------


def _dynamic_segments(workspace: Workspace) -> list[Segment]:
    return list(
        Segment.objects.for_workspace(workspace)
        .filter(kind=SegmentKind.DYNAMIC, rules__isnull=False)
        .only("pk", "public_id", "workspace_id", "kind", "rules", "member_count", "name")
        .order_by("pk")
    )


def _lock(workspace: Workspace, segment: Segment, wait: bool = True) -> Any:
    """The segment's row, locked for the rest of the transaction: one refresh of a
    segment at a time. With wait=False, None when another refresh holds it."""
    rows = Segment.objects.for_workspace(workspace).filter(pk=segment.pk)
    if connection.features.has_select_for_update:
        rows = rows.select_for_update(skip_locked=not wait)
    locked = rows.first()
    if locked is None and wait:
        raise Segment.DoesNotExist(f"No segment {segment.pk} in this workspace.")
    return locked


def _current(workspace: Workspace, segment: Segment) -> QuerySet[SegmentMembership]:
    return SegmentMembership.objects.for_workspace(workspace).filter(
        segment=segment, exited_at__isnull=True
    )


def _enter(workspace: Workspace, segment: Segment, contact_ids: Sequence[int], now: Any) -> None:
    SegmentMembership.objects.for_workspace(workspace).bulk_create(
        (
            SegmentMembership(
                workspace=workspace,
                segment=segment,
                contact_id=contact_id,
                entered_at=now,
                created_at=now,
                updated_at=now,
            )
            for contact_id in contact_ids
        ),
        batch_size=5000,
    )


def _exit(workspace: Workspace, membership_ids: Sequence[int], now: Any) -> None:
    for start in range(0, len(membership_ids), UPDATE_CHUNK):
        SegmentMembership.objects.for_workspace(workspace).filter(
            pk__in=membership_ids[start : start + UPDATE_CHUNK]
        ).update(exited_at=now, updated_at=now)


def _enter_matching(
    workspace: Workspace,
    segment: Segment,
    matching: QuerySet[Contact],
    current: QuerySet[SegmentMembership],
    now: Any,
) -> list[int]:
    """Insert a membership for every matching contact that is not a member; returns their
    ids. On PostgreSQL one INSERT … SELECT: the contacts never travel through Python."""
    newcomers = (
        matching.filter(~Exists(current.filter(contact_id=OuterRef("pk")))).order_by().values("pk")
    )
    if connection.vendor != "postgresql":
        ids = sorted(newcomers.values_list("pk", flat=True))
        _enter(workspace, segment, ids, now)
        return ids
    select_sql, params = newcomers.query.get_compiler(using=newcomers.db).as_sql()
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    sql = (
        f"INSERT INTO {table} (workspace_id, public_id, created_at, updated_at, segment_id, "
        "contact_id, entered_at) "
        "SELECT %s, gen_random_uuid(), %s, %s, %s, newcomer.contact_id, %s "
        f"FROM ({select_sql}) AS newcomer (contact_id) "
        "ON CONFLICT DO NOTHING RETURNING contact_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, now, now, segment.pk, now, *params])
        return sorted(row[0] for row in cursor.fetchall())


def _count_moves(workspace: Workspace, segment: Segment, entered: int, exited: int) -> None:
    if entered or exited:
        Segment.objects.for_workspace(workspace).filter(pk=segment.pk).update(
            member_count=F("member_count") + entered - exited
        )


def _announce_moves(workspace: Workspace, segment: Segment, result: RefreshResult) -> None:
    if not (result.entered or result.exited):
        return
    transaction.on_commit(
        lambda: segment_membership_changed.send(
            sender=Segment,
            workspace_id=workspace.pk,
            segment_id=segment.pk,
            entered=result.entered,
            exited=result.exited,
        )
    )


def _propagate(workspace: Workspace, segment: Segment, result: RefreshResult) -> None:
    """After the commit, re-evaluate the segments whose rules use this one, for the
    contacts that moved (refresh_for_contacts and refresh_workspace do this themselves)."""
    moved = sorted({*result.entered, *result.exited})
    if moved and segments_using(workspace, segment):
        change = {f"segment:{segment.public_id}"}
        transaction.on_commit(lambda: _dispatch(workspace, moved, change))

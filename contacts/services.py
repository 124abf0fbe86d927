"""Every write to the audience: contacts (one or in bulk), stages, tags, consent, erasure
and the event stream. Keyword-only, workspace passed in, one transaction per call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from workspaces.models import Workspace

from . import contact_store, event_store
from .attributes import clean_attributes, clean_contact_fields, clean_email, field_definitions
from .models import (
    DEFAULT_STAGES,
    AnonymousId,
    ConsentKind,
    ConsentRecord,
    Contact,
    CustomField,
    Event,
    ExistingContacts,
    LifecycleStage,
    Persona,
    Source,
    StageChange,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
    Topic,
    TopicPreference,
    email_hash,
)
from .signals import contacts_changed, events_recorded, subscription_changed

MAX_BULK_CONTACTS = 1000
MAX_TAG_LENGTH = 80
# What a row may record about a contact's subscription: an opt-out or a failure, never an
# opt-in (that needs the call's consent basis).
ROW_STATUSES = frozenset(
    {SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.BOUNCED, SubscriptionStatus.COMPLAINED}
)
STANDARD_FIELDS = (
    "email",
    "external_id",
    "first_name",
    "last_name",
    "phone",
    "timezone",
    "locale",
    "birthday",
)


# --- lifecycle stages ------------------------------------------------------------------


def ensure_default_stages(*, workspace: Workspace) -> list[LifecycleStage]:
    """The five stages every new workspace starts with (no-op if it has any)."""
    stages = LifecycleStage.objects.for_workspace(workspace)
    if not stages.exists():
        stages.bulk_create(
            LifecycleStage(workspace=workspace, name=name, position=index)
            for index, name in enumerate(DEFAULT_STAGES)
        )
    return list(stages)


@transaction.atomic
def create_stage(*, workspace: Workspace, name: str, description: str = "") -> LifecycleStage:
    last = LifecycleStage.objects.for_workspace(workspace).aggregate(Max("position"))
    stage = LifecycleStage(
        workspace=workspace,
        name=name.strip(),
        description=description,
        position=(last["position__max"] or 0) + 1,
    )
    stage.full_clean()
    stage.save()
    return stage


@transaction.atomic
def rename_stage(
    *, workspace: Workspace, stage: LifecycleStage, name: str, description: str | None = None
) -> LifecycleStage:
    stage.name = name.strip()
    if description is not None:
        stage.description = description
    stage.full_clean()
    stage.save()
    return stage


@transaction.atomic
def reorder_stages(*, workspace: Workspace, ordered_ids: Sequence[Any]) -> None:
    """Set the order from a list of stage public ids (all of the workspace's stages)."""
    stages = {str(s.public_id): s for s in LifecycleStage.objects.for_workspace(workspace)}
    if sorted(stages) != sorted(str(i) for i in ordered_ids):
        raise ValidationError("Give every stage of the workspace exactly once.")
    for position, public_id in enumerate(ordered_ids):
        stages[str(public_id)].position = position
    LifecycleStage.objects.for_workspace(workspace).bulk_update(stages.values(), ["position"])


@transaction.atomic
def delete_stage(
    *, workspace: Workspace, stage: LifecycleStage, move_to: LifecycleStage | None = None
) -> int:
    """Delete a stage; its contacts must be moved to another stage first (returns moved)."""
    in_stage = Contact.objects.for_workspace(workspace).filter(lifecycle_stage=stage)
    moved = 0
    if in_stage.exists():
        if move_to is None or move_to.pk == stage.pk:
            count = in_stage.count()
            message = f"{count} contacts are in “{stage.name}”: choose a stage to move them to."
            raise ValidationError({"move_to": message})
        moved = change_stage(
            workspace=workspace, contacts=in_stage, stage=move_to, source=Source.MANUAL
        )
    stage.delete()
    return moved


def change_stage(
    *,
    workspace: Workspace,
    contacts: QuerySet[Contact],
    stage: LifecycleStage | None,
    source: str,
    at: dt.datetime | None = None,
) -> int:
    """Move contacts to a stage, recording one StageChange per contact that moved."""
    at = at or timezone.now()
    moving = (
        contacts.exclude(lifecycle_stage=stage)
        if stage
        else contacts.exclude(lifecycle_stage__isnull=True)
    )
    rows = list(moving.values_list("pk", "lifecycle_stage_id"))
    if not rows:
        return 0
    names = dict(LifecycleStage.objects.for_workspace(workspace).values_list("pk", "name"))
    with transaction.atomic():
        StageChange.objects.for_workspace(workspace).bulk_create(
            StageChange(
                workspace=workspace,
                contact_id=pk,
                from_stage_id=old,
                from_name=names.get(old, ""),
                to_stage=stage,
                to_name=stage.name if stage else "",
                changed_at=at,
                source=source,
            )
            for pk, old in rows
        )
        Contact.objects.for_workspace(workspace).filter(pk__in=[pk for pk, _ in rows]).update(
            lifecycle_stage=stage, updated_at=timezone.now()
        )
        _announce_contacts(workspace, [pk for pk, _ in rows], {"stage"})
    return len(rows)


# --- contacts --------------------------------------------------------------------------


@dataclass
class ConsentInput:
    """How people being added agreed to hear from the workspace."""

    method: str
    text_shown: str = ""
    source: str = ""
    ip_address: str | None = None
    kind: str = ConsentKind.OPT_IN


@dataclass
class UpsertResult:
    index: int
    status: str  # created | updated | skipped | rejected
    contact: Contact | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ContactRow:
    """A row that passed the checks: standard fields (the email always), attributes, and
    the tags and the opt-out or bounce it records."""

    index: int
    fields: dict[str, Any]
    attributes: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    status: str | None = None


@dataclass
class CheckedRows:
    """The rows of one upsert call after the checks: the clean ones, and a result for each
    of the others (rejected, or skipped because the address comes again later)."""

    size: int
    clean: list[ContactRow]
    refused: dict[int, UpsertResult]

    def __len__(self) -> int:
        return self.size


def check_contact_rows(
    *, rows: Sequence[Mapping[str, Any]], definitions: Mapping[str, CustomField]
) -> CheckedRows:
    """Run the contact cleaners over rows as `upsert_contacts` takes them, without touching
    the database (the importer checks the next chunk while the last one is written).
    The same address twice: the last row wins, the earlier one is skipped."""
    clean: dict[str, ContactRow] = {}
    refused: dict[int, UpsertResult] = {}
    for index, row in enumerate(rows):
        try:
            checked = _check_row(index, row, definitions)
        except ValidationError as exc:
            refused[index] = UpsertResult(index, "rejected", errors=_error_dict(exc))
            continue
        earlier = clean.pop(checked.fields["email"], None)
        if earlier is not None:
            refused[earlier.index] = UpsertResult(
                earlier.index, "skipped", errors={"email": ["Repeated later in the batch."]}
            )
        clean[checked.fields["email"]] = checked
    return CheckedRows(len(rows), sorted(clean.values(), key=lambda r: r.index), refused)


def _check_row(
    index: int, row: Mapping[str, Any], definitions: Mapping[str, CustomField]
) -> ContactRow:
    fields = clean_contact_fields(row)
    if "email" not in fields:
        raise ValidationError({"email": ["An email address is required."]})
    attributes = clean_attributes(row.get("attributes") or {}, definitions)
    return ContactRow(
        index, fields, attributes, _row_tags(row.get("tags")), _row_status(row.get("status"))
    )


def _row_tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError({"tags": ["Tags are a list of names."]})
    names = [name.strip() for name in value if name.strip()]
    for name in names:
        if len(name) > MAX_TAG_LENGTH:
            raise ValidationError(
                {"tags": [f"Tag “{name[:20]}…” is longer than {MAX_TAG_LENGTH} characters."]}
            )
    return names


def _row_status(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or value not in ROW_STATUSES:
        raise ValidationError(
            {"status": ["A row can only mark a contact unsubscribed, bounced or complained."]}
        )
    return value


def _error_dict(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}


def suppressed_emails(workspace: Workspace, emails: Iterable[str]) -> set[str]:
    """The addresses among `emails` that were erased (GDPR) and must not come back."""
    hashes = {email_hash(e): e for e in emails}
    return {hashes[h] for h in contact_store.erased_hashes(workspace, list(hashes))}


def upsert_contacts(
    *,
    workspace: Workspace,
    rows: Sequence[Mapping[str, Any]] | CheckedRows,
    source: str,
    existing: str = "update",
    tags: Sequence[Tag] = (),
    stage: LifecycleStage | None = None,
    persona: Persona | None = None,
    consent: ConsentInput | None = None,
    subscribe: bool | None = None,
    now: dt.datetime | None = None,
    max_rows: int = MAX_BULK_CONTACTS,
    load_contacts: bool = True,
) -> list[UpsertResult]:
    """Create or update up to `max_rows` contacts (MAX_BULK_CONTACTS unless the caller is
    the importer) in one transaction, with a result per row in the order given.

    Each row has standard fields (email required), optional `attributes`, optional `tags`
    (names, added to the call's `tags`) and an optional `status` (unsubscribed, bounced or
    complained: an opt-out or failure the source recorded, which wins over `consent`).
    Rows may come checked already (`check_contact_rows`). Rows that fail the checks, or
    whose address was erased, are reported and nothing of them is written. New contacts
    are subscribed only with a consent basis (`consent`); `subscribe=False` creates them
    unsubscribed (e.g. an import without consent). `load_contacts=False` leaves each
    result's contact empty (the importer only counts them).
    """
    if len(rows) > max_rows:
        raise ValidationError(f"At most {max_rows} contacts per call, got {len(rows)}.")
    now = now or timezone.now()
    if not isinstance(rows, CheckedRows):
        rows = check_contact_rows(rows=rows, definitions=_definitions_for(workspace, rows))
    results = [rows.refused.get(i) or UpsertResult(i, "rejected") for i in range(rows.size)]
    clean = _without_erased(workspace, rows.clean, results)
    if subscribe is None:
        subscribe = consent is not None or source == Source.API
    for tag in tags:
        if tag.workspace_id != workspace.pk:
            raise ValidationError("A tag from another workspace.")
    with transaction.atomic():
        written = _write_contacts(
            workspace,
            clean,
            existing=existing,
            subscribe=subscribe,
            source=source,
            stage=stage,
            persona=persona,
            now=now,
        )
        tagged = _tag_rows(workspace, written.touched, tags)
        new_opt_ins = [pk for row, pk in written.created if not row.status]
        if consent and new_opt_ins:
            contact_store.insert_consents(workspace, new_opt_ins, consent, now)
        _mark_row_statuses(workspace, written.touched, source, now)
        _fill_results(workspace, results, written, load_contacts)
        changes = {"created"} if written.created else set()
        if written.updated:
            changes.add("attributes")
        _announce_contacts(workspace, tagged, {"tags"})
        _announce_contacts(workspace, written.moved, {"stage"})
        _announce_contacts(workspace, [pk for _, pk in written.touched], changes)
        if subscribe:
            _announce_subscription(
                workspace, new_opt_ins, SubscriptionStatus.SUBSCRIBED, source, now
            )
    return results


def _definitions_for(
    workspace: Workspace, rows: Sequence[Mapping[str, Any]]
) -> dict[str, CustomField]:
    keys = set()
    for row in rows:
        attributes = row.get("attributes") if isinstance(row, Mapping) else None
        if isinstance(attributes, Mapping):
            keys.update(attributes)
    return field_definitions(workspace, keys) if keys else {}


def _without_erased(
    workspace: Workspace, rows: list[ContactRow], results: list[UpsertResult]
) -> list[ContactRow]:
    erased = suppressed_emails(workspace, [row.fields["email"] for row in rows])
    for row in rows:
        if row.fields["email"] in erased:
            results[row.index] = UpsertResult(
                row.index,
                "rejected",
                errors={"email": ["This address was erased and is suppressed."]},
            )
    return [row for row in rows if row.fields["email"] not in erased]


@dataclass
class _Written:
    created: list[tuple[ContactRow, int]] = field(default_factory=list)
    updated: list[tuple[ContactRow, int]] = field(default_factory=list)
    skipped: list[tuple[ContactRow, int]] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)  # contacts that changed stage

    @property
    def touched(self) -> list[tuple[ContactRow, int]]:
        return [*self.created, *self.updated]


def _write_contacts(
    workspace: Workspace,
    rows: list[ContactRow],
    *,
    existing: str,
    subscribe: bool,
    source: str,
    stage: LifecycleStage | None,
    persona: Persona | None,
    now: dt.datetime,
) -> _Written:
    """Match rows to known contacts (by external id, then email), create the new ones in
    the stage and persona, update or skip the known ones, and move them to the stage."""
    known = contact_store.find_contacts(workspace, rows)
    written = _Written()
    to_create: list[ContactRow] = []
    to_update: list[tuple[ContactRow, contact_store.Known]] = []
    for row in rows:
        external = row.fields.get("external_id")
        match = (known.get(f"x:{external}") if external else None) or known.get(
            f"e:{row.fields['email']}"
        )
        if match is None:
            to_create.append(row)
        elif existing == ExistingContacts.SKIP:
            written.skipped.append((row, match.pk))
        else:
            to_update.append((row, match))
    opted_in = SubscriptionStatus.SUBSCRIBED if subscribe else SubscriptionStatus.UNSUBSCRIBED
    created_ids = contact_store.insert_contacts(
        workspace,
        # A row that records an opt-out never gets the call's consent.
        [(row, SubscriptionStatus.UNSUBSCRIBED if row.status else opted_in) for row in to_create],
        source=source,
        stage=stage,
        persona=persona,
        now=now,
    )
    written.created = list(zip(to_create, created_ids, strict=True))
    written.updated = [(row, match.pk) for row, match in to_update]
    contact_store.update_contacts(workspace, written.updated, persona=persona, now=now)
    if stage:
        written.moved = contact_store.record_stage_changes(
            workspace,
            created_ids=created_ids,
            moving=[(m.pk, m.stage_id) for _, m in to_update if m.stage_id != stage.pk],
            stage=stage,
            source=source,
            now=now,
        )
    return written


def _tag_rows(
    workspace: Workspace, touched: list[tuple[ContactRow, int]], tags: Sequence[Tag]
) -> list[int]:
    """Give every touched contact the call's tags and its row's own; returns who got any."""
    names = {name for row, _ in touched for name in row.tags}
    by_name = (
        {tag.name.lower(): tag.pk for tag in get_or_create_tags(workspace=workspace, names=names)}
        if names
        else {}
    )
    links = [(pk, tag.pk) for _, pk in touched for tag in tags]
    links += [(pk, by_name[name.lower()]) for row, pk in touched for name in row.tags]
    contact_store.link_tags(workspace, links)
    return sorted({pk for pk, _ in links})


def _mark_row_statuses(
    workspace: Workspace, touched: list[tuple[ContactRow, int]], source: str, now: dt.datetime
) -> None:
    """Rows that record an opt-out or a bounce: the contact takes that status, with an
    opt-out consent record when it changes."""
    by_status: dict[str, list[int]] = {}
    for row, pk in touched:
        if row.status:
            by_status.setdefault(row.status, []).append(pk)
    where = "the imported file" if source == Source.IMPORT else f"data from {Source(source).label}"
    for status, contact_ids in by_status.items():
        set_subscription(
            workspace=workspace,
            contacts=Contact.objects.for_workspace(workspace).filter(pk__in=contact_ids),
            status=status,
            consent=ConsentInput(
                method=source, kind=ConsentKind.OPT_OUT, text_shown=f"Marked {status} in {where}."
            ),
            at=now,
        )


def _fill_results(
    workspace: Workspace, results: list[UpsertResult], written: _Written, load_contacts: bool
) -> None:
    outcomes = [
        *(("created", pair) for pair in written.created),
        *(("updated", pair) for pair in written.updated),
        *(("skipped", pair) for pair in written.skipped),
    ]
    contacts: dict[int, Contact] = {}
    if load_contacts and outcomes:
        contacts = Contact.objects.for_workspace(workspace).in_bulk([pk for _, (_, pk) in outcomes])
    for status, (row, pk) in outcomes:
        results[row.index] = UpsertResult(row.index, status, contacts.get(pk))


@transaction.atomic
def update_contact(
    *, workspace: Workspace, contact: Contact, data: dict[str, Any], source: str = Source.MANUAL
) -> Contact:
    """Change one contact's fields, attributes, persona or stage (data as from a form/API)."""
    fields = clean_contact_fields({k: v for k, v in data.items() if k in STANDARD_FIELDS})
    for name, value in fields.items():
        setattr(contact, name, value)
    if "attributes" in data:
        definitions = field_definitions(workspace, (data["attributes"] or {}).keys())
        contact.attributes = clean_attributes(data["attributes"] or {}, definitions)
    if "persona" in data:
        contact.persona = data["persona"]
    try:
        contact.full_clean(exclude=["lifecycle_stage", "tags"])
    except ValidationError as exc:
        raise ValidationError(_error_dict(exc)) from exc
    contact.save()
    if "lifecycle_stage" in data:
        change_stage(
            workspace=workspace,
            contacts=Contact.objects.for_workspace(workspace).filter(pk=contact.pk),
            stage=data["lifecycle_stage"],
            source=source,
        )
        contact.refresh_from_db(fields=["lifecycle_stage"])
    _announce_contacts(workspace, [contact.pk], {"attributes"})
    return contact


@transaction.atomic
def delete_contacts(*, workspace: Workspace, contact_ids: Sequence[int]) -> int:
    deleted, _ = Contact.objects.for_workspace(workspace).filter(pk__in=contact_ids).delete()
    return deleted


# --- tags ------------------------------------------------------------------------------


def get_or_create_tags(*, workspace: Workspace, names: Iterable[str]) -> list[Tag]:
    """Tags by name, case-insensitively, creating the missing ones (in the given spelling)."""
    wanted: dict[str, str] = {}
    for raw in names:
        name = (raw or "").strip()
        if len(name) > MAX_TAG_LENGTH:
            raise ValidationError(
                {"tags": f"Tag “{name[:20]}…” is longer than {MAX_TAG_LENGTH} characters."}
            )
        if name:
            wanted.setdefault(name.lower(), name)
    if not wanted:
        return []
    found = _tags_by_lower_name(workspace, wanted)
    missing = [Tag(workspace=workspace, name=wanted[key]) for key in wanted if key not in found]
    if missing:
        Tag.objects.for_workspace(workspace).bulk_create(missing, ignore_conflicts=True)
        found = _tags_by_lower_name(workspace, wanted)
    return [found[key] for key in wanted]


def _tags_by_lower_name(workspace: Workspace, lowered: Iterable[str]) -> dict[str, Tag]:
    tags = Tag.objects.for_workspace(workspace).annotate(lower_name=Lower("name"))
    return {tag.lower_name: tag for tag in tags.filter(lower_name__in=list(lowered))}


def add_tags(*, workspace: Workspace, contact_ids: Sequence[int], tags: Sequence[Tag]) -> None:
    through = Contact.tags.through
    for tag in tags:
        if tag.workspace_id != workspace.pk:
            raise ValidationError("A tag from another workspace.")
    through.objects.bulk_create(
        [through(contact_id=c, tag_id=t.pk) for c in contact_ids for t in tags],
        ignore_conflicts=True,
        batch_size=5000,
    )
    _announce_contacts(workspace, list(contact_ids), {"tags"})


def remove_tags(*, workspace: Workspace, contact_ids: Sequence[int], tags: Sequence[Tag]) -> None:
    Contact.tags.through.objects.filter(
        contact_id__in=Contact.objects.for_workspace(workspace)
        .filter(pk__in=contact_ids)
        .values("pk"),
        tag_id__in=[t.pk for t in tags if t.workspace_id == workspace.pk],
    ).delete()
    _announce_contacts(workspace, list(contact_ids), {"tags"})


# --- consent, subscription, topics, erasure ---------------------------------------------


def record_consents(
    *,
    workspace: Workspace,
    contacts: Sequence[Contact],
    consent: ConsentInput,
    at: dt.datetime | None = None,
    topic: Topic | None = None,
) -> None:
    at = at or timezone.now()
    ConsentRecord.objects.for_workspace(workspace).bulk_create(
        ConsentRecord(
            workspace=workspace,
            contact=contact,
            kind=consent.kind,
            method=consent.method,
            source=consent.source[:255],
            ip_address=consent.ip_address or None,
            text_shown=consent.text_shown,
            topic=topic,
            occurred_at=at,
        )
        for contact in contacts
    )


@transaction.atomic
def set_subscription(
    *,
    workspace: Workspace,
    contacts: QuerySet[Contact],
    status: str,
    consent: ConsentInput,
    at: dt.datetime | None = None,
) -> int:
    """Subscribe, confirm or unsubscribe contacts, keeping a consent record of each change."""
    if status not in SubscriptionStatus.values:
        raise ValidationError({"status": f"“{status}” is not a subscription status."})
    at = at or timezone.now()
    changing = list(contacts.exclude(status=status))
    if not changing:
        return 0
    Contact.objects.for_workspace(workspace).filter(pk__in=[c.pk for c in changing]).update(
        status=status, updated_at=at
    )
    record_consents(workspace=workspace, contacts=changing, consent=consent, at=at)
    _announce_contacts(workspace, [c.pk for c in changing], {"status"})
    _announce_subscription(workspace, [c.pk for c in changing], status, consent.method, at)
    return len(changing)


def unsubscribe(
    *,
    workspace: Workspace,
    contacts: QuerySet[Contact],
    method: str,
    source: str = "",
    ip_address: str | None = None,
) -> int:
    consent = ConsentInput(
        method=method, source=source, ip_address=ip_address, kind=ConsentKind.OPT_OUT
    )
    return set_subscription(
        workspace=workspace,
        contacts=contacts,
        status=SubscriptionStatus.UNSUBSCRIBED,
        consent=consent,
    )


@transaction.atomic
def set_topic_preference(
    *,
    workspace: Workspace,
    contact: Contact,
    topic: Topic,
    subscribed: bool,
    method: str,
    ip_address: str | None = None,
) -> TopicPreference:
    preference, _ = TopicPreference.objects.for_workspace(workspace).update_or_create(
        workspace=workspace, contact=contact, topic=topic, defaults={"subscribed": subscribed}
    )
    kind = ConsentKind.TOPIC_IN if subscribed else ConsentKind.TOPIC_OUT
    record_consents(
        workspace=workspace,
        contacts=[contact],
        consent=ConsentInput(method=method, kind=kind, ip_address=ip_address),
        topic=topic,
    )
    _announce_contacts(workspace, [contact.pk], {"topic"})
    return preference


@transaction.atomic
def erase_contact(*, workspace: Workspace, contact: Contact) -> None:
    """GDPR erasure: the contact and everything about it goes; a hash of the address stays
    so that no import or form adds it again."""
    Suppression.objects.for_workspace(workspace).get_or_create(
        workspace=workspace,
        email_hash=email_hash(contact.email),
        defaults={"reason": SuppressionReason.ERASED},
    )
    Event.objects.for_workspace(workspace).filter(contact=contact).delete()
    contact.delete()


# --- the suppression list ----------------------------------------------------------------

# A stronger reason replaces a weaker one: an address added by hand that later bounces must
# stop transactional mail too. The contact of a bounced or complained address takes that
# status.
SUPPRESSION_STRENGTH = {
    SuppressionReason.MANUAL: 0,
    SuppressionReason.BOUNCED: 1,
    SuppressionReason.COMPLAINED: 2,
    SuppressionReason.ERASED: 3,
}
SUPPRESSION_STATUSES = {
    SuppressionReason.BOUNCED: SubscriptionStatus.BOUNCED,
    SuppressionReason.COMPLAINED: SubscriptionStatus.COMPLAINED,
}
SUPPRESSION_IMPORT_BATCH = 1000


@transaction.atomic
def suppress(
    *,
    workspace: Workspace,
    email: str,
    reason: str,
    source: str = "",
    at: dt.datetime | None = None,
) -> Suppression:
    """Put an address on the workspace's suppression list (only its hash is kept). A hard
    bounce or spam complaint also marks the address's contact bounced / complained, with a
    consent record saying why (`source`). Raises ValidationError for a bad address."""
    if reason not in SUPPRESSION_STRENGTH:
        raise ValidationError({"reason": f"“{reason}” is not a suppression reason."})
    address = clean_email(email)
    entry, created = Suppression.objects.for_workspace(workspace).get_or_create(
        workspace=workspace, email_hash=email_hash(address), defaults={"reason": reason}
    )
    if not created and SUPPRESSION_STRENGTH[reason] > SUPPRESSION_STRENGTH[entry.reason]:
        entry.reason = reason
        entry.save(update_fields=["reason", "updated_at"])
    status = SUPPRESSION_STATUSES.get(reason)
    if status is not None:
        contacts = Contact.objects.for_workspace(workspace).filter(email=address)
        if status == SubscriptionStatus.BOUNCED:  # a complaint says more than a bounce
            contacts = contacts.exclude(status=SubscriptionStatus.COMPLAINED)
        set_subscription(
            workspace=workspace,
            contacts=contacts,
            status=status,
            consent=ConsentInput(
                method=Source.SYSTEM,
                kind=ConsentKind.OPT_OUT,
                source=source[:255],
                text_shown=f"Suppressed: {SuppressionReason(reason).label.lower()}.",
            ),
            at=at,
        )
    return entry


def suppress_many(
    *, workspace: Workspace, emails: Iterable[str], reason: str = SuppressionReason.MANUAL
) -> tuple[int, int]:
    """Suppress clean addresses in bulk (a CSV import). Contacts keep their status.
    Returns (added, already on the list)."""
    hashes = list(dict.fromkeys(email_hash(e) for e in emails))
    added = 0
    with transaction.atomic():
        for start in range(0, len(hashes), SUPPRESSION_IMPORT_BATCH):
            chunk = hashes[start : start + SUPPRESSION_IMPORT_BATCH]
            known = set(
                Suppression.objects.for_workspace(workspace)
                .filter(email_hash__in=chunk)
                .values_list("email_hash", flat=True)
            )
            new = [
                Suppression(workspace=workspace, email_hash=h, reason=reason)
                for h in chunk
                if h not in known
            ]
            Suppression.objects.for_workspace(workspace).bulk_create(new, ignore_conflicts=True)
            added += len(new)
    return added, len(hashes) - added


def unsuppress(*, workspace: Workspace, email: str) -> bool:
    """Take an address off the suppression list; False if it was not on it. Its contact
    keeps its status (a bounced contact stays bounced until someone changes it)."""
    address = clean_email(email)
    deleted, _ = (
        Suppression.objects.for_workspace(workspace).filter(email_hash=email_hash(address)).delete()
    )
    return bool(deleted)


def suppression_for(*, workspace: Workspace, email: str) -> Suppression | None:
    """The list entry for an address, or None. Raises ValidationError for a bad address."""
    address = clean_email(email)
    return (
        Suppression.objects.for_workspace(workspace).filter(email_hash=email_hash(address)).first()
    )


def is_suppressed(*, workspace: Workspace, email: str) -> bool:
    try:
        return suppression_for(workspace=workspace, email=email) is not None
    except ValidationError:
        return False


# --- events ----------------------------------------------------------------------------


@dataclass
class EventInput:
    name: str
    occurred_at: dt.datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    contact_id: int | None = None
    user_id: str = ""
    anonymous_id: str = ""
    message_id: str | None = None
    revenue: Decimal | None = None
    currency: str = ""
    source: str = Source.API


def _contacts_for(workspace: Workspace, events: Sequence[EventInput]) -> None:
    """Fill contact_id from user ids (external ids) and known anonymous ids, in two queries."""
    user_ids = {e.user_id for e in events if e.contact_id is None and e.user_id}
    anon_ids = {e.anonymous_id for e in events if e.contact_id is None and e.anonymous_id}
    by_user = (
        dict(
            Contact.objects.for_workspace(workspace)
            .filter(external_id__in=user_ids)
            .values_list("external_id", "pk")
        )
        if user_ids
        else {}
    )
    by_anon = (
        dict(
            AnonymousId.objects.for_workspace(workspace)
            .filter(anonymous_id__in=anon_ids)
            .values_list("anonymous_id", "contact_id")
        )
        if anon_ids
        else {}
    )
    for event in events:
        if event.contact_id is None:
            event.contact_id = by_user.get(event.user_id) or by_anon.get(event.anonymous_id)


def record_events(
    *, workspace: Workspace, events: Sequence[EventInput], now: dt.datetime | None = None
) -> dict[str, int]:
    """Store events in bulk. A repeated message_id is stored once (retries are safe).
    Returns {"recorded": n, "duplicates": m}."""
    now = now or timezone.now()
    _contacts_for(workspace, events)
    with transaction.atomic():
        stored = event_store.insert_events(workspace, events, now)
        event_store.touch_activity(workspace, stored)
    event_ids = [pk for pk, _, _ in stored]
    contact_ids = sorted({contact_id for _, contact_id, _ in stored if contact_id})
    transaction.on_commit(
        lambda: events_recorded.send(
            sender=Event, workspace_id=workspace.pk, event_ids=event_ids, contact_ids=contact_ids
        )
    )
    return {"recorded": len(stored), "duplicates": len(events) - len(stored)}


def link_anonymous_activity(
    *, workspace: Workspace, contact: Contact, anonymous_id: str = "", user_id: str = ""
) -> int:
    """Tie a visitor's earlier events to the contact they turned out to be."""
    linked = 0
    events = Event.objects.for_workspace(workspace).filter(contact__isnull=True)
    if anonymous_id:
        AnonymousId.objects.for_workspace(workspace).get_or_create(
            workspace=workspace, anonymous_id=anonymous_id, defaults={"contact": contact}
        )
        linked += events.filter(anonymous_id=anonymous_id).update(contact=contact)
    if user_id:
        linked += events.filter(user_id=user_id).update(contact=contact, user_id="")
    return linked


def _announce_contacts(workspace: Workspace, contact_ids: list[int], changes: set[str]) -> None:
    if not contact_ids or not changes:
        return
    transaction.on_commit(
        lambda: contacts_changed.send(
            sender=Contact, workspace_id=workspace.pk, contact_ids=contact_ids, changes=changes
        )
    )


def _announce_subscription(
    workspace: Workspace, contact_ids: list[int], status: str, method: str, at: dt.datetime
) -> None:
    if not contact_ids:
        return
    transaction.on_commit(
        lambda: subscription_changed.send(
            sender=Contact,
            workspace_id=workspace.pk,
            contact_ids=contact_ids,
            status=status,
            method=method,
            at=at,
        )
    )

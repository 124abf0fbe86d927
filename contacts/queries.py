"""Reads for the contact pages: the filtered, keyset-paginated list, and everything about
one contact (its profile and its GDPR data export)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db.models import CharField, F, Field, Func, QuerySet, Value
from django.db.models.lookups import GreaterThan, LessThan

from workspaces.models import Workspace

from .models import (
    NEVER_ACTIVE,
    AnonymousId,
    ConsentRecord,
    Contact,
    CustomField,
    Event,
    LifecycleStage,
    Persona,
    StageChange,
    SubscriptionStatus,
    Tag,
    Topic,
    TopicPreference,
    activity_key,
)
from .timeline import stage_name

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
_CURSOR_SALT = "contacts.list.cursor"

# Contacts never active sort last under "last activity": NULL becomes the earliest time, so
# one index (workspace, activity key DESC, id DESC) serves every page.


class SearchText(Func):
    """lower(email || ' ' || first_name || ' ' || last_name): what the search box matches.
    One expression, so one trigram index can serve it (see docs/contacts.md)."""

    template = "LOWER(%(expressions)s)"
    arg_joiner = " || ' ' || "
    output_field = CharField()

    def __init__(self) -> None:
        super().__init__(F("email"), F("first_name"), F("last_name"))


@dataclass(frozen=True)
class Sort:
    key: str  # a field, or an alias added by `expression`
    descending: bool
    label: str
    expression: Callable[[], Any] | None = None

    def key_of(self, contact: Contact) -> Any:
        if self.key == "activity_key":
            return contact.last_activity_at or NEVER_ACTIVE
        return getattr(contact, self.key)


SORTS: dict[str, Sort] = {
    "newest": Sort("created_at", True, "Newest first"),
    "oldest": Sort("created_at", False, "Oldest first"),
    "activity": Sort("activity_key", True, "Last activity", activity_key),
    "email": Sort("email", False, "Email A to Z"),
}
DEFAULT_SORT = "newest"


@dataclass(frozen=True)
class ContactFilters:
    """What the list is narrowed to; stage, persona and tag are public ids."""

    q: str = ""
    status: str = ""
    stage: uuid.UUID | None = None
    persona: uuid.UUID | None = None
    tag: uuid.UUID | None = None

    @property
    def active(self) -> bool:
        return any((self.q, self.status, self.stage, self.persona, self.tag))

    def as_params(self) -> dict[str, str]:
        """The same filters as query parameters (the list, the CSV export, bulk actions)."""
        params = {
            "q": self.q,
            "status": self.status,
            "stage": str(self.stage or ""),
            "persona": str(self.persona or ""),
            "tag": str(self.tag or ""),
        }
        return {name: value for name, value in params.items() if value}


def filter_contacts(workspace: Workspace, filters: ContactFilters) -> QuerySet[Contact]:
    """The contacts matching the filters. Stage, persona and tag are looked up first (one
    small query each, only when used) so that the database plans with their real ids and
    can walk the sort index instead of sorting every match."""
    contacts = Contact.objects.for_workspace(workspace)
    if filters.q:
        contacts = contacts.alias(search_text=SearchText()).filter(
            search_text__contains=filters.q.strip().lower()
        )
    if filters.status:
        contacts = contacts.filter(status=filters.status)
    if filters.stage:
        contacts = contacts.filter(lifecycle_stage_id=_pk(LifecycleStage, workspace, filters.stage))
    if filters.persona:
        contacts = contacts.filter(persona_id=_pk(Persona, workspace, filters.persona))
    if filters.tag:
        contacts = contacts.filter(tags=_pk(Tag, workspace, filters.tag))
    return contacts


def _pk(model: type[LifecycleStage | Persona | Tag], workspace: Workspace, public_id: Any) -> int:
    """The row's primary key in this workspace; 0 (matches nothing) if there is none."""
    found = model.objects.for_workspace(workspace).filter(public_id=public_id)
    return found.values_list("pk", flat=True).first() or 0


# --- keyset pagination -------------------------------------------------------------------


@dataclass(frozen=True)
class ListCursor:
    """A position in the list: the sort key and id of a row. Signed, so a URL cannot be
    edited into something else; it carries the sort it belongs to."""

    sort: str
    key: Any
    pk: int

    def token(self) -> str:
        key = self.key.isoformat() if isinstance(self.key, dt.datetime) else self.key
        return signing.dumps([self.sort, key, self.pk], salt=_CURSOR_SALT)

    @classmethod
    def from_token(cls, token: str, sort: str) -> ListCursor | None:
        if not token:
            return None
        try:
            sort_name, key, pk = signing.loads(token, salt=_CURSOR_SALT)
        except (signing.BadSignature, ValueError, TypeError):
            return None
        if sort_name != sort or not isinstance(pk, int) or not isinstance(key, str):
            return None
        if SORTS[sort].key != "email":
            try:
                key = dt.datetime.fromisoformat(key)
            except ValueError:
                return None
        return cls(sort, key, pk)


@dataclass
class ContactPage:
    contacts: list[Contact]
    next_cursor: ListCursor | None
    previous_cursor: ListCursor | None


class Row(Func):
    """A row value, `(a, b)`: compared as a whole, so the database can start its index scan
    right at the cursor, even inside a long run of equal sort keys."""

    template = "(%(expressions)s)"
    output_field = Field()


def _beyond(contacts: QuerySet[Contact], sort: Sort, cursor: ListCursor, forward: bool) -> Any:
    """Rows after the cursor in the sort order (forward) or before it."""
    descending = sort.descending == forward
    compare = LessThan if descending else GreaterThan
    return contacts.filter(
        compare(Row(F(sort.key), F("pk")), Row(Value(cursor.key), Value(cursor.pk)))
    )


def _ordered(contacts: QuerySet[Contact], sort: Sort, forward: bool) -> QuerySet[Contact]:
    descending = sort.descending == forward
    if descending:
        return contacts.order_by(F(sort.key).desc(), F("pk").desc())
    return contacts.order_by(F(sort.key).asc(), F("pk").asc())


def list_contacts(
    workspace: Workspace,
    filters: ContactFilters,
    *,
    sort: str = DEFAULT_SORT,
    after: ListCursor | None = None,
    before: ListCursor | None = None,
    per_page: int = DEFAULT_PAGE_SIZE,
) -> ContactPage:
    """One page of contacts: two queries (rows with stage and persona, then their tags)
    whatever the page size or the depth, and no OFFSET."""
    spec = SORTS[sort]
    contacts = filter_contacts(workspace, filters)
    if spec.expression is not None:
        contacts = contacts.alias(**{spec.key: spec.expression()})
    forward = before is None
    cursor = after if forward else before
    if cursor is not None:
        contacts = _beyond(contacts, spec, cursor, forward)
    rows = list(
        _ordered(contacts, spec, forward)
        .select_related("lifecycle_stage", "persona")
        .prefetch_related("tags")
        .defer("attributes")[: per_page + 1]
    )
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()

    def at(contact: Contact) -> ListCursor:
        return ListCursor(sort, spec.key_of(contact), contact.pk)

    has_next = more if forward else True
    has_previous = (cursor is not None) if forward else more
    return ContactPage(
        contacts=rows,
        next_cursor=at(rows[-1]) if rows and has_next else None,
        previous_cursor=at(rows[0]) if rows and has_previous else None,
    )


def count_contacts(workspace: Workspace, filters: ContactFilters) -> int:
    return filter_contacts(workspace, filters).count()


def contacts_by_public_ids(workspace: Workspace, public_ids: list[uuid.UUID]) -> QuerySet[Contact]:
    return Contact.objects.for_workspace(workspace).filter(public_id__in=public_ids)


@dataclass
class FilterChoices:
    stages: list[LifecycleStage]
    personas: list[Persona]
    tags: list[Tag]


def filter_choices(workspace: Workspace) -> FilterChoices:
    return FilterChoices(
        stages=list(LifecycleStage.objects.for_workspace(workspace)),
        personas=list(Persona.objects.for_workspace(workspace).only("public_id", "name")),
        tags=list(Tag.objects.for_workspace(workspace).only("public_id", "name")),
    )


# --- one contact ---------------------------------------------------------------------------


def get_contact_for_profile(workspace: Workspace, public_id: Any) -> Contact | None:
    return (
        Contact.objects.for_workspace(workspace)
        .filter(public_id=public_id)
        .select_related("lifecycle_stage", "persona")
        .first()
    )


@dataclass
class TopicChoice:
    topic: Topic
    subscribed: bool
    chosen: bool  # False: the topic's default applies, the contact never chose


def topic_choices(workspace: Workspace, contact: Contact) -> list[TopicChoice]:
    chosen = dict(
        TopicPreference.objects.for_workspace(workspace)
        .filter(contact=contact)
        .values_list("topic_id", "subscribed")
    )
    return [
        TopicChoice(topic, chosen.get(topic.pk, topic.default_subscribed), topic.pk in chosen)
        for topic in Topic.objects.for_workspace(workspace)
    ]


def consent_history(workspace: Workspace, contact: Contact, limit: int = 50) -> list[ConsentRecord]:
    return list(
        ConsentRecord.objects.for_workspace(workspace)
        .filter(contact=contact)
        .select_related("topic")
        .order_by("-occurred_at", "-id")[:limit]
    )


def custom_fields(workspace: Workspace) -> list[CustomField]:
    return list(CustomField.objects.for_workspace(workspace))


# --- GDPR: everything about one contact ----------------------------------------------------

PersonalDataSection = Callable[[Workspace, Contact], Any]
_personal_data_sections: dict[str, PersonalDataSection] = {}


def register_personal_data_section(name: str, section: PersonalDataSection) -> None:
    """Later apps (emails sent, journey enrollments) add what they hold about a contact."""
    _personal_data_sections[name] = section


def _time(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value else None


def personal_data(workspace: Workspace, contact: Contact) -> dict[str, Any]:
    """A JSON-ready document of everything the workspace holds about the contact."""
    data: dict[str, Any] = {
        "contact": {
            "id": str(contact.public_id),
            "email": contact.email,
            "external_id": contact.external_id,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "phone": contact.phone,
            "timezone": contact.timezone,
            "locale": contact.locale,
            "birthday": _time(contact.birthday),
            "status": contact.status,
            "source": contact.source,
            "lifecycle_stage": contact.lifecycle_stage.name if contact.lifecycle_stage else None,
            "persona": contact.persona.name if contact.persona else None,
            "created_at": _time(contact.created_at),
            "updated_at": _time(contact.updated_at),
            "last_activity_at": _time(contact.last_activity_at),
        },
        "attributes": contact.attributes,
        "tags": [tag.name for tag in contact.tags.all()],
        "anonymous_ids": list(
            AnonymousId.objects.for_workspace(workspace)
            .filter(contact=contact)
            .values_list("anonymous_id", flat=True)
        ),
        "topic_preferences": [
            {"topic": name, "subscribed": subscribed}
            for name, subscribed in TopicPreference.objects.for_workspace(workspace)
            .filter(contact=contact)
            .order_by("topic__name")
            .values_list("topic__name", "subscribed")
        ],
        "consents": [
            {
                "kind": record.kind,
                "method": record.method,
                "source": record.source,
                "topic": record.topic.name if record.topic else None,
                "ip_address": record.ip_address,
                "text_shown": record.text_shown,
                "occurred_at": _time(record.occurred_at),
            }
            for record in ConsentRecord.objects.for_workspace(workspace)
            .filter(contact=contact)
            .select_related("topic")
            .order_by("occurred_at", "id")
        ],
        "stage_changes": [
            {
                "from": stage_name(change.from_name, change.from_stage) or None,
                "to": stage_name(change.to_name, change.to_stage) or None,
                "changed_at": _time(change.changed_at),
                "source": change.source,
            }
            for change in StageChange.objects.for_workspace(workspace)
            .filter(contact=contact)
            .select_related("from_stage", "to_stage")
            .order_by("changed_at", "id")
        ],
        "events": [
            {
                "name": event.name,
                "properties": event.properties,
                "context": event.context,
                "occurred_at": _time(event.occurred_at),
                "received_at": _time(event.received_at),
                "source": event.source,
                "revenue": str(event.revenue) if event.revenue is not None else None,
                "currency": event.currency or None,
                "message_id": event.message_id,
            }
            for event in Event.objects.for_workspace(workspace)
            .filter(contact=contact)
            .order_by("occurred_at", "id")
            .iterator(chunk_size=2000)
        ],
    }
    for name, section in _personal_data_sections.items():
        data[name] = section(workspace, contact)
    return data


def status_choices() -> list[tuple[str, str]]:
    return list(SubscriptionStatus.choices)

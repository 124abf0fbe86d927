"""The outbox: every email starts as a Message row here.

`enqueue` writes one row per contact in bulk with INSERT ... ON CONFLICT (idempotency_key)
DO NOTHING, so enqueueing the same email twice (a retried task, a double click, a journey
step run again) is a no-op. The key names the email, not the attempt:

    <workspace id>:<source>:<source id>:<variant>:<visit key>:<contact id>

Delivery is kicked once the rows are committed (campaigns.tasks.deliver_queued).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import EmailTemplate, Message, MessageSource, MessageStatus, TemplatePurpose
from contacts.models import Contact
from workspaces.models import Workspace

INSERT_CHUNK = 2000
KEY_MAX = Message._meta.get_field("idempotency_key").max_length


def idempotency_key(
    workspace_id: int,
    source: str,
    source_id: str,
    variant: str,
    visit_key: str,
    contact_id: int | str,
) -> str:
    key = f"{workspace_id}:{source}:{source_id}:{variant}:{visit_key}:{contact_id}"
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: KEY_MAX - 65]}#{digest}"


def _check(workspace: Workspace, template: EmailTemplate, source: str, purpose: str) -> None:
    if template.workspace_id != workspace.pk:
        raise ValueError("The template belongs to another workspace.")
    if source not in MessageSource.values:
        raise ValueError(f"{source!r} is not a message source.")
    if purpose not in TemplatePurpose.values:
        raise ValueError(f"{purpose!r} is not a template purpose.")


def _recipients(contacts: Iterable[Contact]) -> Iterator[tuple[int, str, int]]:
    """(id, email, workspace id) of each contact; a queryset is read in chunks."""
    if isinstance(contacts, QuerySet):
        yield from contacts.values_list("id", "email", "workspace_id").iterator(
            chunk_size=INSERT_CHUNK
        )
    else:
        for contact in contacts:
            yield contact.pk, contact.email, contact.workspace_id


@dataclass(frozen=True)
class Batch:
    """What every message of one enqueue call shares."""

    workspace: Workspace
    template: EmailTemplate
    purpose: str
    source: str
    source_id: str
    variant: str
    visit_key: str
    context: dict

    def key(self, contact_id: int) -> str:
        return idempotency_key(
            self.workspace.pk, self.source, self.source_id, self.variant, self.visit_key,
            contact_id,
        )  # fmt: skip


def enqueue(
    workspace: Workspace,
    *,
    template: EmailTemplate,
    contacts: Iterable[Contact],
    source: str,
    source_id: str = "",
    variant: str = "",
    visit_key: str = "",
    purpose: str | None = None,
    context: dict | None = None,
) -> int:
    """Queue `template` for each contact; returns how many messages are new (a key seen
    before is skipped). Contacts without an address are skipped."""
    purpose = purpose or template.purpose
    _check(workspace, template, source, purpose)
    batch = Batch(
        workspace, template, purpose, source, source_id, variant, visit_key, context or {}
    )
    new = 0
    seen: set[int] = set()
    rows = _recipients(contacts)
    with transaction.atomic():
        while chunk := list(islice(rows, INSERT_CHUNK)):
            recipients = []
            for contact_id, email, workspace_id in chunk:
                if workspace_id != workspace.pk:
                    raise ValueError("A contact belongs to another workspace.")
                if contact_id in seen or not email:
                    continue
                seen.add(contact_id)
                recipients.append((contact_id, email))
            if recipients:
                new += _insert(batch, recipients)
        if new:
            transaction.on_commit(lambda: kick_delivery(new))
    return new


_INSERT_POSTGRESQL = """
INSERT INTO {table} (workspace_id, public_id, created_at, updated_at, contact_id, to_email,
    template_id, purpose, source, source_id, variant, visit_id, idempotency_key, context,
    status, subject, esp, esp_message_id, claim_token, attempts, failure_reason)
SELECT %s, gen_random_uuid(), %s, %s, v.contact_id, v.email, %s, %s, %s, %s, %s, %s, v.key,
    %s::jsonb, %s, '', '', '', '', 0, ''
FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(contact_id, email, key)
ON CONFLICT (idempotency_key) DO NOTHING
"""


def _insert(batch: Batch, recipients: list[tuple[int, str]]) -> int:
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING; returns the rows that went in."""
    if db.vendor == "postgresql":
        now = timezone.now()
        with db.cursor() as cursor:
            cursor.execute(
                _INSERT_POSTGRESQL.format(table=Message._meta.db_table),
                [
                    batch.workspace.pk, now, now, batch.template.pk, batch.purpose, batch.source,
                    batch.source_id, batch.variant, batch.visit_key, json.dumps(batch.context),
                    MessageStatus.QUEUED,
                    [contact_id for contact_id, _ in recipients],
                    [email for _, email in recipients],
                    [batch.key(contact_id) for contact_id, _ in recipients],
                ],
            )  # fmt: skip
            return cursor.rowcount
    messages = [
        Message(
            workspace=batch.workspace,
            public_id=uuid.uuid4(),
            contact_id=contact_id,
            to_email=email,
            template=batch.template,
            purpose=batch.purpose,
            source=batch.source,
            source_id=batch.source_id,
            variant=batch.variant,
            visit_id=batch.visit_key,
            context=batch.context,
            idempotency_key=batch.key(contact_id),
        )
        for contact_id, email in recipients
    ]
    Message.objects.bulk_create(messages, ignore_conflicts=True)
    # the rows carrying the public ids made here are the ones that went in
    return (
        Message.objects.for_workspace(batch.workspace)
        .filter(public_id__in=[m.public_id for m in messages])
        .count()
    )


def enqueue_one(
    workspace: Workspace,
    *,
    template: EmailTemplate,
    contact: Contact,
    source: str = MessageSource.TRANSACTIONAL,
    source_id: str = "",
    variant: str = "",
    visit_key: str = "",
    purpose: str | None = None,
    context: dict | None = None,
) -> Message:
    """Queue one email (a transactional one by default) and return its Message: the
    existing one when the same key was enqueued before."""
    enqueue(
        workspace,
        template=template,
        contacts=[contact],
        source=source,
        source_id=source_id,
        variant=variant,
        visit_key=visit_key,
        purpose=purpose,
        context=context,
    )
    key = idempotency_key(workspace.pk, source, source_id, variant, visit_key, contact.pk)
    return Message.objects.for_workspace(workspace).get(idempotency_key=key)


def kick_delivery(new_messages: int = 1) -> None:
    """Ask the send workers to deliver: one task per batch of new messages, at most
    MAILPATH_SEND_TASKS, so a big send spreads over the workers while a single email
    costs one task. Tasks that find nothing left return at once."""
    from campaigns.tasks import deliver_queued

    batch = settings.MAILPATH_SEND_BATCH_SIZE
    for _ in range(max(1, min(settings.MAILPATH_SEND_TASKS, math.ceil(new_messages / batch)))):
        deliver_queued.delay()

"""Claim queued messages, apply the policies, personalise, hand them to the ESP and record
what it said.

Claiming. `claim()` takes due rows with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL (a
conditional UPDATE on SQLite, whose writers are serialised) and marks them `sending` with
a claim token, attempts + 1, in one short transaction: two workers never get the same
row. Due means queued with not_before past (retries and deferrals, oldest first) or null
(fresh rows, in id order); both are read along the partial index on queued rows.
Workspaces whose ESP connection is paused or failing are not claimed from.

Delivering. `deliver()` groups the claimed rows by workspace, compiles each template
once, checks the policies (campaigns/sending/policies.py), personalises each message and
builds its whole ESP request before anything leaves. Then, chunk by chunk, it makes the
call, marking the chunk handed off (`esp` = the provider key) at the last moment, and
records the outcome right after the answer, in bulk (sent + ESP message id, and a contact
event `email_received`). Providers with a batch endpoint for distinct messages (Postmark
/email/batch, 500 per call) get one call per chunk; the others get several calls in
flight, one connection per thread, opened once per batch. A per-workspace budget per
second keeps to EspConnection.rate_per_second. Run it outside a transaction (the Celery
task does): the hand-off mark must commit before the request is complete.

Errors. Transient (HTTP 429/5xx, connection errors, a request that did not get out
whole): back to queued with exponential backoff, failed after MAX_ATTEMPTS. Permanent
(other 4xx, a refused recipient): failed with the ESP's reason. Authentication (401/403,
an SMTP log-in refused, credentials that cannot be read): the connection is marked
failing with the reason, the workspace's rows go back to queued untouched, and no worker
claims from that workspace until an admin fixes the connection (no crash loop).

Reconciling. A worker killed mid-batch leaves rows in `sending`. `reconcile_stuck()` puts
back the ones never handed off (`esp` empty: the ESP cannot have them). A row handed off
but not recorded may or may not have reached the ESP: when the ESP honours an idempotency
key (PROVIDERS[...].idempotency) it is sent again and the ESP drops the duplicate;
otherwise it is marked `sent` with failure_reason UNCONFIRMED, because a missed email is
better than a duplicate. For the batch API the guess is made exact in practice: the
request goes out except its last byte, the mark's COMMIT is written to PostgreSQL, then
the last byte (`post_marked`): an ESP does not act on an incomplete request, so the mark
and the ESP disagree only if the worker dies between two socket writes. Calls through
Anymail's own send (one message per call) are marked just before the call, so there the
window is the call itself. In the batch path, no answer after the whole request went out
(a read timeout, a dropped connection) also counts as sent, unconfirmed; through Anymail a
timeout is retried like any transient error.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import queue
import random
import re
import select
import smtplib
import ssl
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
)
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, transaction
from django.db import connection as db
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import (
    ConnectionStatus,
    EmailTemplate,
    EspConnection,
    Message,
    MessageStatus,
    SendingPolicy,
    TemplatePurpose,
)
from campaigns.rendering.compile import CompiledEmail, RenderFailed, TemplateInvalid
from campaigns.rendering.context import contact_data, render_context
from campaigns.services import brand_of, compile_template
from contacts.models import Contact, Source
from contacts.segments.rules import EMAIL_RECEIVED
from contacts.services import EventInput, record_events
from workspaces.mail import workspace_sender
from workspaces.models import Workspace

from . import esp, links, policies

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_FIRST = 30.0  # seconds; doubles per attempt
BACKOFF_MAX = 3600.0
# A batch that has to wait this long for its workspace's send rate gives the rest back.
MAX_BATCH_SECONDS = 60.0
STUCK_AFTER = dt.timedelta(minutes=10)
UNCONFIRMED = "unconfirmed: worker stopped during hand-off"
REASON_MAX = 2000

SENT, PERMANENT, TRANSIENT, AUTH = "sent", "permanent", "transient", "auth"
# Marks a chunk handed off; returns the function that waits until the mark committed.
Mark = Callable[[], Callable[[], None]]


# --- claiming ---------------------------------------------------------------------------


def _due(now: dt.datetime) -> tuple[Any, Any, Any]:
    """Due rows in three index-ordered sets: transactional email first (a receipt does not
    wait behind a big campaign; its own partial index), then retries and deferrals whose
    time has come, oldest first, then fresh rows in id order (the partial index on
    (not_before, id) of queued rows serves both). Workspaces whose connection is paused or
    failing are left out."""
    held = EspConnection.all_workspaces.filter(
        Q(paused_at__isnull=False) | Q(status=ConnectionStatus.FAILING)
    ).values("workspace_id")
    queued = Message.all_workspaces.filter(status=MessageStatus.QUEUED).exclude(
        workspace_id__in=held
    )
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    transactional = Q(purpose=TemplatePurpose.TRANSACTIONAL)
    marketing = queued.exclude(transactional)
    return (
        queued.filter(transactional, due).order_by("id"),
        marketing.filter(not_before__lte=now).order_by("not_before", "id"),
        marketing.filter(not_before__isnull=True).order_by("not_before", "id"),
    )


def claim(limit: int | None = None, worker_token: str | None = None) -> list[Message]:
    """Claim up to `limit` due messages for this worker (status sending, claim token,
    attempts + 1) and return them with what delivery needs loaded."""
    limit = limit or settings.MAILPATH_SEND_BATCH_SIZE
    token = worker_token or uuid.uuid4().hex
    now = timezone.now()
    ids: list[int] = []
    with transaction.atomic():
        for due in _due(now):
            if db.vendor == "postgresql":
                due = due.select_for_update(skip_locked=True, of=("self",))
            ids += due.values_list("id", flat=True)[: limit - len(ids)]
            if len(ids) >= limit:
                break
        if not ids:
            return []
        Message.all_workspaces.filter(id__in=ids, status=MessageStatus.QUEUED).update(
            status=MessageStatus.SENDING,
            claimed_at=now,
            claim_token=token,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    messages = list(
        Message.all_workspaces.filter(id__in=ids, status=MessageStatus.SENDING, claim_token=token)
        .select_related("contact", "contact__lifecycle_stage", "contact__persona")
        .order_by("id")
    )
    _attach(messages)
    return messages


def _attach(messages: list[Message]) -> None:
    """Load each workspace and template once for the batch, not once per row."""
    workspaces = Workspace.objects.in_bulk({m.workspace_id for m in messages})
    templates: dict[int, EmailTemplate] = {}
    for workspace_id, workspace in workspaces.items():
        wanted = {m.template_id for m in messages if m.workspace_id == workspace_id}
        templates.update(EmailTemplate.objects.for_workspace(workspace).in_bulk(wanted - {None}))
    for message in messages:
        message.workspace = workspaces[message.workspace_id]
        message.template = templates.get(message.template_id)


# --- the outcome of each message --------------------------------------------------------


@dataclass
class Result:
    """What happened to one message at the ESP."""

    kind: str  # SENT, PERMANENT, TRANSIENT or AUTH
    esp_message_id: str = ""
    reason: str = ""


def backoff(attempts: int) -> dt.timedelta:
    seconds = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))


class Rows:
    """Writes the outcome of claimed rows, only while this worker still holds them."""

    def __init__(self, workspace: Workspace, tokens: set[str]) -> None:
        self.workspace = workspace
        self.tokens = sorted(tokens)

    def held(self, ids: Sequence[int]) -> Any:
        return Message.objects.for_workspace(self.workspace).filter(
            id__in=ids, status=MessageStatus.SENDING, claim_token__in=self.tokens
        )

    def finish(self, messages: Sequence[Message], status: str, reason: str = "") -> int:
        if not messages:
            return 0
        return self.held([m.pk for m in messages]).update(
            status=status, failure_reason=reason[:REASON_MAX], updated_at=timezone.now()
        )

    def requeue(
        self,
        messages: Sequence[Message],
        not_before: dt.datetime | None = None,
        reason: str = "",
        attempt: bool = False,
    ) -> int:
        """Back to queued. `attempt` False: this claim does not count as an attempt (a
        deferral, a paused connection), so attempts go back down."""
        if not messages:
            return 0
        fields: dict[str, Any] = {
            "status": MessageStatus.QUEUED,
            "not_before": not_before,
            "claimed_at": None,
            "esp": "",
            "updated_at": timezone.now(),
        }
        if reason:
            fields["failure_reason"] = reason[:REASON_MAX]
        if not attempt:
            fields["attempts"] = F("attempts") - 1
        return self.held([m.pk for m in messages]).update(**fields)

    def retry(self, failures: Sequence[tuple[Message, str]], now: dt.datetime) -> Counter:
        """Transient failures: retry later with backoff (one jittered time per attempt
        count), or fail for good after MAX_ATTEMPTS."""
        counts: Counter = Counter()
        later: dict[tuple[int, str], list[Message]] = defaultdict(list)
        for message, reason in failures:
            later[(message.attempts, reason)].append(message)
        for (attempts, reason), group in later.items():
            if attempts >= MAX_ATTEMPTS:
                counts["failed"] += self.finish(
                    group, MessageStatus.FAILED, f"gave up after {attempts} attempts: {reason}"
                )
            else:
                counts["retried"] += self.requeue(
                    group, now + backoff(attempts), reason=reason, attempt=True
                )
        return counts

    def fail(self, failures: Sequence[tuple[Message, str]]) -> int:
        by_reason: dict[str, list[Message]] = defaultdict(list)
        for message, reason in failures:
            by_reason[reason].append(message)
        return sum(
            self.finish(group, MessageStatus.FAILED, reason) for reason, group in by_reason.items()
        )

    def handed_off(self, messages: Sequence[Message], provider_key: str) -> None:
        self.held([m.pk for m in messages]).update(esp=provider_key)

    def begin_hand_off(self, messages: Sequence[Message], provider_key: str) -> Callable[[], None]:
        """Mark the rows handed off so that, when this returns, the COMMIT is already on
        its way to PostgreSQL (it commits even if this process dies now); returns the
        function that waits for the COMMIT's answer. The UPDATE runs in an open
        transaction first, so a worker killed before the COMMIT leaves no mark: the only
        moment where the mark and the ESP can disagree is between writing COMMIT and
        writing the request's last byte. Inside an atomic block (tests) or on SQLite it is
        a plain update."""
        if db.vendor != "postgresql" or db.in_atomic_block:
            self.handed_off(messages, provider_key)
            return lambda: None
        with db.cursor() as cursor:
            cursor.execute("BEGIN")
            try:
                self.handed_off(messages, provider_key)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        from psycopg.pq import ExecStatus

        pgconn = db.connection.pgconn
        pgconn.send_query(b"COMMIT")
        while pgconn.flush():
            select.select([], [pgconn.socket], [], 1.0)

        def committed() -> None:
            while True:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
                select.select([pgconn.socket], [], [], 1.0)
            failed = []
            while (result := pgconn.get_result()) is not None:
                if result.status != ExecStatus.COMMAND_OK:
                    failed.append(result.error_message.decode(errors="replace"))
            if failed:
                raise DatabaseError(f"the hand-off mark did not commit: {failed[0]}")

        return committed

    def sent(
        self, sent: Sequence[tuple[Outgoing, Result]], provider_key: str, now: dt.datetime
    ) -> int:
        if not sent:
            return 0
        if db.vendor == "postgresql":
            return self._sent_postgresql(sent, provider_key, now)
        done = 0
        for outgoing, result in sent:
            done += self.held([outgoing.message.pk]).update(
                status=MessageStatus.SENT,
                esp=provider_key,
                esp_message_id=result.esp_message_id[:200],
                subject=outgoing.subject[:255],
                sent_at=now,
                failure_reason=result.reason[:REASON_MAX],
                updated_at=now,
            )
        return done

    def _sent_postgresql(
        self, sent: Sequence[tuple[Outgoing, Result]], provider_key: str, now: dt.datetime
    ) -> int:
        table = Message._meta.db_table
        with db.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS m
                SET status = %s, esp = %s, esp_message_id = v.esp_id, subject = v.subject,
                    failure_reason = v.reason, sent_at = %s, updated_at = %s
                FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])
                    AS v(id, esp_id, subject, reason)
                WHERE m.id = v.id AND m.workspace_id = %s AND m.status = %s
                    AND m.claim_token = ANY(%s)
                """,
                [
                    MessageStatus.SENT,
                    provider_key,
                    now,
                    now,
                    [o.message.pk for o, _ in sent],
                    [r.esp_message_id[:200] for _, r in sent],
                    [o.subject[:255] for o, _ in sent],
                    [r.reason[:REASON_MAX] for _, r in sent],
                    self.workspace.pk,
                    MessageStatus.SENDING,
                    self.tokens,
                ],
            )
            return cursor.rowcount


def received_events(messages: Sequence[Message], at: dt.datetime) -> list[EventInput]:
    """The contact events `email_received` for messages handed to the ESP; the event's
    message id makes recording it twice harmless."""
    return [
        EventInput(
            name=EMAIL_RECEIVED,
            occurred_at=at,
            contact_id=m.contact_id,
            properties={**links.scope_properties(m), "message_id": str(m.public_id)},
            message_id=links.received_event_key(m),
            source=Source.SYSTEM,
        )
        for m in messages
        if m.contact_id
    ]


# --- personalising ----------------------------------------------------------------------


@dataclass
class Outgoing:
    """One message, personalised and ready for the ESP."""

    message: Message
    email: EmailMultiAlternatives
    subject: str
    request: Any = None  # the provider's prepared request body, when batched


def _tags_by_contact(contact_ids: set[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = defaultdict(list)
    if contact_ids:
        through = Contact.tags.through.objects.filter(contact_id__in=contact_ids)
        for contact_id, name in through.values_list("contact_id", "tag__name").order_by(
            "tag__name"
        ):
            tags[contact_id].append(name)
    return tags


class Personaliser:
    """Compiles each template once per batch and personalises messages with it."""

    def __init__(self, workspace: Workspace, policy: SendingPolicy, now: dt.datetime) -> None:
        self.workspace = workspace
        self.policy = policy
        brand = brand_of(workspace)
        self.brand = brand
        self.base = render_context(
            contact={},
            brand=brand,
            workspace={"name": workspace.name, "timezone": workspace.timezone},
            now=now,
        )
        self.sender = workspace_sender(workspace)
        self.compiled: dict[int, CompiledEmail | str] = {}
        self.tags: dict[int, list[str]] = {}
        self.metadata_base = {"workspace_id": str(workspace.public_id)}

    def compiled_for(self, template: EmailTemplate) -> CompiledEmail | str:
        """The compiled template, or why it cannot be compiled."""
        if template.pk not in self.compiled:
            try:
                self.compiled[template.pk] = compile_template(template, self.brand)
            except TemplateInvalid as invalid:
                self.compiled[template.pk] = f"the template does not compile: {invalid}"
        return self.compiled[template.pk]

    def context(self, message: Message) -> dict:
        contact = message.contact
        if contact is None:
            data = contact_data(SimpleNamespace(email=message.to_email))
        else:
            data = contact_data(contact, self.tags.get(contact.pk, []))
        event = message.context or {}
        return {
            **self.base,
            "contact": data,
            "event": {
                "name": event.get("name", ""),
                "properties": event.get("properties") or {},
                "occurred_at": event.get("occurred_at", ""),
            },
            **links.link_context(message),
        }

    def build(self, message: Message) -> Outgoing:
        """Raises RenderFailed with the reason the message cannot be sent."""
        if message.template is None:
            raise RenderFailed("the template was deleted")
        compiled = self.compiled_for(message.template)
        if isinstance(compiled, str):
            raise RenderFailed(compiled)
        rendered = compiled.personalise(self.context(message))
        html = links.track_html(rendered.html, message, self.policy)
        email = EmailMultiAlternatives(
            subject=rendered.subject,
            body=rendered.text,
            from_email=self.sender,
            to=[message.to_email],
            headers=links.list_unsubscribe_headers(message),
        )
        email.attach_alternative(html, "text/html")
        email.metadata = {**self.metadata_base, "message_id": str(message.public_id)}
        return Outgoing(message=message, email=email, subject=rendered.subject)


# --- talking to the ESP -----------------------------------------------------------------


def _status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    if status is None:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def describe(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # Anymail's __str__ reads a response that may be missing
        text = ""
    name = type(error).__name__
    status = _status_of(error)
    head = f"{name} (HTTP {status})" if status else name
    return f"{head}: {text}"[:REASON_MAX] if text else head


def classify(error: BaseException) -> Result:
    """Sort an error from an ESP call into permanent, transient or authentication."""
    reason = describe(error)
    if isinstance(error, AnymailRecipientsRefused | AnymailInvalidAddress):
        return Result(PERMANENT, reason=f"the ESP refused the recipient: {reason}")
    if isinstance(error, smtplib.SMTPAuthenticationError | ImproperlyConfigured):
        return Result(AUTH, reason=reason)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return Result(PERMANENT, reason=f"the server refused the recipient: {reason}")
    if isinstance(error, smtplib.SMTPResponseException):
        return Result(PERMANENT if error.smtp_code >= 500 else TRANSIENT, reason=reason)
    status = _status_of(error)
    if status in (401, 403):
        return Result(AUTH, reason=reason)
    if status is not None:
        if status == 429 or status >= 500:
            return Result(TRANSIENT, reason=reason)
        if 400 <= status < 500:
            return Result(PERMANENT, reason=reason)
    if isinstance(error, AnymailAPIError | requests.RequestException | OSError):
        return Result(TRANSIENT, reason=reason)  # no answer: network trouble, a timeout
    if isinstance(error, AnymailError):
        return Result(PERMANENT, reason=reason)
    return Result(TRANSIENT, reason=reason)


PER_MESSAGE = frozenset({"To", "Subject", "Headers", "TextBody", "HtmlBody", "Metadata"})
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9.\-]+")


class PostmarkBatch:
    """Postmark's /email/batch: up to 500 distinct messages per call. Each message's JSON
    is built by Anymail's own Postmark payload class, so headers, metadata and streams are
    exactly what Anymail would send one by one."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def prepare(self, outgoing: Sequence[Outgoing]) -> bytes:
        """The JSON body of one batch call. Anymail builds the payload of the first
        message; the others share its From, stream and options and differ only in the
        per-message fields, filled in the same shapes Anymail uses (tests compare the
        two). Anything unusual (an address that needs encoding, SEND_DEFAULTS) goes
        through Anymail's payload class message by message."""
        backend = self.connection
        self.token = backend.server_token
        shared: dict | None = None
        items = []
        for o in outgoing:
            if shared is None or not self._plain(o):
                payload = backend.build_message_payload(o.email, backend.send_defaults)
                self.token = payload.server_token
                items.append(payload.data)
                if shared is None and self._plain(o):
                    shared = {k: v for k, v in payload.data.items() if k not in PER_MESSAGE}
                continue
            email = o.email
            data = {
                **shared,
                "To": email.to[0],
                "Subject": email.subject,
                "Headers": [{"Name": k, "Value": v} for k, v in email.extra_headers.items()],
                "TextBody": email.body,
                "HtmlBody": email.alternatives[0][0],
                "Metadata": email.metadata,
            }
            if not email.extra_headers:
                del data["Headers"]
            items.append(data)
        return json.dumps(items).encode()

    def _plain(self, outgoing: Outgoing) -> bool:
        email = outgoing.email
        return (
            not self.connection.send_defaults
            and len(email.to) == 1
            and PLAIN_ADDRESS.fullmatch(email.to[0]) is not None
            and len(email.alternatives) == 1
            and not email.cc
            and not email.bcc
            and not email.reply_to
            and not email.attachments
        )

    def send(self, body: bytes, count: int, mark: Mark) -> list[Result]:
        backend = self.connection
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Postmark-Server-Token": self.token,
            "User-Agent": "Mailpath",
        }
        try:
            status, raw = post_marked(
                urljoin(backend.api_url, "email/batch"), body, headers, mark, backend.timeout
            )
        except NotDelivered as error:
            return [Result(TRANSIENT, reason=f"the ESP could not be reached: {error}")] * count
        except NoAnswer as error:
            # the whole request reached the ESP: it may have sent them; never send twice
            return [Result(SENT, reason=f"unconfirmed: no answer from the ESP ({error})")] * count
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if status != 200:
            reason = f"Postmark HTTP {status}: {_postmark_message(answer)}"
            error_code = answer.get("ErrorCode") if isinstance(answer, dict) else None
            if status in (401, 403) or error_code == 10:  # 10: bad or missing token
                return [Result(AUTH, reason=reason)] * count
            if status == 429 or status >= 500:
                return [Result(TRANSIENT, reason=reason)] * count
            return [Result(PERMANENT, reason=reason)] * count
        if not isinstance(answer, list) or len(answer) != count:
            # accepted, but we cannot tell which went: count them sent, never send twice
            reason = "unconfirmed: the ESP's answer could not be read"
            return [Result(SENT, reason=reason)] * count
        return [_postmark_result(item) for item in answer]


class NotDelivered(Exception):
    """The request did not reach the ESP whole: it cannot have acted on it."""


class NoAnswer(Exception):
    """The whole request went out but no answer came back: the ESP may have acted on it."""


def post_marked(
    url: str, body: bytes, headers: dict[str, str], mark: Mark, timeout: float
) -> tuple[int, bytes]:
    """POST `body` on a fresh connection, holding back its last byte until `mark()` has
    put the hand-off's COMMIT on the wire. An ESP acts only on a complete request, so a
    worker killed before that leaves a request the ESP drops and no mark; killed after
    the last byte, it leaves rows marked handed off. The mark and the ESP disagree only
    if the worker dies between those two writes."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        try:
            conn.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Connection", "close")
            conn.endheaders()
            conn.send(body[:-1])
        except (OSError, http.client.HTTPException) as error:
            raise NotDelivered(describe(error)) from error
        committed = mark()
        try:
            conn.send(body[-1:])
        except (OSError, http.client.HTTPException) as error:
            raise NotDelivered(describe(error)) from error
        finally:
            committed()
        try:
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            raise NoAnswer(describe(error)) from error
    finally:
        conn.close()


def _postmark_message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("Message", ""))
    return ""


def _postmark_result(item: Any) -> Result:
    if not isinstance(item, dict):
        return Result(SENT, reason="unconfirmed: the ESP's answer could not be read")
    code = item.get("ErrorCode", 0)
    if code == 0:
        return Result(SENT, esp_message_id=str(item.get("MessageID", "")))
    message = f"Postmark error {code}: {item.get('Message', '')}"
    if code == 406:
        return Result(PERMANENT, reason=f"the ESP refused the recipient (inactive): {message}")
    if code == 10:
        return Result(AUTH, reason=message)
    return Result(PERMANENT, reason=message)


BATCH_SENDERS: dict[str, Callable[[Any], PostmarkBatch]] = {"postmark": PostmarkBatch}


def send_one(connection: Any, outgoing: Outgoing, idempotent: bool) -> Result:
    """One message through a Django email connection (Anymail, SMTP, the sandbox)."""
    email = outgoing.email
    email.connection = connection
    try:
        if idempotent and hasattr(connection, "post_to_esp"):
            _send_idempotent(connection, outgoing)
        elif not connection.send_messages([email]):
            return Result(PERMANENT, reason="the ESP accepted no message")
    except Exception as error:  # sorted by classify(); anything unknown is retried
        return classify(error)
    status = getattr(email, "anymail_status", None)
    message_id = getattr(status, "message_id", None) if status else None
    return Result(SENT, esp_message_id="" if message_id is None else str(message_id))


def _send_idempotent(connection: Any, outgoing: Outgoing) -> None:
    """Anymail's send, with an Idempotency-Key header the ESP keeps for a day: a retry of
    a message that did reach it is dropped there."""
    from anymail.message import AnymailStatus

    email = outgoing.email
    email.anymail_status = AnymailStatus()
    payload = connection.build_message_payload(email, connection.send_defaults)
    payload.headers = {
        **(payload.headers or {}),
        "Idempotency-Key": str(outgoing.message.public_id),
    }
    response = connection.post_to_esp(payload, email)
    email.anymail_status.esp_response = response
    status = connection.parse_recipient_status(response, payload, email)
    email.anymail_status.set_recipient_status(status)
    connection.raise_for_recipient_status(email.anymail_status, response, payload, email)


# --- the per-workspace send rate --------------------------------------------------------


def take_tokens(workspace_id: int, rate: int, wanted: int) -> int:
    """How many of `wanted` messages the workspace may send in this second. A fixed
    one-second window counted in the cache: shared by all workers when CACHE_URL is Redis,
    per worker process with the local-memory cache. rate 0 means no limit."""
    if rate <= 0:
        return wanted
    window = int(time.time())
    key = f"mailpath:send-rate:{workspace_id}:{window}"
    cache.add(key, 0, timeout=5)
    try:
        used = cache.incr(key, wanted)
    except ValueError:  # the key expired between add and incr
        cache.set(key, wanted, timeout=5)
        used = wanted
    return max(0, min(wanted, rate - (used - wanted)))


# --- delivering -------------------------------------------------------------------------


@dataclass
class WorkspaceBatch:
    workspace: Workspace
    messages: list[Message]
    rows: Rows
    report: Counter
    handed: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)

    def left(self) -> list[Message]:
        return [m for m in self.messages if m.pk not in self.done]


def deliver(messages: Sequence[Message]) -> Counter:
    """Deliver claimed messages (from `claim`); returns counts by outcome."""
    report: Counter = Counter()
    groups: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        groups[message.workspace_id].append(message)
    for group in groups.values():
        workspace = group[0].workspace
        batch = WorkspaceBatch(
            workspace, group, Rows(workspace, {m.claim_token for m in group}), report
        )
        try:
            _deliver_workspace(batch)
        except Exception:
            # A bug or a database error: rows nobody handed off are retried later; rows
            # handed off stay in `sending` for reconcile_stuck, which knows what to do.
            log.exception("delivery failed for workspace %s", workspace.pk)
            unsent = [m for m in batch.left() if m.pk not in batch.handed]
            report.update(batch.rows.retry([(m, "delivery error") for m in unsent], timezone.now()))
    return +report


def _deliver_workspace(batch: WorkspaceBatch) -> None:
    workspace, rows, report = batch.workspace, batch.rows, batch.report
    hold = esp.sending_hold(workspace)
    if hold:
        report["held"] += rows.requeue(batch.messages)
        batch.done.update(m.pk for m in batch.messages)
        return
    now = timezone.now()
    policy = policies.policy_for(workspace)
    facts = policies.load_facts(workspace, batch.messages, policy, now)
    personaliser = Personaliser(workspace, policy, now)
    personaliser.tags = _tags_by_contact({m.contact_id for m in batch.messages if m.contact_id})

    ready: list[Outgoing] = []
    blocked: dict[tuple[str, str], list[Message]] = defaultdict(list)
    deferred: dict[dt.datetime, list[Message]] = defaultdict(list)
    for message in batch.messages:
        contact = message.contact
        reason = policies.blocked_reason(message, contact, policy, now, facts)
        if reason and reason[0] == MessageStatus.SUPPRESSED:
            blocked[reason].append(message)
            continue
        until = policies.defer_until(message, contact, policy, now, workspace.timezone)
        if until is not None:
            deferred[until].append(message)
            continue
        if reason:
            blocked[reason].append(message)
            continue
        try:
            ready.append(personaliser.build(message))
        except RenderFailed as failed:
            blocked[(MessageStatus.FAILED, f"personalisation failed: {failed}")].append(message)
            continue
        policies.note_sent(facts, message)

    with transaction.atomic():
        for (status, reason), group in blocked.items():
            report[status] += rows.finish(group, status, reason)
        for until, group in deferred.items():
            report["deferred"] += rows.requeue(group, until, reason="deferred: quiet hours")
    for group in (*blocked.values(), *deferred.values()):
        batch.done.update(m.pk for m in group)
    if ready:
        _hand_off(batch, ready)


def _refuse_all(batch: WorkspaceBatch, ready: list[Outgoing], key: str, result: Result) -> None:
    """Record one outcome for every message without calling the ESP."""
    _deliver_chunk(batch, ready, key, lambda mark: [result] * len(ready))


def _hand_off(batch: WorkspaceBatch, ready: list[Outgoing]) -> None:
    workspace = batch.workspace
    try:
        connection, provider_key = esp.connection_for(workspace)
    except Exception as error:  # unreadable credentials, a bad option: the admin must fix it
        refused = Result(AUTH, reason=f"the connection cannot be set up: {describe(error)}")
        _refuse_all(batch, ready, esp.current_connection(workspace).provider, refused)
        return
    provider = esp.PROVIDERS.get(provider_key)
    rate = esp.current_connection(workspace).rate_per_second
    batch_sender = BATCH_SENDERS.get(provider_key)
    if (
        settings.MAILPATH_ESP_BATCH_API
        and batch_sender is not None
        and provider is not None
        and provider.batch_limit > 1
        and hasattr(connection, "build_message_payload")
    ):
        _send_batches(batch, ready, batch_sender(connection), provider, rate)
    else:
        idempotent = bool(provider and provider.idempotency)
        _send_each(batch, ready, provider_key, idempotent, rate)


def _rate_limited(
    batch: WorkspaceBatch, pending: Sequence[Outgoing], size: int, rate: int, deadline: float
) -> int:
    """How many of `pending` may go now (waiting for the next second if none may); 0 when
    the batch has waited long enough and the rest went back to the queue."""
    while True:
        granted = take_tokens(batch.workspace.pk, rate, min(size, len(pending)))
        if granted:
            return granted
        if time.monotonic() >= deadline:
            messages = [o.message for o in pending]
            batch.report["rate_limited"] += batch.rows.requeue(
                messages, timezone.now() + dt.timedelta(seconds=1)
            )
            batch.done.update(m.pk for m in messages)
            return 0
        time.sleep(max(0.01, 1 - (time.time() % 1)))


def _send_batches(
    batch: WorkspaceBatch,
    ready: list[Outgoing],
    sender: PostmarkBatch,
    provider: esp.Provider,
    rate: int,
) -> None:
    deadline = time.monotonic() + MAX_BATCH_SECONDS
    position = 0
    while position < len(ready):
        granted = _rate_limited(batch, ready[position:], provider.batch_limit, rate, deadline)
        if not granted:
            return
        chunk = ready[position : position + granted]
        position += granted
        body = sender.prepare(chunk)  # everything is built before the hand-off

        def call(mark: Mark, body: bytes = body, n: int = len(chunk)) -> list[Result]:
            return sender.send(body, n, mark)

        if not _deliver_chunk(batch, chunk, provider.key, call):
            return


def _send_each(
    batch: WorkspaceBatch, ready: list[Outgoing], provider_key: str, idempotent: bool, rate: int
) -> None:
    """One call per message; several in flight (one connection per thread) for HTTP ESPs,
    in this thread for the sandbox (it writes to this database)."""
    threads = 1 if provider_key == "sandbox" else max(1, settings.MAILPATH_SEND_THREADS)
    threads = min(threads, len(ready))
    connections: queue.SimpleQueue = queue.SimpleQueue()
    opened = []
    try:
        for _ in range(threads):
            connection, _key = esp.connection_for(batch.workspace)
            opened.append(connection)
            connection.open()
            connections.put(connection)
    except Exception as error:  # a server that refuses the log-in or cannot be reached
        for connection in opened:
            connection.close()
        _refuse_all(batch, ready, provider_key, classify(error))
        return

    def one(outgoing: Outgoing) -> Result:
        connection = connections.get()
        try:
            return send_one(connection, outgoing, idempotent)
        finally:
            connections.put(connection)

    deadline = time.monotonic() + MAX_BATCH_SECONDS
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        position = 0
        while position < len(ready):
            granted = _rate_limited(batch, ready[position:], threads * 4, rate, deadline)
            if not granted:
                return
            chunk = ready[position : position + granted]
            position += granted

            def call(mark: Mark, chunk: Sequence[Outgoing] = chunk) -> list[Result]:
                mark()()  # Anymail sends in one go: the whole call is the window
                if pool is None:
                    return [one(o) for o in chunk]
                return list(pool.map(one, chunk))

            if not _deliver_chunk(batch, chunk, provider_key, call):
                return
    finally:
        if pool is not None:
            pool.shutdown()
        for connection in opened:
            connection.close()


def _deliver_chunk(
    batch: WorkspaceBatch,
    chunk: Sequence[Outgoing],
    provider_key: str,
    call: Callable[[Mark], list[Result]],
) -> bool:
    """Call the ESP, which marks the chunk handed off at the last moment before the
    request is complete, then record the outcome. False when the ESP refused the
    workspace's credentials: the batch stops."""
    messages = [o.message for o in chunk]

    def mark() -> Callable[[], None]:
        batch.handed.update(m.pk for m in messages)
        return batch.rows.begin_hand_off(messages, provider_key)

    results = call(mark)
    now = timezone.now()
    pairs = list(zip(chunk, results, strict=True))
    sent = [(o, r) for o, r in pairs if r.kind == SENT]
    permanent = [(o.message, r.reason) for o, r in pairs if r.kind == PERMANENT]
    transient = [(o.message, r.reason) for o, r in pairs if r.kind == TRANSIENT]
    auth = [(o.message, r.reason) for o, r in pairs if r.kind == AUTH]
    report, rows = batch.report, batch.rows
    with transaction.atomic():
        report["sent"] += rows.sent(sent, provider_key, now)
        report["failed"] += rows.fail(permanent)
        report.update(rows.retry(transient, now))
        if auth:
            report["held"] += rows.requeue([m for m, _ in auth], reason=auth[0][1])
        events = received_events([o.message for o, _ in sent], now)
        if events:
            record_events(workspace=batch.workspace, events=events, now=now)
    batch.done.update(m.pk for m in messages)
    if auth:
        reason = f"The ESP refused the credentials: {auth[0][1]}"
        esp.mark_failing(batch.workspace, reason)
        rest = [m for m in batch.left() if m.pk not in batch.done]
        report["held"] += rows.requeue(rest)
        batch.done.update(m.pk for m in rest)
        log.warning("workspace %s: sending stopped: %s", batch.workspace.pk, reason)
        return False
    return True


# --- the worker loop and reconciliation -------------------------------------------------


def deliver_queued(time_budget: float = 50.0, batch_size: int | None = None) -> Counter:
    """Claim and deliver batches until none is due or `time_budget` seconds have passed.
    The report's "more" is 1 when it stopped on the budget with work left."""
    report: Counter = Counter()
    started = time.monotonic()
    token = uuid.uuid4().hex
    while True:
        messages = claim(batch_size, worker_token=token)
        if not messages:
            return +report
        report["claimed"] += len(messages)
        report.update(deliver(messages))
        if time.monotonic() - started >= time_budget:
            report["more"] = 1
            return +report


def reconcile_stuck(older_than: dt.timedelta = STUCK_AFTER) -> Counter:
    """Settle rows left in `sending` by a worker that died (see the module docstring)."""
    report: Counter = Counter()
    cutoff = timezone.now() - older_than
    stuck = Message.all_workspaces.filter(status=MessageStatus.SENDING, claimed_at__lt=cutoff)
    idempotent = [key for key, p in esp.PROVIDERS.items() if p.idempotency]
    again = stuck.filter(Q(esp="") | Q(esp__in=idempotent))
    now = timezone.now()
    with transaction.atomic():
        report["failed"] += again.filter(attempts__gte=MAX_ATTEMPTS).update(
            status=MessageStatus.FAILED,
            failure_reason=f"gave up after {MAX_ATTEMPTS} attempts: the worker stopped",
            updated_at=now,
        )
        report["requeued"] += again.update(
            status=MessageStatus.QUEUED, claimed_at=None, esp="", not_before=None, updated_at=now
        )
        in_doubt = list(
            stuck.exclude(esp="")
            .select_related("workspace")
            .only("id", "public_id", "workspace", "contact_id", "source", "source_id", "claimed_at")
        )
        by_workspace: dict[int, list[Message]] = defaultdict(list)
        for message in in_doubt:
            by_workspace[message.workspace_id].append(message)
        for group in by_workspace.values():
            workspace = group[0].workspace
            done = (
                Message.objects.for_workspace(workspace)
                .filter(id__in=[m.pk for m in group], status=MessageStatus.SENDING)
                .update(
                    status=MessageStatus.SENT,
                    sent_at=now,
                    failure_reason=UNCONFIRMED,
                    updated_at=now,
                )
            )
            report["unconfirmed"] += done
            events = received_events(group, now)
            if events:
                record_events(workspace=workspace, events=events, now=now)
    if report["requeued"]:
        from .outbox import kick_delivery

        transaction.on_commit(lambda: kick_delivery(report["requeued"]))
    return +report  # without the zeros

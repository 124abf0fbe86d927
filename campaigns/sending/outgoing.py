"""Outgoing webhooks: a workspace's own systems hear about contact and message events.

Emitting. `emit(workspace, event, payload, key)` writes one WebhookDelivery per active
endpoint subscribed to `event`, in bulk, ignoring conflicts on (endpoint, event_key): an
event announced twice is delivered once. Once the rows are committed a Celery task
delivers them; a beat task (`dispatch_due`, every minute) hands on deliveries whose retry
time has come and any whose task was lost.

Delivering. Each attempt POSTs JSON

    {"id": <delivery id>, "event": "message.opened", "created_at": "...Z",
     "workspace": <workspace public id>, "data": {...}}

with the headers X-Mailpath-Event, X-Mailpath-Delivery (the same id: receivers use it to
drop repeats, since a delivery may arrive more than once), X-Mailpath-Timestamp (Unix
seconds) and X-Mailpath-Signature: "t=<timestamp>,v1=<hex HMAC-SHA256 of
f"{timestamp}.{body}" under the endpoint's secret>". Requests go through
campaigns.sending.safe_http (public addresses only, no redirects) with a timeout of
WEBHOOKS_TIMEOUT_SECONDS. A 2xx answer is success. Anything else is retried after 1 min,
5 min, 30 min, 2 h, 6 h and 12 h, then the delivery has failed. The status and the first
2 KB of each answer are kept for the delivery log. After WEBHOOKS_DISABLE_AFTER_FAILURES
deliveries in a row have failed for good, the endpoint is disabled with the reason shown
in the UI; a success in between starts the count again.

A delivery is claimed before its attempt (a conditional UPDATE that moves next_attempt_at
past the attempt's lease), so the task and the sweep never send it at the same time; a
worker that dies mid-attempt leaves a claim that expires and is retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import (
    WEBHOOK_EVENTS,
    DeliveryStatus,
    Message,
    MessageEventKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from contacts.models import Contact, SubscriptionStatus
from workspaces.models import Workspace

from . import safe_http

logger = logging.getLogger(__name__)

PING = "ping"
RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=6),
    dt.timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
RESPONSE_KEEP = 2048
SECRET_PREFIX = "whsec_"
USER_AGENT = "Mailpath-Webhooks/1"
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between timestamp and now
TASK_CHUNK = 10  # deliveries per task: a slow endpoint holds one worker for at most this many
SWEEP_LIMIT = 2000
KEY_MAX = WebhookDelivery._meta.get_field("event_key").max_length
EVENT_LABELS = {
    "contact.subscribed": "Contact subscribed",
    "contact.unsubscribed": "Contact unsubscribed",
    "message.bounced": "Email bounced (hard bounce)",
    "message.complained": "Email marked as spam",
    "message.opened": "Email opened",
    "message.clicked": "Link clicked",
    "message.converted": "Conversion attributed to an email",
}
# Message events that become webhooks: MessageEventKind -> event name.
MESSAGE_EVENTS = {
    MessageEventKind.BOUNCED: "message.bounced",
    MessageEventKind.COMPLAINED: "message.complained",
    MessageEventKind.OPENED: "message.opened",
    MessageEventKind.CLICKED: "message.clicked",
}
SUBSCRIPTION_EVENTS = {
    SubscriptionStatus.SUBSCRIBED: "contact.subscribed",
    SubscriptionStatus.UNSUBSCRIBED: "contact.unsubscribed",
}
# A bulk import is not news to the systems that made the file (as with Mailchimp).
QUIET_METHODS = frozenset({"import"})
DETAILS_MAX = 4096


def timeout_seconds() -> float:
    return float(getattr(settings, "WEBHOOKS_TIMEOUT_SECONDS", 10))


def disable_after() -> int:
    return int(getattr(settings, "WEBHOOKS_DISABLE_AFTER_FAILURES", 20))


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=timeout_seconds() * 2 + 60)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _key(*parts: object) -> str:
    key = ":".join(str(part) for part in parts)
    if len(key) <= KEY_MAX:
        return key
    return f"{key[: KEY_MAX - 65]}#{hashlib.sha256(key.encode()).hexdigest()}"


# --- signatures ------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Mailpath-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """What a receiver does (docs/sending.md has the same in a few lines): the HMAC must
    match and the timestamp must be recent, so a captured request cannot be replayed."""
    fields: dict[str, list[str]] = defaultdict(list)
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields[name].append(value)
    try:
        timestamp = int(fields["t"][0])
    except (IndexError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in fields["v1"])


# --- endpoints -------------------------------------------------------------------------


def _clean(url: str, events: Sequence[str], description: str) -> tuple[str, list[str], str]:
    errors: dict[str, list[str]] = {}
    url = (url or "").strip()
    try:
        safe_http.check_url(url)
    except safe_http.UnsafeURL as exc:
        errors["url"] = [str(exc)]
    if len(url) > WebhookEndpoint._meta.get_field("url").max_length:
        errors["url"] = ["This URL is too long (500 characters at most)."]
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        errors["events"] = [f"Unknown event: {', '.join(unknown)}."]
    elif not events:
        errors["events"] = ["Choose at least one event."]
    description = (description or "").strip()
    if len(description) > 200:
        errors["description"] = ["Keep the description under 200 characters."]
    if errors:
        raise ValidationError(errors)
    return url, [e for e in WEBHOOK_EVENTS if e in set(events)], description


def create_endpoint(
    workspace: Workspace, *, url: str, events: Sequence[str], description: str = ""
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (shown to the person once, by the caller).
    ValidationError with field errors for a bad URL (the safe_http rules) or events."""
    url, events, description = _clean(url, events, description)
    return WebhookEndpoint.objects.for_workspace(workspace).create(
        workspace=workspace, url=url, events=events, description=description, secret=new_secret()
    )


def update_endpoint(
    endpoint: WebhookEndpoint,
    *,
    url: str,
    events: Sequence[str],
    description: str = "",
    active: bool = True,
) -> WebhookEndpoint:
    """Change an endpoint. Turning a disabled endpoint back on clears its failure count and
    the reason it was disabled; deliveries that waited go out with the next sweep."""
    url, events, description = _clean(url, events, description)
    endpoint.url, endpoint.events, endpoint.description = url, events, description
    if active and not endpoint.active:
        endpoint.consecutive_failures = 0
        endpoint.disabled_reason = ""
    endpoint.active = active
    endpoint.save()
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret, in force for the next request (the old one stops working at once)."""
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint.secret


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    endpoint.delete()  # its delivery log goes with it


# --- emitting --------------------------------------------------------------------------


def subscribed_endpoints(workspace: Workspace, event: str) -> list[int]:
    """Ids of the workspace's active endpoints that hear `event` (a handful per workspace;
    filtered here because SQLite has no JSON containment)."""
    rows = (
        WebhookEndpoint.objects.for_workspace(workspace)
        .filter(active=True)
        .values_list("pk", "events")
    )
    return [pk for pk, events in rows if event in (events or [])]


def emit(workspace: Workspace, event: str, payload: dict, key: str) -> int:
    """Announce one event; returns how many new deliveries it made."""
    return emit_many(workspace, event, [(key, payload)])


def emit_many(
    workspace: Workspace,
    event: str,
    items: Iterable[tuple[str, dict]],
    *,
    endpoint_ids: Sequence[int] | None = None,
) -> int:
    """Announce events of one kind, each (key, payload); a key seen before is skipped."""
    if event not in WEBHOOK_EVENTS and event != PING:
        raise ValueError(f"{event!r} is not a webhook event.")
    if endpoint_ids is None:
        endpoint_ids = subscribed_endpoints(workspace, event)
    if not endpoint_ids:
        return 0
    now = timezone.now()
    rows = [
        WebhookDelivery(
            workspace=workspace,
            public_id=uuid.uuid4(),
            endpoint_id=endpoint_id,
            event=event,
            event_key=_key(key),
            payload=_plain(payload),
            next_attempt_at=now,
        )
        for key, payload in items
        for endpoint_id in endpoint_ids
    ]
    if not rows:
        return 0
    with transaction.atomic():
        WebhookDelivery.objects.for_workspace(workspace).bulk_create(rows, ignore_conflicts=True)
        created = list(
            WebhookDelivery.objects.for_workspace(workspace)
            .filter(public_id__in=[row.public_id for row in rows])
            .values_list("pk", "endpoint_id")
        )
        if created:
            transaction.on_commit(lambda: hand_to_workers(workspace.pk, created))
    return len(created)


def _plain(payload: dict) -> dict:
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def hand_to_workers(workspace_id: int, deliveries: Sequence[tuple[int, int]]) -> None:
    """One task per endpoint and chunk of TASK_CHUNK deliveries, so a slow endpoint does
    not hold up the others. A lost task is made good by the minute sweep."""
    from campaigns.tasks import deliver_webhooks

    by_endpoint: dict[int, list[int]] = defaultdict(list)
    for pk, endpoint_id in deliveries:
        by_endpoint[endpoint_id].append(pk)
    for ids in by_endpoint.values():
        for start in range(0, len(ids), TASK_CHUNK):
            try:
                deliver_webhooks.delay(workspace_id, ids[start : start + TASK_CHUNK])
            except Exception:  # broker down: the sweep delivers them
                logger.exception("Could not queue webhook deliveries %s", ids)
                return


# --- the events ------------------------------------------------------------------------


def contact_data(contact: Contact) -> dict[str, Any]:
    return {
        "id": str(contact.public_id),
        "email": contact.email,
        "external_id": contact.external_id or None,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "status": contact.status,
    }


def message_data(message: Message) -> dict[str, Any]:
    template = message.template if message.template_id else None
    return {
        "id": str(message.public_id),
        "to": message.to_email,
        "subject": message.subject,
        "template": str(template.public_id) if template else None,
        "purpose": message.purpose,
        "source": message.source,
        "source_id": message.source_id or None,
        "status": message.status,
        "sent_at": _iso(message.sent_at),
    }


def _message_contact(message: Message) -> dict[str, Any] | None:
    contact = message.contact if message.contact_id else None
    return contact_data(contact) if contact else None


def emit_subscription_change(
    workspace: Workspace, *, contact_ids: Sequence[int], status: str, method: str, at: dt.datetime
) -> int:
    """contact.subscribed / contact.unsubscribed for contacts whose status just changed."""
    event = SUBSCRIPTION_EVENTS.get(status)
    if event is None or method in QUIET_METHODS:
        return 0
    endpoint_ids = subscribed_endpoints(workspace, event)
    if not endpoint_ids:
        return 0
    contacts = Contact.objects.for_workspace(workspace).filter(pk__in=list(contact_ids))
    items = [
        (
            _key(event, contact.public_id, at.timestamp()),
            {"contact": contact_data(contact), "method": method, "occurred_at": _iso(at)},
        )
        for contact in contacts.iterator(chunk_size=1000)
    ]
    return emit_many(workspace, event, items, endpoint_ids=endpoint_ids)


def emit_message_event(
    workspace: Workspace, *, message: Message, kind: str, event: Any = None
) -> int:
    """message.bounced / complained / opened / clicked for a MessageEvent just recorded.
    Machine opens and scanner clicks are sent too, with "machine": true."""
    name = MESSAGE_EVENTS.get(kind)
    if name is None:
        return 0
    endpoint_ids = subscribed_endpoints(workspace, name)
    if not endpoint_ids:
        return 0
    occurred = getattr(event, "occurred_at", None) or timezone.now()
    details = getattr(event, "data", None) or {}
    if len(json.dumps(details, cls=DjangoJSONEncoder)) > DETAILS_MAX:
        details = {}
    data = {
        "message": message_data(message),
        "contact": _message_contact(message),
        "event": {
            "id": str(event.public_id) if getattr(event, "public_id", None) else None,
            "kind": kind,
            "occurred_at": _iso(occurred),
            "machine": bool(getattr(event, "machine", False)),
            "url": getattr(event, "url", "") or None,
            "details": details,
        },
    }
    key = (
        _key(name, event.public_id)
        if getattr(event, "public_id", None)
        else _key(name, message.public_id)
    )
    return emit_many(workspace, name, [(key, data)], endpoint_ids=endpoint_ids)


def emit_conversion(
    workspace: Workspace,
    *,
    message: Message,
    conversion_id: str,
    name: str = "",
    value: Decimal | float | None = None,
    currency: str = "",
    occurred_at: dt.datetime | None = None,
    properties: dict | None = None,
) -> int:
    """message.converted: a conversion (an order, a signup...) credited to an email. For the
    analytics issue's attribution to call; `conversion_id` makes a repeat one delivery."""
    event = "message.converted"
    endpoint_ids = subscribed_endpoints(workspace, event)
    if not endpoint_ids:
        return 0
    data = {
        "message": message_data(message),
        "contact": _message_contact(message),
        "conversion": {
            "id": conversion_id,
            "name": name,
            "value": str(value) if value is not None else None,
            "currency": currency,
            "occurred_at": _iso(occurred_at or timezone.now()),
            "properties": properties or {},
        },
    }
    return emit_many(
        workspace,
        event,
        [(_key(event, message.public_id, conversion_id), data)],
        endpoint_ids=endpoint_ids,
    )


# --- signal receivers (connected in CampaignsConfig.ready) -----------------------------


def on_subscription_changed(
    sender: Any,
    *,
    workspace_id: int,
    contact_ids: Sequence[int],
    status: str,
    method: str = "",
    at: dt.datetime | None = None,
    **kwargs: Any,
) -> None:
    # Runs after the change committed: a failure here is logged, never the caller's 500.
    try:
        workspace = Workspace.objects.filter(pk=workspace_id).first()
        if workspace is not None:
            emit_subscription_change(
                workspace,
                contact_ids=contact_ids,
                status=status,
                method=method,
                at=at or timezone.now(),
            )
    except Exception:
        logger.exception("Webhooks for a subscription change in workspace %s", workspace_id)


def on_message_event(
    sender: Any,
    *,
    workspace: Workspace,
    message: Message,
    kind: str,
    event: Any = None,
    **kwargs: Any,
) -> None:
    try:
        emit_message_event(workspace, message=message, kind=kind, event=event)
    except Exception:
        logger.exception("Webhooks for a %s event of message %s", kind, message.pk)


# --- delivering ------------------------------------------------------------------------


def envelope(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(delivery.public_id),
        "event": delivery.event,
        "created_at": _iso(delivery.created_at),
        "workspace": str(delivery.workspace.public_id),
        "data": delivery.payload,
    }


def request_for(delivery: WebhookDelivery, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an attempt: the same body every time, signed anew."""
    body = json.dumps(envelope(delivery), separators=(",", ":"), cls=DjangoJSONEncoder).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Mailpath-Event": delivery.event,
        "X-Mailpath-Delivery": str(delivery.public_id),
        "X-Mailpath-Timestamp": str(timestamp),
        "X-Mailpath-Signature": sign(delivery.endpoint.secret, timestamp, body),
    }
    return body, headers


def _claim(
    workspace: Workspace, pk: int, now: dt.datetime, *, active_only: bool = True
) -> WebhookDelivery | None:
    """Take a due delivery for one attempt, or None if it is not due or someone has it."""
    due = WebhookDelivery.objects.for_workspace(workspace).filter(
        pk=pk,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
        next_attempt_at__lte=now,
    )
    if active_only:
        due = due.filter(endpoint__active=True)
    if not due.update(next_attempt_at=now + _lease()):
        return None
    return (
        WebhookDelivery.objects.for_workspace(workspace)
        .select_related("endpoint", "workspace")
        .get(pk=pk)
    )


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def attempt(
    delivery: WebhookDelivery, *, final: bool = False, manual: bool = False
) -> WebhookDelivery:
    """Send a claimed delivery once and record the outcome. `final`: no retry after a
    failure (pings). `manual`: a person's retry, whose failure is not counted again
    against the endpoint."""
    timestamp = int(time.time())
    body, headers = request_for(delivery, timestamp)
    status: int | None = None
    answer = b""
    try:
        reply = safe_http.post(
            delivery.endpoint.url,
            body=body,
            headers=headers,
            timeout=timeout_seconds(),
            keep=RESPONSE_KEEP,
        )
    except (safe_http.UnsafeURL, safe_http.RequestFailed) as exc:
        error = str(exc)
    else:
        status, answer = reply.status, reply.body
        error = "" if 200 <= status < 300 else _http_error(status)
    return _record(delivery, status=status, answer=answer, error=error, final=final, manual=manual)


def _http_error(status: int) -> str:
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed; use the final URL."
    return f"HTTP {status}: only a 2xx answer counts as delivered."


def _record(
    delivery: WebhookDelivery,
    *,
    status: int | None,
    answer: bytes,
    error: str,
    final: bool,
    manual: bool,
) -> WebhookDelivery:
    now = timezone.now()
    delivery.attempts += 1
    delivery.response_status = status
    delivery.response_body = _text(answer[:RESPONSE_KEEP])
    delivery.error = error
    counts = delivery.event != PING  # a test ping says nothing about the endpoint's health
    if not error:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif final or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = now + RETRY_DELAYS[delivery.attempts - 1]
    with transaction.atomic():
        delivery.save(
            update_fields=[
                "attempts",
                "response_status",
                "response_body",
                "error",
                "status",
                "delivered_at",
                "next_attempt_at",
                "updated_at",
            ]
        )
        if counts and delivery.status == DeliveryStatus.SUCCEEDED:
            _endpoints(delivery).filter(consecutive_failures__gt=0).update(consecutive_failures=0)
        elif counts and not manual and delivery.status == DeliveryStatus.FAILED:
            _count_failure(delivery, now)
    return delivery


def _endpoints(delivery: WebhookDelivery):  # type: ignore[no-untyped-def]
    return WebhookEndpoint.objects.for_workspace(delivery.workspace).filter(pk=delivery.endpoint_id)


def _count_failure(delivery: WebhookDelivery, now: dt.datetime) -> None:
    _endpoints(delivery).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = disable_after()
    if limit <= 0:
        return
    reason = (
        f"Disabled on {now:%d %b %Y at %H:%M} UTC after {limit} deliveries in a row failed "
        f"(each tried {MAX_ATTEMPTS} times over about a day). The last error: {delivery.error}"
    )
    disabled = (
        _endpoints(delivery)
        .filter(active=True, consecutive_failures__gte=limit)
        .update(active=False, disabled_reason=reason)
    )
    if disabled:
        logger.warning("Webhook endpoint %s disabled: %s", delivery.endpoint_id, reason)


def deliver_ids(workspace: Workspace, delivery_ids: Sequence[int]) -> dict[str, int]:
    """Attempt each of these deliveries that is due and not taken by another worker."""
    counts = {"succeeded": 0, "retrying": 0, "failed": 0, "skipped": 0}
    for pk in delivery_ids:
        delivery = _claim(workspace, pk, timezone.now())
        if delivery is None:
            counts["skipped"] += 1
            continue
        counts[attempt(delivery).status] += 1
    return counts


def deliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """One attempt of this delivery now, if it is due and nobody else has it."""
    claimed = _claim(delivery.workspace, delivery.pk, timezone.now())
    return attempt(claimed) if claimed else delivery


def dispatch_due(now: dt.datetime | None = None, limit: int = SWEEP_LIMIT) -> int:
    """The minute sweep: hand due deliveries of active endpoints to workers, across
    workspaces (each task is scoped to one). Returns how many were handed on."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.all_workspaces.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
            next_attempt_at__lte=now,
            endpoint__active=True,
        )
        .order_by("next_attempt_at")
        .values_list("workspace_id", "pk", "endpoint_id")[:limit]
    )
    by_workspace: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for workspace_id, pk, endpoint_id in due:
        by_workspace[workspace_id].append((pk, endpoint_id))
    for workspace_id, deliveries in by_workspace.items():
        hand_to_workers(workspace_id, deliveries)
    return len(due)


# --- from the UI -----------------------------------------------------------------------


def ping(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a "ping" event to the endpoint now and return the logged delivery (not retried,
    and not counted against the endpoint's health). Works on a disabled endpoint too."""
    workspace = endpoint.workspace
    now = timezone.now()
    delivery = WebhookDelivery.objects.for_workspace(workspace).create(
        workspace=workspace,
        endpoint=endpoint,
        event=PING,
        event_key=_key(PING, uuid.uuid4()),
        payload={"message": "A test from Mailpath: this endpoint is set up.", "sent_at": _iso(now)},
        next_attempt_at=now,
    )
    claimed = _claim(workspace, delivery.pk, now, active_only=False)
    assert claimed is not None  # just created, nobody else knows it
    return attempt(claimed, final=True)


class NotRetryable(ValueError):
    pass


def retry_now(delivery: WebhookDelivery) -> WebhookDelivery:
    """One more attempt of a failed (or waiting) delivery, now, even if the endpoint is
    disabled (the person asked for it). A success resets the endpoint's failure count."""
    if delivery.status == DeliveryStatus.SUCCEEDED:
        raise NotRetryable("This delivery succeeded already.")
    if delivery.status == DeliveryStatus.PENDING:
        raise NotRetryable("This delivery has not been tried yet: it goes out within a minute.")
    workspace = delivery.workspace
    now = timezone.now()
    reopened = (
        WebhookDelivery.objects.for_workspace(workspace)
        .filter(pk=delivery.pk, status__in=[DeliveryStatus.FAILED, DeliveryStatus.RETRYING])
        .update(status=DeliveryStatus.RETRYING, next_attempt_at=now)
    )
    claimed = _claim(workspace, delivery.pk, now, active_only=False) if reopened else None
    if claimed is None:
        raise NotRetryable("This delivery is being sent right now; look again in a moment.")
    return attempt(claimed, final=claimed.event == PING, manual=True)


def event_choices() -> list[tuple[str, str]]:
    return [(event, EVENT_LABELS.get(event, event)) for event in WEBHOOK_EVENTS]

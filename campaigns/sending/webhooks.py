"""ESP tracking webhooks: what Anymail's `tracking` signal reports becomes message events,
message statuses, suppressions and contact events.

Who may call. campaigns/webhook_views.py wraps Anymail's tracking views so that every call
carries HTTP basic auth, checked by `authenticate()`: either a workspace's own (user = the
workspace's public id, password = its EspConnection.webhook_secret; the Sending settings
page shows that URL) or the installation's ANYMAIL["WEBHOOK_SECRET"] (for a platform-wide
ESP account). The ESP's signature is checked on top where it has one. The views hang the
caller on each event; an event without one (sent by a view that does not authenticate
workspaces) is ignored.

Finding the message. metadata["workspace_id"] and metadata["message_id"] (our public ids,
on every send), else the ESP's message id inside the workspace. A workspace's secret only
reaches that workspace's messages; metadata naming another workspace, or a message that is
not in the named workspace, changes nothing (and is logged).

Recording, in one transaction:
- The event id "<esp>:<the ESP's event id>" (a hash of the payload when the ESP gives
  none) is unique in the database, so a replayed or repeated event writes nothing.
- Status only moves forward, whatever order events arrive in: queued/sending/sent <
  deferred < delivered < bounced/complained/failed. Bounced, complained and failed are
  final; opens, clicks and unsubscribes change no status. delivered_at / opened_at /
  clicked_at keep the earliest time reported.
- A hard bounce or a spam complaint (or an ESP rejection because of an earlier one)
  suppresses the address in the workspace at once and marks its contact bounced /
  complained; an unsubscribe reported by the ESP unsubscribes the contact.
- Contact events for segments and journeys: email_received on the first delivery;
  email_opened / email_clicked only when the ESP reports the message's *first* human open
  or click (the one that sets opened_at / clicked_at). Our own open pixel and click links
  stamp the same fields first, so when both track, the contact's events are not counted
  twice; machine opens and scanner clicks are kept as message events only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from contacts import services as contact_services
from contacts.models import Contact, Source, SubscriptionStatus, SuppressionReason
from contacts.segments.rules import EMAIL_CLICKED, EMAIL_OPENED, EMAIL_RECEIVED, HUMAN_PROPERTY
from workspaces.models import Workspace

from ..models import EspConnection, Message, MessageEvent, MessageEventKind, MessageStatus
from ..signals import message_event_recorded
from . import links, secrets

logger = logging.getLogger(__name__)

CALLER_ATTRIBUTE = "mailpath_caller"  # set on each event by campaigns.webhook_views
MAX_TEXT = 1000
SVIX_TOLERANCE_SECONDS = 5 * 60

RECORDED, DUPLICATE, IGNORED = "recorded", "duplicate", "ignored"

# Anymail's normalised event types -> our message event kinds (bounces are split below).
KINDS: dict[str, str] = {
    EventType.DELIVERED: MessageEventKind.DELIVERED,
    EventType.DEFERRED: MessageEventKind.DEFERRED,
    EventType.REJECTED: MessageEventKind.REJECTED,
    EventType.FAILED: MessageEventKind.FAILED,
    EventType.COMPLAINED: MessageEventKind.COMPLAINED,
    EventType.OPENED: MessageEventKind.OPENED,
    EventType.CLICKED: MessageEventKind.CLICKED,
    EventType.UNSUBSCRIBED: MessageEventKind.UNSUBSCRIBED,
}
_IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.SENT)
_NOT_FINAL = (*_IN_FLIGHT, MessageStatus.DEFERRED, MessageStatus.DELIVERED)
# kind -> (the status it leads to, the statuses it may move a message from)
STATUS_MOVES: dict[str, tuple[str, tuple[str, ...]]] = {
    MessageEventKind.DEFERRED: (MessageStatus.DEFERRED, _IN_FLIGHT),
    MessageEventKind.DELIVERED: (
        MessageStatus.DELIVERED,
        (*_IN_FLIGHT, MessageStatus.DEFERRED),
    ),
    MessageEventKind.BOUNCED: (MessageStatus.BOUNCED, _NOT_FINAL),
    MessageEventKind.SOFT_BOUNCED: (MessageStatus.BOUNCED, _NOT_FINAL),
    MessageEventKind.COMPLAINED: (MessageStatus.COMPLAINED, _NOT_FINAL),
    MessageEventKind.REJECTED: (MessageStatus.FAILED, _NOT_FINAL),
    MessageEventKind.FAILED: (MessageStatus.FAILED, _NOT_FINAL),
}
FAILURE_LABELS = {
    MessageEventKind.BOUNCED: "Hard bounce",
    MessageEventKind.SOFT_BOUNCED: "Soft bounce",
    MessageEventKind.COMPLAINED: "Marked as spam",
    MessageEventKind.REJECTED: "Rejected by the ESP",
    MessageEventKind.FAILED: "The ESP could not send it",
}
# An ESP that refuses a message because of an earlier bounce or complaint it remembers:
# the address is suppressed here too.
REJECTIONS_THAT_SUPPRESS = {
    RejectReason.BOUNCED: SuppressionReason.BOUNCED,
    RejectReason.INVALID: SuppressionReason.BOUNCED,
    RejectReason.SPAM: SuppressionReason.COMPLAINED,
}


def provider_key(esp_name: str) -> str:
    """Anymail's ESP name ("Amazon SES") as our provider key ("amazon_ses")."""
    return esp_name.strip().lower().replace(" ", "_")


# --- who is calling ------------------------------------------------------------------------


@dataclass
class WebhookCaller:
    """Who authenticated a webhook call: a workspace, or the installation (workspace None)."""

    workspace: Workspace | None
    connection: EspConnection | None = None
    _secrets: dict[str, Any] | None = field(default=None, repr=False)

    def secret(self, name: str, *, provider: str) -> str:
        """A stored secret of the workspace's connection (a webhook signing key), if the
        connection is of that provider and the secret can be read; else ""."""
        if self.connection is None or self.connection.provider != provider:
            return ""
        if self._secrets is None:
            try:
                self._secrets = secrets.decrypt(self.connection.credentials)
            except secrets.CredentialsUnreadable:
                logger.warning(
                    "Webhook for workspace %s: its ESP credentials cannot be decrypted.",
                    self.connection.workspace_id,
                )
                self._secrets = {}
        value = self._secrets.get(name)
        return value if isinstance(value, str) else ""


_NO_SECRET = "-" * 43  # compared against when there is no workspace, to keep timing flat


def authenticate(basic_auth: str | None, platform_secrets: Iterable[str]) -> WebhookCaller | None:
    """The caller that "user:password" (from the Authorization header) proves, or None."""
    if not basic_auth:
        return None
    if any(constant_time_compare(basic_auth, allowed) for allowed in platform_secrets if allowed):
        return WebhookCaller(workspace=None)
    user, _, password = basic_auth.partition(":")
    try:
        public_id = uuid.UUID(user)
    except ValueError:
        return None
    workspace = Workspace.objects.filter(public_id=public_id).first()
    connection = EspConnection.objects.for_workspace(workspace).first() if workspace else None
    secret = connection.webhook_secret if connection else ""
    matches = constant_time_compare(password, secret or _NO_SECRET)
    if not (matches and secret):
        return None
    return WebhookCaller(workspace=workspace, connection=connection)


def verify_svix(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Resend's webhook signature (Svix / Standard Webhooks): HMAC-SHA256 of
    "<id>.<timestamp>.<body>" under the base64 secret after "whsec_"."""
    message_id = headers.get("svix-id") or headers.get("webhook-id") or ""
    stamp = headers.get("svix-timestamp") or headers.get("webhook-timestamp") or ""
    given = headers.get("svix-signature") or headers.get("webhook-signature") or ""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        sent_at = int(stamp)
    except (binascii.Error, ValueError):
        return False
    if not message_id or not key or abs(now - sent_at) > SVIX_TOLERANCE_SECONDS:
        return False
    signed = f"{message_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.digest(key, signed, "sha256")).decode()
    for part in given.split():
        version, _, signature = part.partition(",")
        if version == "v1" and constant_time_compare(signature, expected):
            return True
    return False


# --- the signal receiver -------------------------------------------------------------------


def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """Receiver of anymail.signals.tracking (connected in CampaignsConfig.ready)."""
    caller = getattr(event, CALLER_ATTRIBUTE, None)
    if not isinstance(caller, WebhookCaller):
        logger.warning(
            "Ignored a %s tracking event from %s: it did not come through Mailpath's "
            "authenticated webhook URLs (campaigns.webhook_urls).",
            esp_name,
            getattr(sender, "__name__", sender),
        )
        return
    record_esp_event(event, esp=provider_key(esp_name), esp_label=esp_name, caller=caller)


# --- recording one event -------------------------------------------------------------------


def record_esp_event(
    event: AnymailTrackingEvent,
    *,
    esp: str,
    esp_label: str = "",
    caller: WebhookCaller,
    now: dt.datetime | None = None,
) -> str:
    """Store one ESP event. Returns "recorded", "duplicate" (seen before: nothing written)
    or "ignored" (not a kind we keep, or no message of the caller's matches)."""
    now = now or timezone.now()
    esp_label = esp_label or esp
    kind = event_kind(esp, event)
    if kind is None:
        return IGNORED
    message = find_message(event, caller)
    if message is None:
        return IGNORED
    workspace = message.workspace
    occurred = _aware(event.timestamp) or now
    machine = machine_reason(esp, event, kind, message, occurred)
    with transaction.atomic():
        try:
            with transaction.atomic():
                stored = MessageEvent.objects.create(
                    workspace=workspace,
                    message=message,
                    kind=kind,
                    occurred_at=occurred,
                    event_id=event_id_for(esp, event),
                    machine=bool(machine),
                    url=(event.click_url or "")[:4000],
                    user_agent=(event.user_agent or "")[:400],
                    data=_event_data(esp, event, machine),
                )
        except IntegrityError:
            return DUPLICATE
        _advance(message, kind, occurred, _failure_reason(kind, event), now)
        if kind in (MessageEventKind.OPENED, MessageEventKind.CLICKED) and not machine:
            _first_engagement(message, stored, occurred, now)
        _consequences(message, kind, event, esp_label)
        transaction.on_commit(
            lambda: message_event_recorded.send(
                sender=MessageEvent, workspace=workspace, message=message, kind=kind, event=stored
            )
        )
    return RECORDED


def event_kind(esp: str, event: AnymailTrackingEvent) -> str | None:
    if event.event_type == EventType.BOUNCED:
        hard = bounce_is_hard(esp, event)
        return MessageEventKind.BOUNCED if hard else MessageEventKind.SOFT_BOUNCED
    return KINDS.get(event.event_type)


def bounce_is_hard(esp: str, event: AnymailTrackingEvent) -> bool:
    """A permanent failure (no such mailbox, no such domain) rather than a passing one
    (mailbox full, greylisting, one message blocked). Anymail reports both as "bounced"
    for several ESPs, so each ESP's own field decides; otherwise reject_reason "bounced"
    or "invalid" counts as hard."""
    raw = _raw(event)
    if esp == "postmark":
        return (raw.get("Type") or raw.get("SuppressionReason")) in ("HardBounce",)
    if esp == "amazon_ses":
        return _get(raw, "bounce", "bounceType") == "Permanent"
    if esp == "mailgun":  # "temporary" failures are deferrals in Anymail already
        return _get(raw, "event-data", "severity") != "temporary"
    if esp == "sendgrid":  # "blocked": the receiver refused this message, not the address
        return raw.get("type", "bounce") != "blocked"
    if esp in ("brevo", "sendinblue"):
        return raw.get("event") in ("hard_bounce", "invalid_email")
    if esp == "mailjet":
        return bool(raw.get("hard_bounce"))
    if esp == "sparkpost":  # 10 invalid recipient, 30 no RCPT, 90 unsubscribe
        inner = next(iter((raw.get("msys") or {}).values()), {}) if "msys" in raw else raw
        return str(inner.get("bounce_class")) in {"10", "30", "90"}
    if esp == "resend":
        return _get(raw, "data", "bounce", "type") == "Permanent"
    return event.reject_reason in (RejectReason.BOUNCED, RejectReason.INVALID)


def find_message(event: AnymailTrackingEvent, caller: WebhookCaller) -> Message | None:
    """The message the event is about, inside the caller's reach; None (logged) if the
    metadata and the caller disagree or nothing matches."""
    metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
    named_workspace = _uuid(metadata.get("workspace_id"))
    named_message = _uuid(metadata.get("message_id"))
    if caller.workspace is not None:
        if named_workspace and named_workspace != caller.workspace.public_id:
            logger.warning(
                "Ignored a webhook event: workspace %s's webhook named workspace %s.",
                caller.workspace.public_id,
                named_workspace,
            )
            return None
        workspace = caller.workspace
    elif named_workspace:
        workspace = Workspace.objects.filter(public_id=named_workspace).first()
    else:
        workspace = None
    if workspace is None:
        logger.info("Ignored a webhook event that names no known workspace.")
        return None
    messages = Message.objects.for_workspace(workspace).select_related("workspace")
    if named_message:
        found = messages.filter(public_id=named_message).first()
    elif metadata.get("message_id"):
        found = None  # a message id that is not one of ours
    elif event.message_id:
        found = messages.filter(esp_message_id=str(event.message_id)[:200]).first()
    else:
        found = None
    if found is None:
        logger.info("Ignored a webhook event: no such message in workspace %s.", workspace.pk)
    return found


def event_id_for(esp: str, event: AnymailTrackingEvent) -> str:
    """ "<esp>:<the ESP's event id>", or "<esp>:sha256:<hash of the payload>" for ESPs that
    give none (Postmark deliveries and opens, Brevo, Mailjet)."""
    if event.event_id:
        value = f"{esp}:{event.event_id}"
        if len(value) <= 200:
            return value
        return f"{esp}:sha256:{hashlib.sha256(str(event.event_id).encode()).hexdigest()}"
    payload = json.dumps(_plain(event.esp_event), sort_keys=True, default=str)
    extra = f"{event.event_type}|{event.recipient or ''}|"
    digest = hashlib.sha256((extra + payload).encode()).hexdigest()
    return f"{esp}:sha256:{digest}"


def machine_reason(
    esp: str,
    event: AnymailTrackingEvent,
    kind: str,
    message: Message,
    occurred: dt.datetime,
) -> str:
    """Why an open or click the ESP reports is a machine's (privacy proxy, link scanner),
    or "". Uses the ESP's own flag where it has one, then the same rules as our pixel."""
    if kind not in (MessageEventKind.OPENED, MessageEventKind.CLICKED):
        return ""
    raw = _raw(event)
    agent = (event.user_agent or "").strip()
    if kind == MessageEventKind.OPENED:
        if esp == "sendgrid" and raw.get("sg_machine_open") in (True, "true"):
            return "machine open reported by SendGrid"
        if esp in ("brevo", "sendinblue") and raw.get("event") in (
            "proxy_open",
            "unique_proxy_open",
        ):
            return "mail privacy proxy reported by Brevo"
        seconds = _seconds(occurred, message.sent_at)
        return links.machine_open_reason(links.Hit(user_agent=agent), seconds)
    seconds = _seconds(occurred, message.delivered_at or message.sent_at)
    if agent:
        return links.scanner_click_reason(links.Hit(user_agent=agent), seconds)
    if seconds is not None and seconds < settings.MAILPATH_SCANNER_CLICK_SECONDS:
        return "clicked within seconds of delivery"
    return ""


def _advance(
    message: Message, kind: str, occurred: dt.datetime, failure: str, now: dt.datetime
) -> None:
    rows = Message.objects.for_workspace(message.workspace).filter(pk=message.pk)
    move = STATUS_MOVES.get(kind)
    if move is not None:
        status, sources = move
        changes: dict[str, Any] = {"status": status, "updated_at": now}
        if failure:
            changes["failure_reason"] = failure
        rows.filter(status__in=sources).update(**changes)
    if kind != MessageEventKind.DELIVERED:
        return
    delivered = rows.filter(status=MessageStatus.DELIVERED)
    first = delivered.filter(delivered_at__isnull=True).update(delivered_at=occurred)
    if first:
        _record_received(message, occurred)
    else:
        delivered.filter(delivered_at__gt=occurred).update(delivered_at=occurred)


def _first_engagement(
    message: Message, stored: MessageEvent, occurred: dt.datetime, now: dt.datetime
) -> None:
    """Stamp opened_at (a click shows an open too) and clicked_at with the earliest human
    time; the contact event goes with the first one only."""
    rows = Message.objects.for_workspace(message.workspace).filter(pk=message.pk)
    first_open = rows.filter(opened_at__isnull=True).update(opened_at=occurred, updated_at=now)
    if not first_open:
        rows.filter(opened_at__gt=occurred).update(opened_at=occurred)
    first = bool(first_open)
    if stored.kind == MessageEventKind.CLICKED:
        first = bool(
            rows.filter(clicked_at__isnull=True).update(clicked_at=occurred, updated_at=now)
        )
        if not first:
            rows.filter(clicked_at__gt=occurred).update(clicked_at=occurred)
    if first:
        name = EMAIL_CLICKED if stored.kind == MessageEventKind.CLICKED else EMAIL_OPENED
        extra = {"url": stored.url} if stored.kind == MessageEventKind.CLICKED else {}
        _record_contact_event(message, name, occurred, f"mailpath-esp-{stored.public_id}", extra)


def _record_received(message: Message, occurred: dt.datetime) -> None:
    _record_contact_event(message, EMAIL_RECEIVED, occurred, links.received_event_key(message), {})


def _record_contact_event(
    message: Message, name: str, occurred: dt.datetime, key: str, extra: dict[str, Any]
) -> None:
    """The contact event segments and journeys read, with the same properties as those of
    our own pixel and links (campaigns.sending.links): scope, message id, human."""
    if message.contact_id is None:
        return
    properties: dict[str, Any] = {
        **links.scope_properties(message),
        "message_id": str(message.public_id),
        **extra,
    }
    if name != EMAIL_RECEIVED:
        properties[HUMAN_PROPERTY] = True  # machine opens and clicks record no contact event
    contact_services.record_events(
        workspace=message.workspace,
        events=[
            contact_services.EventInput(
                name=name,
                occurred_at=occurred,
                properties=properties,
                contact_id=message.contact_id,
                message_id=key,
                source=Source.SYSTEM,
            )
        ],
    )


def _consequences(message: Message, kind: str, event: AnymailTrackingEvent, esp: str) -> None:
    """Suppression and subscription changes the event calls for."""
    reason = None
    if kind == MessageEventKind.BOUNCED:
        reason = SuppressionReason.BOUNCED
    elif kind == MessageEventKind.COMPLAINED:
        reason = SuppressionReason.COMPLAINED
    elif kind == MessageEventKind.REJECTED:
        reason = REJECTIONS_THAT_SUPPRESS.get(event.reject_reason or "")
    if reason is not None:
        what = "Hard bounce" if reason == SuppressionReason.BOUNCED else "Spam complaint"
        contact_services.suppress(
            workspace=message.workspace,
            email=message.to_email,
            reason=reason,
            source=f"{what} reported by {esp} for “{message.subject}”"[:255],
        )
    unsubscribed = kind == MessageEventKind.UNSUBSCRIBED or (
        kind == MessageEventKind.REJECTED and event.reject_reason == RejectReason.UNSUBSCRIBED
    )
    if unsubscribed and message.contact_id is not None:
        contact_services.unsubscribe(
            workspace=message.workspace,
            contacts=Contact.objects.for_workspace(message.workspace).filter(
                pk=message.contact_id,
                status__in=[SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING],
            ),
            method=Source.SYSTEM,
            source=f"Unsubscribe reported by {esp} for “{message.subject}”"[:255],
        )


def _failure_reason(kind: str, event: AnymailTrackingEvent) -> str:
    label = FAILURE_LABELS.get(kind)
    if label is None:
        return ""
    details = [str(part) for part in (event.description, event.mta_response) if part]
    return (f"{label}: {' · '.join(details)}" if details else label)[:MAX_TEXT]


def _event_data(esp: str, event: AnymailTrackingEvent, machine: str) -> dict[str, Any]:
    data = {
        "esp": esp,
        "type": event.event_type,
        "esp_event_id": event.event_id,
        "esp_message_id": event.message_id,
        "recipient": event.recipient,
        "reject_reason": event.reject_reason,
        "description": event.description,
        "mta_response": event.mta_response,
        "machine": machine,
    }
    return {key: str(value)[:MAX_TEXT] for key, value in data.items() if value}


# --- small helpers -------------------------------------------------------------------------


def _raw(event: AnymailTrackingEvent) -> Mapping[str, Any]:
    raw = event.esp_event
    return raw if isinstance(raw, Mapping) else {}


def _get(raw: Any, *path: str) -> Any:
    for key in path:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
    return raw


def _plain(value: Any) -> Any:
    """The ESP's payload as JSON-able data (Mailgun's legacy form posts are QueryDicts)."""
    if hasattr(value, "lists"):
        return {key: values for key, values in value.lists()}
    return value


def _uuid(value: Any) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _aware(moment: Any) -> dt.datetime | None:
    if not isinstance(moment, dt.datetime):
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt.UTC)


def _seconds(later: dt.datetime, earlier: dt.datetime | None) -> float | None:
    return (later - earlier).total_seconds() if earlier else None

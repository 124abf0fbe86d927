"""What a recipient's mail client and browser reach from an email, without logging in: the
open pixel, the click redirect, the unsubscribe page and the preference centre. The signed
token in the URL names the message and its workspace (campaigns/sending/links.py); an
unsigned or altered token is a 404 everywhere, and a click link whose signature does not
match its destination is a 404, never a redirect.

The pixel and the redirect answer at once, from the token and the signature alone, and
touch no database: the hit joins a batch that a Celery task stores in bulk (HitBatch,
links.record_hits), message events and contact events alike.

The unsubscribe and preference endpoints are exempt from CSRF protection on purpose:
RFC 8058 one-click unsubscribe is a POST from the mailbox provider with no cookies and no
CSRF token, and these pages use no session at all. What authorises them is the token,
which only the recipient's copy of the email carries. A GET never changes anything, so
link scanners that fetch every URL unsubscribe nobody.
"""

from __future__ import annotations

import atexit
import base64
import logging
import threading
import uuid
from typing import Any

from django import db
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from contacts.models import SubscriptionStatus
from contacts.signup_forms import client_ip
from workspaces.access import workspace_for_task

from . import tasks
from .models import Message, MessageEventKind
from .sending import links
from .services import brand_of

logger = logging.getLogger(__name__)

# A transparent 1x1 GIF: 43 bytes.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"


def _hit(request: HttpRequest) -> links.Hit:
    return links.Hit(
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        ip_address=client_ip(request),
        method=request.method or "GET",
    )


class HitBatch:
    """Opens and clicks leave the request as one Celery task per workspace for up to
    MAX_HITS hits or MAX_DELAY seconds (record_tracking_hits, which stores them in bulk),
    instead of a database write and a broker round trip for each. If the broker cannot
    take a batch, this process stores it itself. A web process killed outright loses at
    most its last second of hits; a graceful stop flushes them."""

    MAX_HITS = 100
    MAX_DELAY = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, list[links.TrackedHit]] = {}
        self._count = 0
        self._timer: threading.Timer | None = None
        atexit.register(self.flush)

    def add(self, workspace_id: int, hit: links.TrackedHit) -> None:
        with self._lock:
            self._pending.setdefault(workspace_id, []).append(hit)
            self._count += 1
            full = self._count >= self.MAX_HITS
            if not full and self._timer is None:
                self._timer = threading.Timer(self.MAX_DELAY, self._flush_from_timer)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._count = self._pending, {}, 0
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        for workspace_id, batch in pending.items():
            self._send(workspace_id, batch)

    def _flush_from_timer(self) -> None:
        try:
            self.flush()
        finally:
            db.connection.close()  # this thread's own, if the fallback opened one

    def _send(self, workspace_id: int, batch: list[links.TrackedHit]) -> None:
        try:
            tasks.record_tracking_hits.apply_async(
                (workspace_id, [hit.as_json() for hit in batch]), retry=False
            )
            return
        except Exception:
            logger.exception("Could not queue %s tracking hits; storing them here", len(batch))
        try:
            workspace = workspace_for_task(workspace_id)
            if workspace is not None:
                links.record_hits(workspace=workspace, hits=batch)
        except Exception:
            logger.exception("Lost %s tracking hits of workspace %s", len(batch), workspace_id)


hits = HitBatch()


def _track(request: HttpRequest, ref: links.MessageRef, kind: str, url: str = "") -> None:
    hit = links.TrackedHit(
        id=uuid.uuid4(),
        message_id=ref.message_id,
        kind=kind,
        occurred_at=timezone.now(),
        hit=_hit(request),
        url=url,
    )
    hits.add(ref.workspace_id, hit)


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    ref = links.read_token(token)
    if ref is None:
        raise Http404("Unknown link.")
    _track(request, ref, MessageEventKind.OPENED)
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = NO_STORE
    return response


@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str, signature: str) -> HttpResponse:
    url = request.GET.get("u", "")
    ref = links.read_token(token)
    if (
        ref is None
        or not url.lower().startswith(("http://", "https://"))
        or not links.click_signature_ok(token, url, signature)
    ):
        raise Http404("Unknown link.")
    _track(request, ref, MessageEventKind.CLICKED, url)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = NO_STORE
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- unsubscribe and preference centre -----------------------------------------------------


def _message_or_404(token: str) -> Message:
    message = links.message_from_token(token)
    if message is None:
        raise Http404("This link is not valid any more.")
    return message


def _page(
    request: HttpRequest,
    message: Message,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    context = {
        "brand": brand_of(message.workspace),
        "workspace": message.workspace,
        "contact": message.contact,
        "email": message.contact.email if message.contact else message.to_email,
        "action": request.path,
        "preferences_url": reverse("message_preferences", args=[links.message_token(message)]),
        **context,
    }
    response = render(request, template, context, status=status)
    response["Cache-Control"] = NO_STORE
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


def _state(message: Message) -> str:
    """gone (no such contact any more), subscribed, unsubscribed, or stopped (bounced or
    marked as spam: no links of ours change that)."""
    if message.contact is None:
        return "gone"
    if message.contact.status in links.UNSUBSCRIBABLE:
        return "subscribed"
    if message.contact.status == SubscriptionStatus.UNSUBSCRIBED:
        return "unsubscribed"
    return "stopped"


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks; POST (our button, or a mailbox's RFC 8058 one-click) unsubscribes."""
    message = _message_or_404(token)
    done = False
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        links.unsubscribe_from_message(message, one_click=one_click, ip_address=client_ip(request))
        if message.contact is not None:
            message.contact.refresh_from_db(fields=["status", "marketing_paused_until"])
        done = True
    context = {"state": _state(message), "done": done}
    return _page(request, message, "campaigns/public/unsubscribe.html", context)


PREFERENCE_ACTIONS = {"save", "unsubscribe", "resubscribe", "pause30", "pause90", "resume"}
PAUSE_DAYS = {"pause30": 30, "pause90": 90, "resume": 0}


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """The contact's topics, unsubscribe from everything, or subscribe again."""
    message = _message_or_404(token)
    notice, error, status = "", "", 200
    if request.method == "POST" and message.contact is not None:
        action = request.POST.get("action", "save")
        ip_address = client_ip(request)
        if action not in PREFERENCE_ACTIONS:
            error, status = "That is not something this page can do. Try again.", 400
        elif action == "save":
            chosen = set(request.POST.getlist("topics"))
            links.save_topic_choices(message, subscribed_topic_ids=chosen, ip_address=ip_address)
            notice = "Your choices are saved."
        elif action == "unsubscribe":
            links.unsubscribe_from_message(message, ip_address=ip_address)
            notice = "You are unsubscribed from all our emails."
        elif action in PAUSE_DAYS:
            days = PAUSE_DAYS[action]
            links.pause_from_message(message, days=days)
            notice = f"Paused for {days} days." if days else "Marketing emails start again."
        else:
            links.resubscribe_from_message(message, ip_address=ip_address)
            notice = "Welcome back: you are subscribed again."
        message.contact.refresh_from_db(fields=["status", "marketing_paused_until"])
    context = {
        "state": _state(message),
        "choices": links.topic_choices(message),
        "paused_until": links.paused_until(message),
        "notice": notice,
        "error": error,
    }
    return _page(request, message, "campaigns/public/preferences.html", context, status)

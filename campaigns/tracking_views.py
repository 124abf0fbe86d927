"""What a recipient's mail client and browser reach from an email, without logging in: the
open pixel, the click redirect, the unsubscribe page and the preference centre. The signed
token in the URL names the message and its workspace (campaigns/sending/links.py); an
unsigned or altered token is a 404 everywhere, and a click link whose signature does not
match its destination is a 404, never a redirect.

The pixel and the redirect answer at once, from the token and the signature alone. The
hit is recorded after the response has been delivered (WSGI servers call a response's
close() once the last byte is out, PEP 3333): one statement stores the event row, and the
contact event (segments, journeys) goes to a Celery task in batches (EngagementBatch). A
database or broker failure is logged; the recipient has the image or the page already.

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
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from contacts.models import SubscriptionStatus
from contacts.signup_forms import client_ip

from .models import Message
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


class _RecordAfterDelivery:
    """A response that runs `after_delivery` once the server has sent it."""

    after_delivery: Callable[[], None] | None = None

    def close(self) -> None:
        # Before Django's own close(), whose request_finished signal tidies up the
        # database connection this work uses.
        after, self.after_delivery = self.after_delivery, None
        try:
            if after is not None:
                after()
        finally:
            super().close()  # type: ignore[misc]


class PixelResponse(_RecordAfterDelivery, HttpResponse):
    pass


class ClickRedirect(_RecordAfterDelivery, HttpResponseRedirect):
    pass


def _recorder(workspace_id: int, record: Callable[[], int | None]) -> Callable[[], None]:
    """Store the open or click; then queue its contact event once the row is committed."""

    def after_delivery() -> None:
        try:
            event_id = record()
        except DatabaseError:
            logger.exception("Could not record a tracking event of workspace %s", workspace_id)
            return
        if event_id is not None:
            transaction.on_commit(lambda: engagement_batch.add(workspace_id, event_id))

    return after_delivery


class EngagementBatch:
    """Queues contact events to Celery in batches: one task per workspace for up to
    MAX_EVENTS events or MAX_DELAY seconds, instead of a broker round trip for every open
    and click. A web process killed outright loses at most that second of contact events;
    the message events themselves are stored already. Flushed at process exit."""

    MAX_EVENTS = 100
    MAX_DELAY = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, list[int]] = {}
        self._count = 0
        self._timer: threading.Timer | None = None
        atexit.register(self.flush)

    def add(self, workspace_id: int, event_id: int) -> None:
        with self._lock:
            self._pending.setdefault(workspace_id, []).append(event_id)
            self._count += 1
            full = self._count >= self.MAX_EVENTS
            if not full and self._timer is None:
                self._timer = threading.Timer(self.MAX_DELAY, self.flush)
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
        if not pending:
            return
        from . import tasks  # the task module imports the whole sending pipeline

        for workspace_id, event_ids in pending.items():
            try:
                tasks.record_contact_engagement.apply_async((workspace_id, event_ids), retry=False)
            except Exception:  # a broker outage must not break images or links
                logger.exception(
                    "Could not queue %s contact events of workspace %s",
                    len(event_ids),
                    workspace_id,
                )


engagement_batch = EngagementBatch()


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    ref = links.read_token(token)
    if ref is None:
        raise Http404("Unknown link.")
    hit = _hit(request)
    response = PixelResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = NO_STORE
    response.after_delivery = _recorder(ref.workspace_id, lambda: links.record_open(ref, hit))
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
    hit = _hit(request)
    response = ClickRedirect(url)
    response["Cache-Control"] = NO_STORE
    response["Referrer-Policy"] = "no-referrer"
    response.after_delivery = _recorder(ref.workspace_id, lambda: links.record_click(ref, url, hit))
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
            message.contact.refresh_from_db(fields=["status"])
        done = True
    context = {"state": _state(message), "done": done}
    return _page(request, message, "campaigns/public/unsubscribe.html", context)


PREFERENCE_ACTIONS = {"save", "unsubscribe", "resubscribe"}


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
        else:
            links.resubscribe_from_message(message, ip_address=ip_address)
            notice = "Welcome back: you are subscribed again."
        message.contact.refresh_from_db(fields=["status"])
    context = {
        "state": _state(message),
        "choices": links.topic_choices(message),
        "notice": notice,
        "error": error,
    }
    return _page(request, message, "campaigns/public/preferences.html", context, status)

"""The message log and deliverability pages under /w/<workspace_slug>/: every email of the
workspace with its status (filter by source, campaign or journey id, status and address),
one email with its events, and the bounce / complaint health of the last 7 and 30 days.
Everyone in the workspace reads them; nothing here writes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from workspaces.access import get_owned_or_404

from . import message_log
from .models import Message, MessageSource, MessageStatus
from .sending import health, links


class MessageFilterForm(forms.Form):
    source = forms.ChoiceField(required=False, choices=[("", "Any source"), *MessageSource.choices])
    source_id = forms.CharField(required=False, max_length=80)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *MessageStatus.choices])
    q = forms.CharField(required=False, max_length=254)

    def filters(self) -> message_log.MessageFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return message_log.MessageFilters(
            source=data.get("source") or "",
            source_id=(data.get("source_id") or "").strip(),
            status=data.get("status") or "",
            q=(data.get("q") or "").strip(),
        )


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render with times in the workspace's time zone."""
    with timezone.override(request.workspace.timezone):
        return render(request, template, context, status=status)


@require_GET
@vary_on_headers("HX-Request")
def message_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    form = MessageFilterForm(request.GET)
    filters = form.filters()
    after = message_log.ListCursor.from_token(request.GET.get("after", ""))
    page = message_log.list_messages(workspace, filters, after=after)
    for message in page.messages:
        message.badge = message_log.STATUS_BADGES.get(message.status, "")  # type: ignore[attr-defined]
    list_url = reverse("message_list", kwargs={"workspace_slug": workspace_slug})
    params = filters.as_params()
    next_url = None
    if page.next_cursor:
        next_url = f"{list_url}?{urlencode({**params, 'after': page.next_cursor.token()})}"
    context = {
        "tab": "sending",
        "sending_tab": "messages",
        "form": form,
        "filters": filters,
        "page": page,
        "messages_page": page.messages,
        "list_url": list_url,
        "query": urlencode(params),
        "next_url": next_url,
        "first_page": after is None,
        "sources": MessageSource.choices,
        "statuses": MessageStatus.choices,
    }
    htmx = request.htmx
    if htmx and not htmx.history_restore_request and htmx.target == "message-results":
        return _render(request, "campaigns/messages/list.html#results", context)
    return _render(request, "campaigns/messages/list.html", context)


@require_GET
def message_detail(request: HttpRequest, workspace_slug: str, email_id: Any) -> HttpResponse:
    workspace = request.workspace
    message = get_owned_or_404(Message, workspace, email_id)
    message.workspace = workspace
    contact = message.contact
    headers = _sent_headers(message)
    context = {
        "tab": "sending",
        "sending_tab": "messages",
        "message": message,
        "contact": contact,
        "template": message.template,
        "events": message_log.message_events(message),
        "badge": message_log.STATUS_BADGES.get(message.status, ""),
        "headers": headers,
        "failed": message.status in message_log.FAILED_STATUSES,
    }
    return _render(request, "campaigns/messages/detail.html", context)


def _sent_headers(message: Message) -> dict[str, str]:
    """The headers Mailpath adds to this message (rebuilt: they follow from the message)."""
    headers = {
        "Anymail metadata": (
            f'{{"workspace_id": "{message.workspace.public_id}", '
            f'"message_id": "{message.public_id}"}}'
        )
    }
    if message.esp_message_id:
        headers["ESP message id"] = message.esp_message_id
    headers.update(links.list_unsubscribe_headers(message))
    return headers


@require_GET
def deliverability(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    context = {
        "tab": "sending",
        "sending_tab": "deliverability",
        "windows": health.deliverability(request.workspace),
        "lines": {
            "bounce": [line * 100 for line in health.BOUNCE_LINES],
            "complaint": [line * 100 for line in health.COMPLAINT_LINES],
            "unsubscribe": [line * 100 for line in health.UNSUBSCRIBE_LINES],
        },
        "small_sample": health.SMALL_SAMPLE,
    }
    return _render(request, "campaigns/messages/deliverability.html", context)

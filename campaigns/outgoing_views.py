"""Outgoing webhook pages under /w/<workspace_slug>/settings/webhooks/: the endpoints, their
delivery log, a test ping and "retry now". Everyone in the workspace reads them; owners
and admins change them. An endpoint's secret is shown once, when it is created or rotated.
"""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from workspaces.access import get_owned_or_404
from workspaces.forms import add_service_errors
from workspaces.htmx import form_error_status
from workspaces.models import Role
from workspaces.roles import requires_role

from .models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from .outgoing_forms import WebhookEndpointForm
from .sending import outgoing

admins_write = requires_role(read=Role.VIEWER, write=Role.ADMIN)
LOG_PAGE = 50


def _endpoint(request: HttpRequest, webhook_id: object) -> WebhookEndpoint:
    return get_owned_or_404(WebhookEndpoint, request.workspace, webhook_id)


def _secret_page(request: HttpRequest, endpoint: WebhookEndpoint, *, created: bool) -> HttpResponse:
    context = {"endpoint": endpoint, "secret": endpoint.secret, "created": created}
    return render(request, "campaigns/webhooks/secret.html", context)


@admins_write
def webhook_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    latest = WebhookDelivery.objects.for_workspace(request.workspace).filter(
        endpoint=OuterRef("pk")
    )
    endpoints = WebhookEndpoint.objects.for_workspace(request.workspace).annotate(
        last_status=Subquery(latest.order_by("-created_at").values("status")[:1]),
        last_at=Subquery(latest.order_by("-created_at").values("created_at")[:1]),
    )
    labels = dict(outgoing.event_choices())
    return render(
        request,
        "campaigns/webhooks/list.html",
        {"endpoints": endpoints, "labels": labels, "tab": "webhooks"},
    )


@admins_write
def webhook_new(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    if request.method != "POST":
        form = WebhookEndpointForm()
        return render(request, "campaigns/webhooks/form.html", {"form": form, "endpoint": None})
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint = outgoing.create_endpoint(
                request.workspace,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _secret_page(request, endpoint, created=True)
    return render(
        request,
        "campaigns/webhooks/form.html",
        {"form": form, "endpoint": None},
        status=form_error_status(request),
    )


@admins_write
def webhook_edit(request: HttpRequest, workspace_slug: str, webhook_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "active": endpoint.active,
    }
    if request.method != "POST":
        form = WebhookEndpointForm(initial=initial)
        return render(request, "campaigns/webhooks/form.html", _edit_context(endpoint, form))
    form = WebhookEndpointForm(request.POST, initial=initial)
    if form.is_valid():
        was_active = endpoint.active
        try:
            outgoing.update_endpoint(endpoint, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if endpoint.active and not was_active:
                messages.success(request, "Endpoint turned back on. Waiting deliveries go out.")
            else:
                messages.success(request, "Endpoint saved.")
            return redirect("webhook_edit", workspace_slug=workspace_slug, webhook_id=webhook_id)
    endpoint.refresh_from_db()
    return render(
        request,
        "campaigns/webhooks/form.html",
        _edit_context(endpoint, form),
        status=form_error_status(request),
    )


def _edit_context(endpoint: WebhookEndpoint, form: WebhookEndpointForm) -> dict:
    return {"form": form, "endpoint": endpoint}


@require_POST
@admins_write
def webhook_delete(request: HttpRequest, workspace_slug: str, webhook_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    outgoing.delete_endpoint(endpoint)
    messages.success(request, f"Endpoint {endpoint.url} deleted, with its delivery log.")
    return redirect("webhook_list", workspace_slug=workspace_slug)


@require_POST
@admins_write
def webhook_rotate_secret(
    request: HttpRequest, workspace_slug: str, webhook_id: str
) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    outgoing.rotate_secret(endpoint)
    return _secret_page(request, endpoint, created=False)


@require_POST
@admins_write
def webhook_test(request: HttpRequest, workspace_slug: str, webhook_id: str) -> HttpResponse:
    """Send a ping now and say what the endpoint answered."""
    endpoint = _endpoint(request, webhook_id)
    delivery = outgoing.ping(endpoint)
    if delivery.status == DeliveryStatus.SUCCEEDED:
        answered = delivery.response_status
        messages.success(request, f"Ping delivered: the endpoint answered {answered}.")
    else:
        messages.error(request, f"The ping was not delivered. {delivery.error}")
    return redirect("webhook_deliveries", workspace_slug=workspace_slug, webhook_id=webhook_id)


@admins_write
def webhook_deliveries(request: HttpRequest, workspace_slug: str, webhook_id: str) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    log = WebhookDelivery.objects.for_workspace(request.workspace).filter(endpoint=endpoint)
    status = request.GET.get("status", "")
    if status in DeliveryStatus.values:
        log = log.filter(status=status)
    before = _cursor(request.GET.get("before", ""))
    if before is not None:
        log = log.filter(created_at__lt=before)
    rows = list(log.order_by("-created_at", "-pk")[: LOG_PAGE + 1])
    older = rows[LOG_PAGE - 1].created_at if len(rows) > LOG_PAGE else None
    rows = rows[:LOG_PAGE]
    for row in rows:
        row.payload_text = json.dumps(row.payload, indent=2, ensure_ascii=False)
    context = {
        "endpoint": endpoint,
        "deliveries": rows,
        "status": status,
        "statuses": DeliveryStatus.choices,
        "older": older.isoformat() if older else None,
        "paged": before is not None,
    }
    return render(request, "campaigns/webhooks/deliveries.html", context)


def _cursor(value: str) -> dt.datetime | None:
    try:
        return parse_datetime(value) if value else None
    except ValueError:
        return None


@require_POST
@admins_write
def webhook_retry(
    request: HttpRequest, workspace_slug: str, webhook_id: str, delivery_id: str
) -> HttpResponse:
    endpoint = _endpoint(request, webhook_id)
    delivery = (
        WebhookDelivery.objects.for_workspace(request.workspace)
        .filter(endpoint=endpoint, public_id=delivery_id)
        .select_related("endpoint", "workspace")
        .first()
    )
    if delivery is None:
        raise Http404("No such delivery.")
    try:
        delivery = outgoing.retry_now(delivery)
    except outgoing.NotRetryable as exc:
        messages.error(request, str(exc))
        return redirect("webhook_deliveries", workspace_slug=workspace_slug, webhook_id=webhook_id)
    if delivery.status == DeliveryStatus.SUCCEEDED:
        answered = delivery.response_status
        messages.success(request, f"Delivered: the endpoint answered {answered}.")
    else:
        messages.error(request, f"Still not delivered. {delivery.error}")
    return redirect("webhook_deliveries", workspace_slug=workspace_slug, webhook_id=webhook_id)

"""The Sending settings page under /w/<workspace_slug>/settings/sending/: which ESP the
workspace sends through, its credentials (stored encrypted, never shown again), the send
rate, a test send, pause and resume, and the webhook URL to enter at the ESP.

Everyone in the workspace reads the page (without secrets or the webhook URL); owners and
admins change it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.shortcuts import render as django_render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from workspaces.forms import add_service_errors
from workspaces.htmx import form_error_status
from workspaces.models import Role
from workspaces.roles import requires_role

from .esp_forms import EspConnectionForm
from .models import EspConnection
from .sending import esp

admins_write = requires_role(read=Role.VIEWER, write=Role.ADMIN)
PAGE = "campaigns/esp/settings.html"


def render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    with timezone.override(request.workspace.timezone):
        return django_render(request, template, context, status=status)


def _form_for(
    request: HttpRequest, connection: EspConnection, provider_key: str | None, data=None
) -> EspConnectionForm:  # type: ignore[no-untyped-def]
    provider = esp.PROVIDERS.get(provider_key or "") or esp.provider_of(connection)
    return EspConnectionForm(
        data,
        provider=provider,
        connection=connection,
        stored_secrets=esp.stored_secret_names(connection),
    )


def _context(request: HttpRequest, connection: EspConnection, form: EspConnectionForm) -> dict:
    workspace = request.workspace
    can_admin = Role.at_least(request.workspace_role, Role.ADMIN)
    provider = esp.provider_of(connection)
    return {
        "tab": "sending",
        "connection": connection,
        "saved": connection.pk is not None,
        "provider": provider,
        "form": form,
        "form_provider": form.provider,
        "webhook_url": esp.webhook_url(workspace, connection) if can_admin else None,
        "webhook_auth": esp.webhook_basic_auth(workspace, connection) if can_admin else None,
        "has_webhooks": bool(provider.webhook_esp),
        "sandbox_default": esp.PROVIDERS["sandbox"].backend == settings.EMAIL_BACKEND,
    }


@admins_write
@vary_on_headers("HX-Request")
def esp_settings(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    connection = esp.current_connection(workspace)
    if request.method != "POST":
        form = _form_for(request, connection, request.GET.get("provider"))
        if request.htmx and request.GET.get("provider"):
            return render(request, f"{PAGE}#connection_form", _context(request, connection, form))
        return render(request, PAGE, _context(request, connection, form))

    form = _form_for(request, connection, request.POST.get("provider"), request.POST)
    if form.is_valid():
        try:
            esp.save_connection(
                workspace,
                provider=form.cleaned_data["provider"],
                secrets_entered=form.secrets_entered(),
                options=form.options(),
                rate_per_second=form.cleaned_data["rate_per_second"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Sending settings saved: {form.provider.label}.")
            return redirect("esp_settings", workspace_slug=workspace_slug)
    connection = esp.current_connection(workspace)
    status = form_error_status(request)
    template = f"{PAGE}#connection_form" if request.htmx else PAGE
    return render(request, template, _context(request, connection, form), status=status)


@require_POST
@admins_write
def esp_send_test(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """Send a short email through the workspace's connection to the signed-in user."""
    workspace = request.workspace
    result = esp.send_test_email(workspace, to=request.user.email)
    if request.htmx:
        connection = esp.current_connection(workspace)
        context = _context(request, connection, _form_for(request, connection, None))
        context["send"] = result
        status = 200 if result.ok else form_error_status(request)
        return render(request, f"{PAGE}#status", context, status=status)
    if result.ok and result.provider == "sandbox":
        messages.success(request, f"Test sent to {result.to}; find it in the Sandbox inbox.")
    elif result.ok:
        messages.success(request, f"Test sent to {result.to}. The connection works.")
    else:
        messages.error(request, "The test was not sent: see the ESP's answer below.")
    return redirect("esp_settings", workspace_slug=workspace_slug)


@require_POST
@admins_write
def esp_pause(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    esp.pause_sending(request.workspace)
    messages.success(request, "Sending paused. Emails wait in the queue until you resume.")
    return redirect("esp_settings", workspace_slug=workspace_slug)


@require_POST
@admins_write
def esp_resume(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    esp.resume_sending(request.workspace)
    messages.success(request, "Sending resumed.")
    return redirect("esp_settings", workspace_slug=workspace_slug)

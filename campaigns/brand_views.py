"""The brand kit page under /w/<workspace_slug>/templates/brand/: colours, fonts, logo,
footer, social links and sender, with a preview of a template dressed in them.
Everyone reads; admins change it (it changes every template at once)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from workspaces.forms import add_service_errors
from workspaces.htmx import form_error_status
from workspaces.models import Role
from workspaces.roles import requires_role
from workspaces.services import update_workspace_settings

from . import gallery, services
from .brand_forms import BrandKitForm, LogoForm

admins_write = requires_role(read=Role.VIEWER, write=Role.ADMIN)
PAGE = "campaigns/brand/kit.html"


def _page(request: HttpRequest, form: BrandKitForm, logo_form: LogoForm, status: int = 200):  # type: ignore[no-untyped-def]
    workspace = request.workspace
    starter = gallery.get_starter("welcome")
    kit = services.brand_kit_for(workspace)
    return render(
        request,
        PAGE,
        {
            "form": form,
            "logo_form": logo_form,
            "kit": kit,
            "logo_url": services.logo_url(kit),
            "preview": {
                "result": services.preview(workspace, starter.content()),
                "sender": workspace.default_from_name or workspace.name,
                "preheader": starter.preheader,
            },
        },
        status=status,
    )


@admins_write
def brand_kit(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    kit = services.brand_kit_for(workspace)
    form = BrandKitForm(request.POST or None, kit=kit, workspace=workspace)
    if request.method == "POST":
        if form.is_valid():
            try:
                with transaction.atomic():
                    services.update_brand_kit(workspace, **form.brand_fields())
                    update_workspace_settings(workspace=workspace, **form.sender_fields())
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, "Brand kit saved. Every template now uses it.")
                return redirect("brand_kit", workspace_slug=workspace_slug)
        return _page(request, form, LogoForm(), status=form_error_status(request))
    return _page(request, form, LogoForm())


@require_POST
@admins_write
def brand_logo_upload(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    logo_form = LogoForm(request.POST, request.FILES)
    if logo_form.is_valid():
        try:
            services.set_logo(workspace, logo_form.cleaned_data["logo"].read())
        except ValidationError as error:
            add_service_errors(logo_form, error)
        else:
            messages.success(request, "Logo uploaded.")
            return redirect("brand_kit", workspace_slug=workspace_slug)
    form = BrandKitForm(kit=services.brand_kit_for(workspace), workspace=workspace)
    return _page(request, form, logo_form, status=form_error_status(request))


@require_POST
@admins_write
def brand_logo_remove(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    services.remove_logo(request.workspace)
    messages.success(request, "Logo removed; emails show your workspace name instead.")
    return redirect("brand_kit", workspace_slug=workspace_slug)

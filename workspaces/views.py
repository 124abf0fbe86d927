"""Workspace pages under /w/<workspace_slug>/: dashboard, settings, members, API keys and
the sandbox inbox. WorkspaceMiddleware has already checked membership and role."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from . import services
from .access import get_member_or_404, get_owned_or_404
from .forms import (
    ApiKeyForm,
    InviteForm,
    RoleForm,
    WorkspaceSettingsForm,
    add_service_errors,
    role_choices,
)
from .htmx import form_error_status
from .models import ApiKey, Invitation, Membership, Role, SandboxMessage
from .roles import requires_role

SANDBOX_PAGE_SIZE = 50


def dashboard(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    steps = [
        {
            "title": "Add your sender details",
            "text": "The name and address your emails come from, and the postal address "
            "every marketing email must show.",
            "done": bool(workspace.default_from_email and workspace.postal_address),
            "url_name": "settings",
        },
        {
            "title": "Invite your team",
            "text": "Editors build emails and journeys; viewers see the numbers.",
            "done": Membership.objects.filter(workspace=workspace).count() > 1,
            "url_name": "members",
        },
        {
            "title": "Connect your website or shop",
            "text": "Create an API key so your site can send sign-ups, page views and orders.",
            "done": ApiKey.objects.for_workspace(workspace).exists(),
            "url_name": "api_keys",
        },
    ]
    return render(request, "workspaces/dashboard.html", {"steps": steps})


@requires_role(write=Role.ADMIN)
def settings_general(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = WorkspaceSettingsForm(request.POST or None, instance=request.workspace)
    if request.method == "POST" and form.is_valid():
        services.update_workspace_settings(
            workspace=request.workspace, **{f: form.cleaned_data[f] for f in form.Meta.fields}
        )
        messages.success(request, "Settings saved.")
        return redirect("settings", workspace_slug=workspace_slug)
    return render(request, "workspaces/settings.html", {"form": form})


# --- members ---------------------------------------------------------------------------


def _members_context(request: HttpRequest, invite_form: InviteForm | None = None) -> dict:
    workspace = request.workspace
    return {
        "members": Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("created_at"),
        "agency_members": Membership.objects.filter(agency_id=workspace.agency_id)
        .select_related("user")
        .order_by("created_at")
        if workspace.agency_id
        else [],
        "invitations": Invitation.objects.for_workspace(workspace).filter(
            accepted_at__isnull=True, revoked_at__isnull=True
        ),
        "invite_form": invite_form or InviteForm(acting_role=request.workspace_role),
        "role_choices": role_choices(request.workspace_role),
    }


@vary_on_headers("HX-Request")
@requires_role(write=Role.ADMIN)
def members(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(request, "workspaces/members.html", _members_context(request))


@require_POST
@requires_role(write=Role.ADMIN)
def member_invite(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = InviteForm(request.POST, acting_role=request.workspace_role)
    if form.is_valid():
        try:
            invite = services.invite_member(
                workspace=request.workspace,
                invited_by=request.user,
                acting_role=request.workspace_role,
                **form.cleaned_data,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invite.email}.")
            form = None
    context = _members_context(request, invite_form=form)
    template = "workspaces/members.html#invitations" if request.htmx else "workspaces/members.html"
    status = form_error_status(request) if form is not None else 200
    return render(request, template, context, status=status)


@require_POST
@requires_role(write=Role.ADMIN)
def member_role(request: HttpRequest, workspace_slug: str, member_id: str) -> HttpResponse:
    member = get_member_or_404(request.workspace, member_id)
    form = RoleForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.change_member_role(
                workspace=request.workspace,
                membership=member,
                role=form.cleaned_data["role"],
                acting_role=request.workspace_role,
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
            member.refresh_from_db()
    else:
        error = "Choose one of the listed roles."
    context = {
        "member": member,
        "error": error,
        "role_choices": role_choices(request.workspace_role),
        "can_admin": True,
    }
    if request.htmx:
        return render(request, "workspaces/members.html#member-row", context)
    if error:
        messages.error(request, error)
    return redirect("members", workspace_slug=workspace_slug)


@require_POST
@requires_role(write=Role.ADMIN)
def member_remove(request: HttpRequest, workspace_slug: str, member_id: str) -> HttpResponse:
    member = get_member_or_404(request.workspace, member_id)
    try:
        services.remove_member(
            workspace=request.workspace, membership=member, acting_role=request.workspace_role
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{member.user.email} was removed.")
    return redirect("members", workspace_slug=workspace_slug)


@require_POST
@requires_role(write=Role.ADMIN)
def invitation_revoke(
    request: HttpRequest, workspace_slug: str, invitation_id: str
) -> HttpResponse:
    invite = get_owned_or_404(Invitation, request.workspace, invitation_id)
    services.revoke_invitation(workspace=request.workspace, invitation=invite)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, f"Invitation to {invite.email} withdrawn.")
    return redirect("members", workspace_slug=workspace_slug)


# --- API keys --------------------------------------------------------------------------


def _api_keys_context(request: HttpRequest, form: ApiKeyForm | None = None) -> dict:
    return {
        "api_keys": ApiKey.objects.for_workspace(request.workspace).order_by("-created"),
        "form": form or ApiKeyForm(),
    }


@requires_role(read=Role.ADMIN, write=Role.ADMIN)
def api_keys(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(request, "workspaces/api_keys.html", _api_keys_context(request))


@require_POST
@requires_role(read=Role.ADMIN, write=Role.ADMIN)
def api_key_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    secret = None
    if form.is_valid():
        _, secret = services.create_api_key(
            workspace=request.workspace, name=form.cleaned_data["name"], created_by=request.user
        )
        form = None
    context = {**_api_keys_context(request, form), "new_secret": secret}
    template = "workspaces/api_keys.html#keys" if request.htmx else "workspaces/api_keys.html"
    return render(request, template, context, status=200 if secret else form_error_status(request))


@require_POST
@requires_role(read=Role.ADMIN, write=Role.ADMIN)
def api_key_revoke(request: HttpRequest, workspace_slug: str, key_id: str) -> HttpResponse:
    api_key = get_owned_or_404(ApiKey, request.workspace, key_id)
    services.revoke_api_key(workspace=request.workspace, api_key=api_key)
    messages.success(request, f"Key “{api_key.name}” revoked. Requests using it now get 401.")
    return redirect("api_keys", workspace_slug=workspace_slug)


# --- sandbox inbox ---------------------------------------------------------------------


# Admins only: the sandbox holds live links (invitations, later password-less logins).
@requires_role(read=Role.ADMIN, write=Role.ADMIN)
def sandbox_inbox(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    inbox = SandboxMessage.objects.for_workspace(request.workspace).only(
        "public_id", "subject", "to", "from_email", "created_at"
    )[:SANDBOX_PAGE_SIZE]
    return render(request, "workspaces/sandbox_inbox.html", {"inbox": inbox})


@requires_role(read=Role.ADMIN, write=Role.ADMIN)
def sandbox_message(request: HttpRequest, workspace_slug: str, message_id: str) -> HttpResponse:
    message = get_owned_or_404(SandboxMessage, request.workspace, message_id)
    return render(request, "workspaces/sandbox_message.html", {"message": message})

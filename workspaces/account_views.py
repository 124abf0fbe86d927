"""Sign-up, log-in, invitations and new workspaces: pages outside any one workspace."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import services
from .access import agencies_managed_by, workspaces_for_user
from .forms import LoginForm, SignupForm, WorkspaceCreateForm, add_service_errors
from .services import InvitationError


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    workspace = workspaces_for_user(request.user).first()
    if workspace is None:
        return redirect("workspace_new")
    return redirect("dashboard", workspace_slug=workspace.slug)


def signup(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("invitation", "")
    invitation = None
    if token:
        try:
            invitation = services.open_invitation(token)
        except InvitationError as exc:
            return render(request, "accounts/invitation_error.html", {"error": exc}, status=400)
    form = SignupForm(request.POST or None, invited_email=invitation.email if invitation else None)
    if request.method == "POST" and form.is_valid():
        try:
            user, workspace = _create_account(form.cleaned_data, token)
        except (ValidationError, InvitationError) as exc:
            form.add_error(None, exc if isinstance(exc, ValidationError) else str(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("dashboard", workspace_slug=workspace.slug)
    return render(request, "accounts/signup.html", {"form": form, "invitation": invitation})


def _create_account(data: dict, token: str):  # type: ignore[no-untyped-def]
    if not token:
        return services.sign_up(
            email=data["email"],
            password=data["password"],
            full_name=data["full_name"],
            workspace_name=data["workspace_name"],
            agency_name=data.get("agency_name", ""),
        )
    user = services.create_user(
        email=data["email"], password=data["password"], full_name=data["full_name"]
    )
    membership = services.accept_invitation(token=token, user=user)
    return user, membership.workspace


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invite = services.open_invitation(token)
    except InvitationError as exc:
        return render(request, "accounts/invitation_error.html", {"error": exc}, status=400)
    context = {
        "invitation": invite,
        "token": token,
        "has_account": services.email_taken(invite.email),
        "email_matches": request.user.is_authenticated
        and request.user.email.lower() == invite.email,
        "login_url": f"{reverse('login')}?next={request.path}",
        "signup_url": f"{reverse('signup')}?invitation={token}",
    }
    return render(request, "accounts/invitation.html", context)


@login_required
@require_POST
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        membership = services.accept_invitation(token=token, user=request.user)
    except InvitationError as exc:
        return render(request, "accounts/invitation_error.html", {"error": exc}, status=400)
    messages.success(request, f"Welcome to {membership.workspace.name}.")
    return redirect("dashboard", workspace_slug=membership.workspace.slug)


@login_required
def workspace_new(request: HttpRequest) -> HttpResponse:
    agencies = agencies_managed_by(request.user)
    form = WorkspaceCreateForm(request.POST or None, agencies=agencies)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.create_workspace(
                user=request.user,
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                agency=form.cleaned_data.get("agency"),
                timezone_name=form.cleaned_data["timezone"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Workspace “{workspace.name}” created.")
            return redirect("dashboard", workspace_slug=workspace.slug)
    return render(request, "accounts/workspace_new.html", {"form": form})

"""Forms for sign-up, log-in, workspace settings, members and API keys."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from . import login_throttle
from .models import Agency, Role, Workspace
from .services import email_taken
from .timezones import known_timezones

TIMEZONE_CHOICES = [(name, name) for name in sorted(known_timezones())]


class SignupForm(forms.Form):
    full_name = forms.CharField(max_length=150, label="Your name")
    email = forms.EmailField(label="Work email")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters, not a common password.",
    )
    workspace_name = forms.CharField(
        max_length=120, label="Business name", help_text="Your first workspace. Add more later."
    )
    agency_name = forms.CharField(
        max_length=120,
        required=False,
        label="Agency name (optional)",
        help_text="Fill this in if you run email for several clients.",
    )

    def __init__(self, *args: Any, invited_email: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invited_email = invited_email
        if invited_email:
            self.fields["email"].initial = invited_email
            self.fields["email"].disabled = True
            self.fields["workspace_name"].required = False
            self.fields["workspace_name"].widget = forms.HiddenInput()
            self.fields["agency_name"].widget = forms.HiddenInput()

    def clean_email(self) -> str:
        email = self.invited_email or self.cleaned_data["email"]
        if email_taken(email):
            raise ValidationError("An account with this email already exists. Log in instead.")
        return email.strip().lower()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            probe = _UserProbe(cleaned.get("email", ""), cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, probe)
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class _UserProbe:
    """Enough of a user for the similarity validator before the user exists."""

    def __init__(self, email: str, full_name: str) -> None:
        self.email = email
        self.username = email
        self.first_name, _, self.last_name = full_name.partition(" ")


class LoginForm(AuthenticationForm):
    """Email and password, with failed attempts throttled per address and client."""

    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don't match. Check both and try again.",
    }

    def clean(self) -> dict[str, Any]:
        email = (self.cleaned_data.get("username") or "").lower()
        self.cleaned_data["username"] = email
        client = _client_address(self.request)
        if login_throttle.is_blocked(email, client):
            raise ValidationError(
                f"Too many failed attempts. Wait {login_throttle.window_minutes()} minutes, "
                "or reset your password.",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            login_throttle.record_failure(email, client)
            raise
        login_throttle.clear(email, client)
        return cleaned


def _client_address(request: HttpRequest | None) -> str:
    return request.META.get("REMOTE_ADDR", "") if request else ""


class WorkspaceCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label="Workspace name")
    slug = forms.SlugField(
        max_length=60,
        required=False,
        label="Address",
        help_text="Appears in links: /w/<address>/. Leave blank to derive it from the name.",
    )
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC")
    agency = forms.ModelChoiceField(
        queryset=Agency.objects.none(),
        required=False,
        empty_label="No agency (my own business)",
        help_text="Create it as a client workspace of your agency.",
    )

    def __init__(self, *args: Any, agencies: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if agencies is not None and agencies.exists():
            self.fields["agency"].queryset = agencies
        else:
            del self.fields["agency"]


class WorkspaceSettingsForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES)

    class Meta:
        model = Workspace
        fields = ["name", "timezone", "default_from_name", "default_from_email", "postal_address"]
        labels = {"default_from_name": "Sender name", "default_from_email": "Sender email"}
        widgets = {"postal_address": forms.Textarea(attrs={"rows": 3})}


def role_choices(acting_role: str) -> list[tuple[str, str]]:
    """Roles the acting member may hand out: only owners create owners."""
    return [(value, label) for value, label in Role.choices if Role.at_least(acting_role, value)]


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)

    def __init__(self, *args: Any, acting_role: str = Role.VIEWER, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(acting_role)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=50, label="Key name", help_text="Where it is used.")


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form, by field where it names one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)

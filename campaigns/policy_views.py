"""The sending policy page, /w/<workspace_slug>/settings/sending/policy/: the rules every
marketing email of the workspace follows, campaigns and journeys alike (frequency caps,
quiet hours, the sunset rule, tracking and UTM tags). Everyone reads; admins change it."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from workspaces.htmx import form_error_status
from workspaces.models import Role
from workspaces.roles import requires_role

from . import services
from .models import SendingPolicy

POLICY_FIELDS = (
    "daily_cap", "weekly_cap", "quiet_start", "quiet_end", "sunset_days", "track_opens",
    "track_clicks", "utm_enabled", "utm_source", "utm_medium",
)  # fmt: skip


class SendingPolicyForm(forms.ModelForm):
    class Meta:
        model = SendingPolicy
        fields = POLICY_FIELDS
        labels = {
            "daily_cap": "At most this many marketing emails a day per contact",
            "weekly_cap": "At most this many a week per contact",
            "quiet_start": "Quiet hours start",
            "quiet_end": "Quiet hours end",
            "sunset_days": "Stop mailing contacts with no opens or clicks for this many days",
            "utm_enabled": "Add UTM tags to links",
        }
        help_texts = {
            "daily_cap": "Empty: no daily cap. Transactional email is never capped.",
            "quiet_start": "In each contact's own timezone. Email due in quiet hours waits "
            "until they end; it is never dropped.",
            "sunset_days": "Empty: never. Keeps your sender reputation clean.",
        }
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self):  # type: ignore[no-untyped-def]
        cleaned = super().clean()
        start, end = cleaned.get("quiet_start"), cleaned.get("quiet_end")
        if (start is None) != (end is None):
            raise forms.ValidationError("Give quiet hours both a start and an end, or neither.")
        if start is not None and start == end:
            raise forms.ValidationError("Quiet hours cannot start and end at the same time.")
        daily, weekly = cleaned.get("daily_cap"), cleaned.get("weekly_cap")
        if daily and weekly and daily > weekly:
            self.add_error("weekly_cap", "The weekly cap cannot be lower than the daily cap.")
        return cleaned


@requires_role(read=Role.VIEWER, write=Role.ADMIN)
def sending_policy(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    policy = services.sending_policy_for(request.workspace)
    form = SendingPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Sending policy saved. It applies from the next send.")
            return redirect("sending_policy", workspace_slug=workspace_slug)
        status = form_error_status(request)
        return render(request, "campaigns/policy.html", {"form": form}, status=status)
    return render(request, "campaigns/policy.html", {"form": form})

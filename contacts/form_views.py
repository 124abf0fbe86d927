"""The signup form builder under /w/<workspace_slug>/forms/: list, create, edit with a live
preview, the hosted link and embed snippets, switch on/off, delete. Viewers look, editors
change (WorkspaceMiddleware enforces it)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms.models import fields_for_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.html import escape
from django.views.decorators.http import require_POST

from workspaces.access import get_owned_or_404
from workspaces.forms import add_service_errors
from workspaces.models import Workspace

from . import signup_forms
from .models import LifecycleStage, Persona, SignupForm, Topic
from .public_views import submission_form

TEXT_SETTINGS = [
    "name",
    "title",
    "intro",
    "button_label",
    "consent_text",
    "double_opt_in",
    "success_message",
    "lead_magnet_subject",
    "lead_magnet_body",
]
LABELS = {
    "name": "Form name",
    "title": "Heading",
    "intro": "Introduction",
    "consent_text": "Consent text",
    "double_opt_in": "Double opt-in: people confirm by email before they are subscribed",
    "success_message": "Success message",
    "lead_magnet_subject": "Email subject",
    "lead_magnet_body": "Email message",
}
HELP_TEXTS = {
    "name": "For you; visitors don't see it. Consent records name it as their source.",
    "intro": "A line or two under the heading (optional).",
    "consent_text": "Shown next to a checkbox people must tick; kept word for word with "
    "each signup. Leave empty for no checkbox.",
    "success_message": "Shown once the form is sent. With double opt-in, ask people to "
    "check their inbox.",
    "lead_magnet_subject": "Leave empty for “Your download from <workspace>”.",
    "lead_magnet_body": "Plain text above the link.",
}
WIDGETS = {
    "intro": forms.Textarea(attrs={"rows": 2}),
    "consent_text": forms.Textarea(attrs={"rows": 2}),
    "success_message": forms.Textarea(attrs={"rows": 2}),
    "lead_magnet_body": forms.Textarea(attrs={"rows": 3}),
}
NEW_FORM_FIELDS = [{"key": "first_name", "required": False}]


class SignupFormBuilder(forms.Form):
    """Every setting of a signup form, as the builder page edits it."""

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields.update(
            fields_for_model(
                SignupForm,
                fields=TEXT_SETTINGS,
                labels=LABELS,
                help_texts=HELP_TEXTS,
                widgets=WIDGETS,
            )
        )
        self.fields["success_message"].required = False  # a redirect may replace it
        self.fields["consent_text"].required = False  # no text: no checkbox
        self.fields["redirect_url"] = forms.URLField(
            required=False,
            assume_scheme="https",
            label="Redirect to (optional)",
            help_text="A page of your site to send people to once they are subscribed "
            "(after confirming, with double opt-in) instead of showing the success message.",
        )
        self.fields["lead_magnet_url"] = forms.URLField(
            required=False,
            assume_scheme="https",
            label="Link to send",
            help_text="An e-book, a discount page, a download: emailed once the address is "
            "confirmed (at once without double opt-in).",
        )
        self.fields["topics"] = forms.ModelMultipleChoiceField(
            queryset=Topic.objects.for_workspace(workspace),
            to_field_name="public_id",
            required=False,
            widget=forms.CheckboxSelectMultiple,
            label="Topics offered",
            help_text="People choose at least one of those you offer.",
        )
        self.fields["tag_names"] = forms.CharField(
            required=False,
            max_length=1000,
            label="Tags",
            help_text="Comma-separated; new tags are created.",
        )
        self.fields["lifecycle_stage"] = forms.ModelChoiceField(
            queryset=LifecycleStage.objects.for_workspace(workspace),
            to_field_name="public_id",
            required=False,
            empty_label="None",
            label="Lifecycle stage",
            help_text="Set on people who have no stage yet.",
        )
        self.fields["persona"] = forms.ModelChoiceField(
            queryset=Persona.objects.for_workspace(workspace),
            to_field_name="public_id",
            required=False,
            empty_label="None",
            label="Persona",
            help_text="Set on people who have no persona yet.",
        )
        self.field_options = signup_forms.field_options(workspace)
        for option in self.field_options:
            self.fields[f"show_{option.key}"] = forms.BooleanField(
                required=False,
                label=f"Show {option.label}",
                widget=forms.CheckboxInput(attrs={"aria-label": f"Show {option.label}"}),
            )
            self.fields[f"required_{option.key}"] = forms.BooleanField(
                required=False,
                label=f"{option.label} is required",
                widget=forms.CheckboxInput(attrs={"aria-label": f"{option.label} is required"}),
            )

    def field_rows(self) -> list[tuple[signup_forms.FieldOption, Any, Any]]:
        return [
            (option, self[f"show_{option.key}"], self[f"required_{option.key}"])
            for option in self.field_options
        ]

    def field_specs(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        return [
            {"key": option.key, "required": bool(data.get(f"required_{option.key}"))}
            for option in self.field_options
            if data.get(f"show_{option.key}")
        ]

    def service_values(self) -> dict[str, Any]:
        """Keyword arguments for signup_forms.save_signup_form."""
        data = self.cleaned_data
        values = {name: data[name] for name in signup_forms.SETTINGS_FIELDS if name in data}
        return {
            **values,
            "fields": self.field_specs(),
            "topics": list(data.get("topics") or []),
            "tag_names": [t.strip() for t in (data.get("tag_names") or "").split(",")],
        }

    def preview(self) -> tuple[SignupForm, list[Topic]]:
        """An unsaved form from whatever is valid so far, for the live preview."""
        if not self.is_valid() and not hasattr(self, "cleaned_data"):
            self.cleaned_data = {}  # unbound: nothing to show but the defaults
        values = self.service_values()
        topics = values.pop("topics")
        values.pop("tag_names")
        shown = signup_forms.build_signup_form(workspace=self.workspace, **values)
        return shown, topics


def builder_initial(signup_form: SignupForm) -> dict[str, Any]:
    initial = {name: getattr(signup_form, name) for name in signup_forms.SETTINGS_FIELDS}
    initial["topics"] = list(signup_form.topics.all())
    initial["tag_names"] = ", ".join(tag.name for tag in signup_form.tags.all())
    for spec in signup_form.fields:
        initial[f"show_{spec['key']}"] = True
        initial[f"required_{spec['key']}"] = bool(spec.get("required"))
    return initial


def _new_form_defaults(workspace: Workspace) -> SignupForm:
    return signup_forms.build_signup_form(workspace=workspace, fields=NEW_FORM_FIELDS)


def share_links(signup_form: SignupForm) -> dict[str, str]:
    hosted = signup_forms.hosted_url(signup_form)
    script = settings.SITE_URL + static("js/mailpath-form.js")
    return {
        "hosted_url": hosted,
        "iframe_snippet": (
            f'<iframe src="{hosted}?embed=1" title="{escape(signup_form.title)}" loading="lazy" '
            'style="width:100%;max-width:480px;height:560px;border:0"></iframe>'
        ),
        "script_snippet": (
            f'<div data-mailpath-form="{signup_forms.embed_url(signup_form)}"></div>\n'
            f'<script src="{script}" defer></script>'
        ),
    }


# --- pages -----------------------------------------------------------------------------


def form_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    signup_forms_ = SignupForm.objects.for_workspace(request.workspace).order_by("name")
    return render(request, "contacts/forms/list.html", {"signup_forms": signup_forms_})


def form_new(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    defaults = _new_form_defaults(workspace)
    builder = SignupFormBuilder(
        request.POST if request.method == "POST" else None,
        workspace=workspace,
        initial=builder_initial_new(defaults),
    )
    if request.method == "POST" and builder.is_valid():
        try:
            signup_form = signup_forms.save_signup_form(
                workspace=workspace, **builder.service_values()
            )
        except ValidationError as exc:
            add_service_errors(builder, exc)
        else:
            messages.success(request, f"“{signup_form.name}” is live. Share it or embed it below.")
            return redirect(
                "signup_form_edit", workspace_slug=workspace_slug, form_id=signup_form.public_id
            )
    if request.method == "POST":
        preview, topics = builder.preview()
    else:
        preview, topics = defaults, []
    context = {"builder": builder, "signup_form": None, **_preview_context(preview, topics)}
    status = 400 if request.method == "POST" else 200
    return render(request, "contacts/forms/edit.html", context, status=status)


def builder_initial_new(defaults: SignupForm) -> dict[str, Any]:
    initial = {name: getattr(defaults, name) for name in signup_forms.SETTINGS_FIELDS}
    initial["name"] = ""
    for spec in defaults.fields:
        initial[f"show_{spec['key']}"] = True
    return initial


def form_edit(request: HttpRequest, workspace_slug: str, form_id: str) -> HttpResponse:
    workspace = request.workspace
    signup_form = get_owned_or_404(SignupForm, workspace, form_id)
    if request.method == "POST":
        builder = SignupFormBuilder(request.POST, workspace=workspace)
        if builder.is_valid():
            try:
                signup_forms.save_signup_form(
                    workspace=workspace, signup_form=signup_form, **builder.service_values()
                )
            except ValidationError as exc:
                add_service_errors(builder, exc)
                signup_form.refresh_from_db()
            else:
                messages.success(request, "Form saved. The hosted page shows it now.")
                return redirect("signup_form_edit", workspace_slug=workspace_slug, form_id=form_id)
        preview, topics = builder.preview()
        status = 400
    else:
        builder = SignupFormBuilder(workspace=workspace, initial=builder_initial(signup_form))
        preview, topics, status = signup_form, list(signup_form.topics.all()), 200
    context = {
        "builder": builder,
        "signup_form": signup_form,
        **share_links(signup_form),
        **_preview_context(preview, topics),
    }
    return render(request, "contacts/forms/edit.html", context, status=status)


@require_POST
def form_preview(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """The preview pane, redrawn from the builder's unsaved values as they change."""
    builder = SignupFormBuilder(request.POST, workspace=request.workspace)
    preview, topics = builder.preview()
    return render(request, "contacts/forms/edit.html#preview", _preview_context(preview, topics))


def _preview_context(preview: SignupForm, topics: list[Topic]) -> dict[str, Any]:
    return {"preview": preview, "preview_form": submission_form(preview, topics=topics)}


@require_POST
def form_set_active(request: HttpRequest, workspace_slug: str, form_id: str) -> HttpResponse:
    signup_form = get_owned_or_404(SignupForm, request.workspace, form_id)
    active = request.POST.get("active") == "true"
    signup_forms.set_signup_form_active(
        workspace=request.workspace, signup_form=signup_form, active=active
    )
    if active:
        messages.success(request, f"“{signup_form.name}” is live again.")
    else:
        messages.success(
            request, f"“{signup_form.name}” is switched off: its page and embeds show nothing."
        )
    return redirect("signup_form_edit", workspace_slug=workspace_slug, form_id=form_id)


@require_POST
def form_delete(request: HttpRequest, workspace_slug: str, form_id: str) -> HttpResponse:
    signup_form = get_owned_or_404(SignupForm, request.workspace, form_id)
    signup_forms.delete_signup_form(workspace=request.workspace, signup_form=signup_form)
    messages.success(request, f"“{signup_form.name}” was deleted. Its contacts stay.")
    return redirect("signup_forms", workspace_slug=workspace_slug)

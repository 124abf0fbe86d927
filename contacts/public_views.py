"""Public signup pages under /f/: the hosted form, the fragment the embed script shows, and
the confirmation link. No login; the form's public id names its workspace.

The form endpoints are exempt from CSRF protection on purpose. CSRF protection stops a
third-party page from using a visitor's session to act as them; these endpoints use no
session and grant nothing a stranger could not do by opening the form, so a forged
request gains nothing. The form is meant to be posted from other sites (the embed script)
and from inside iframes, where browsers withhold the CSRF cookie. What protects them is a
honeypot field, a per-address rate limit and double opt-in (nobody is subscribed without
confirming from their own inbox).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from workspaces.forms import add_service_errors

from . import signup_forms
from .attributes import clean_custom_value, clean_date
from .models import FieldType, SignupForm, Topic
from .signup_forms import ShownField

HONEYPOT = "website"


class AttributeField(forms.CharField):
    """A text input whose value is checked by one of contacts.attributes' cleaners."""

    def __init__(self, *, clean_value: Any, **kwargs: Any) -> None:
        self.clean_value = clean_value
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        return self.clean_value(value) if value not in (None, "") else None


class SignupSubmissionForm(forms.Form):
    """What a visitor fills in, built from the signup form's settings."""

    email = forms.EmailField(
        label="Email",
        max_length=254,
        error_messages={
            "required": "Enter your email address.",
            "invalid": "Enter a valid email address, like name@example.com.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.com"}),
    )

    def __init__(
        self, *args: Any, signup_form: SignupForm, topics: list[Topic], **kwargs: Any
    ) -> None:
        kwargs.setdefault("auto_id", f"mp-{str(signup_form.public_id)[:8]}-%s")
        super().__init__(*args, **kwargs)
        self.signup_form = signup_form
        self.offered_topics = topics
        self.shown = signup_forms.shown_fields(signup_form)
        for shown in self.shown:
            self.fields[shown.option.key] = _form_field(shown)
        if topics:
            self.fields["topics"] = forms.MultipleChoiceField(
                label="What would you like to hear about?",
                choices=[(str(t.public_id), t.name) for t in topics],
                initial=[str(t.public_id) for t in topics if t.default_subscribed],
                widget=forms.CheckboxSelectMultiple,
                required=True,
                error_messages={"required": "Choose at least one topic."},
            )
        if signup_form.consent_text.strip():
            self.fields["consent"] = forms.BooleanField(
                label=signup_form.consent_text,
                error_messages={"required": "Tick this box to agree to receive our emails."},
            )
        self.fields[HONEYPOT] = forms.CharField(
            required=False,
            label="Leave this empty",
            widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
        )

    @property
    def honeypot_filled(self) -> bool:
        return bool((self.data.get(HONEYPOT) or "").strip())

    @property
    def honeypot(self) -> forms.BoundField:
        return self[HONEYPOT]

    def visible_signup_fields(self) -> list[forms.BoundField]:
        skip = {HONEYPOT, "topics", "consent"}
        return [self[name] for name in self.fields if name not in skip]

    def contact_row(self) -> dict[str, Any]:
        """The cleaned answers as an upsert row; blanks left out so they overwrite nothing."""
        row: dict[str, Any] = {"email": self.cleaned_data["email"]}
        attributes = {}
        for shown in self.shown:
            value = self.cleaned_data.get(shown.option.key)
            if value in (None, ""):
                continue
            if shown.option.is_custom:
                attributes[shown.option.attribute] = value
            else:
                row[shown.option.key] = value
        if attributes:
            row["attributes"] = attributes
        return row

    def chosen_topics(self) -> list[Topic]:
        chosen = set(self.cleaned_data.get("topics") or [])
        return [t for t in self.offered_topics if str(t.public_id) in chosen]


def _form_field(shown: ShownField) -> forms.Field:
    option, label = shown.option, shown.label
    common = {
        "label": label,
        "required": shown.required,
        "error_messages": {"required": f"{label} is required."},
    }
    if option.field_type == FieldType.BOOLEAN:
        return forms.BooleanField(**common)
    if option.field_type == FieldType.CHOICE:
        choices = [("", "Choose…"), *((c, c) for c in option.choices)]
        return forms.ChoiceField(choices=choices, **common)
    if option.field_type == FieldType.DATE:
        widget = forms.DateInput(attrs={"type": "date"})
        cleaner = clean_date if not option.is_custom else _custom_cleaner(shown)
        return AttributeField(clean_value=cleaner, widget=widget, **common)
    if option.is_custom:
        attrs = {"inputmode": "decimal"} if option.field_type == FieldType.NUMBER else {}
        return AttributeField(
            clean_value=_custom_cleaner(shown),
            max_length=500,
            widget=forms.TextInput(attrs=attrs),
            **common,
        )
    if option.field_type == "phone":
        attrs = {"autocomplete": "tel", "type": "tel"}
        return forms.CharField(max_length=40, widget=forms.TextInput(attrs=attrs), **common)
    autocomplete = {"first_name": "given-name", "last_name": "family-name"}.get(option.key, "on")
    return forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"autocomplete": autocomplete}), **common
    )


def _custom_cleaner(shown: ShownField) -> Any:
    return lambda value: clean_custom_value(shown.definition, value)


def submission_form(
    signup_form: SignupForm, data: Any = None, topics: list[Topic] | None = None
) -> SignupSubmissionForm:
    if topics is None:
        topics = list(signup_form.topics.all())
    return SignupSubmissionForm(data, signup_form=signup_form, topics=topics)


# --- views -----------------------------------------------------------------------------


def _active_form_or_404(form_id: Any) -> SignupForm:
    signup_form = signup_forms.find_public_form(form_id)
    if signup_form is None:
        raise Http404("No such form.")
    return signup_form


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def hosted_form(request: HttpRequest, form_id: Any) -> HttpResponse:
    """The form on its own page; `?embed=1` drops the page chrome for an <iframe>."""
    signup_form = _active_form_or_404(form_id)
    embedded = request.GET.get("embed") == "1"
    context = {"embedded": embedded, "page_title": signup_form.title}
    if request.method != "POST":
        form = submission_form(signup_form)
        return _page(request, signup_form, "form", {**context, "form": form})
    outcome = _handle_submission(request, signup_form)
    if outcome.redirect_to and not embedded:
        return redirect(outcome.redirect_to)
    context = {**context, **outcome.context, "redirect_to": outcome.redirect_to}
    return _page(request, signup_form, outcome.state, context, outcome.status)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST", "OPTIONS"])
def embed_fragment(request: HttpRequest, form_id: Any) -> HttpResponse:
    """The bare form for the embed script to put into another site's page, and its answers.
    Readable from any origin; no cookies are read or set."""
    signup_form = _active_form_or_404(form_id)
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
    elif request.method == "POST":
        outcome = _handle_submission(request, signup_form)
        context = {**outcome.context, "redirect_to": outcome.redirect_to}
        response = _fragment(request, signup_form, outcome.state, context, outcome.status)
    else:
        response = _fragment(request, signup_form, "form", {"form": submission_form(signup_form)})
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "HEAD"])
def confirm(request: HttpRequest, form_id: Any, token: str) -> HttpResponse:
    """The link in the confirmation email. Works for a form switched off since the signup."""
    signup_form = signup_forms.find_public_form(form_id, active_only=False)
    if signup_form is None:
        raise Http404("No such form.")
    try:
        signup_forms.confirm_signup(
            signup_form=signup_form, token=token, ip_address=signup_forms.client_ip(request)
        )
    except signup_forms.ConfirmationError as exc:
        context = {"error": str(exc), "page_title": "Link not valid"}
        return _page(request, signup_form, "confirm_failed", context, status=400)
    if signup_form.redirect_url:
        return redirect(signup_form.redirect_url)
    return _page(request, signup_form, "confirmed", {"page_title": "Subscription confirmed"})


class _Outcome:
    def __init__(
        self,
        state: str,
        context: dict[str, Any],
        status: int = 200,
        redirect_to: str = "",
    ) -> None:
        self.state, self.context, self.status, self.redirect_to = (
            state,
            context,
            status,
            redirect_to,
        )


def _handle_submission(request: HttpRequest, signup_form: SignupForm) -> _Outcome:
    form = submission_form(signup_form, request.POST)
    ip_address = signup_forms.client_ip(request)
    if not signup_forms.allow_attempt(signup_form=signup_form, ip_address=ip_address):
        minutes = max(1, signup_forms.rate_window_seconds() // 60)
        form.add_error(
            None, f"Too many attempts from your network. Wait {minutes} minutes and try again."
        )
        return _Outcome("form", {"form": form}, status=429)
    if form.honeypot_filled:  # a bot: answer as if it worked, keep nothing
        return _Outcome("thanks", {"needs_confirmation": signup_form.double_opt_in})
    if form.is_valid():
        try:
            result = signup_forms.submit_signup_form(
                workspace=signup_form.workspace,
                signup_form=signup_form,
                row=form.contact_row(),
                topics=form.chosen_topics(),
                ip_address=ip_address,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if signup_form.redirect_url and not result.needs_confirmation:
                return _Outcome("thanks", {}, redirect_to=signup_form.redirect_url)
            return _Outcome("thanks", {"needs_confirmation": result.needs_confirmation})
    return _Outcome("form", {"form": form}, status=400)


def _page(
    request: HttpRequest,
    signup_form: SignupForm,
    state: str,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    context = {
        "signup_form": signup_form,
        "workspace": signup_form.workspace,
        "state": state,
        "action": request.get_full_path(),
        **context,
    }
    return render(request, "contacts/public/form_page.html", context, status=status)


def _fragment(
    request: HttpRequest,
    signup_form: SignupForm,
    state: str,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    context = {
        "signup_form": signup_form,
        "workspace": signup_form.workspace,
        "state": state,
        "action": signup_forms.hosted_url(signup_form),
        **context,
    }
    return render(request, "contacts/public/embed.html", context, status=status)

"""The Sending settings form: the provider, its secrets and options, the send rate.

The fields depend on the provider, so the form is built for one. A secret is never put
back into the page: a stored one shows "••••  set" as a placeholder and a blank entry
keeps it. Options that point Mailpath's outgoing connections somewhere (the API endpoint,
an SMTP host) only accept the ESP's own endpoints and public hosts.
"""

from __future__ import annotations

from typing import Any

from django import forms

from .models import EspConnection
from .sending import esp
from .sending.esp import MASK, MAX_RATE_PER_SECOND, Provider

SECRET_SET = f"{MASK}  set"


def provider_choices() -> list[tuple[str, str]]:
    return [(p.key, p.label) for p in esp.PROVIDERS.values()]


class EspConnectionForm(forms.Form):
    provider = forms.ChoiceField(label="Provider", choices=provider_choices)
    rate_per_second = forms.IntegerField(
        label="Send rate (emails per second)",
        min_value=1,
        max_value=MAX_RATE_PER_SECOND,
        help_text="The most this workspace hands to the ESP per second. Check your ESP "
        "plan's limit.",
    )

    def __init__(
        self,
        data: Any = None,
        *,
        provider: Provider,
        connection: EspConnection,
        stored_secrets: set[str],
    ) -> None:
        same_provider = connection.provider == provider.key
        options = connection.settings if same_provider else {}
        initial: dict[str, Any] = {
            "provider": provider.key,
            "rate_per_second": connection.rate_per_second,
        }
        super().__init__(data, initial=initial)
        self.provider = provider
        self.stored_secrets = stored_secrets if same_provider else set()
        for f in provider.secret_fields:
            stored = f.name in self.stored_secrets
            attrs = {"autocomplete": "new-password", "placeholder": SECRET_SET if stored else ""}
            self.fields[f.name] = forms.CharField(
                label=f.label,
                required=False,
                strip=True,
                max_length=2000,
                widget=forms.PasswordInput(render_value=False, attrs=attrs),
                help_text=("Saved. Leave blank to keep it; type a new one to replace it. "
                           if stored else "") + f.help,
            )  # fmt: skip
        for f in provider.option_fields:
            self.fields[f.name] = _option_field(f, options.get(f.name, f.default))

    @property
    def secret_fields(self) -> list[forms.BoundField]:
        return [self[f.name] for f in self.provider.secret_fields]

    @property
    def option_fields(self) -> list[forms.BoundField]:
        return [self[f.name] for f in self.provider.option_fields]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for f in self.provider.secret_fields:
            if f.required and not cleaned.get(f.name) and f.name not in self.stored_secrets:
                self.add_error(f.name, f"Enter the {f.label.lower()}.")
        host = cleaned.get("host")
        if self.provider.key == "smtp" and host and not esp.is_public_host(host):
            self.add_error(
                "host", "Enter the public host name of your SMTP server, not a local or "
                "private address.",
            )  # fmt: skip
        return cleaned

    def secrets_entered(self) -> dict[str, str]:
        return {f.name: self.cleaned_data.get(f.name) or "" for f in self.provider.secret_fields}

    def options(self) -> dict[str, Any]:
        return {f.name: self.cleaned_data.get(f.name) for f in self.provider.option_fields}


def _option_field(f: esp.Field, current: Any) -> forms.Field:
    if f.kind == "url" and f.choices:
        # Only the ESP's own endpoints; a custom one an operator set stays selectable.
        choices = list(f.choices)
        if current and current not in dict(choices):
            choices.append((current, f"{current} (set by an operator)"))
        return forms.ChoiceField(
            label=f.label, choices=choices, initial=current or f.default, help_text=f.help
        )
    if f.kind == "choice":
        return forms.ChoiceField(
            label=f.label,
            choices=f.choices,
            initial=current or f.default,
            required=f.required,
            help_text=f.help,
        )
    if f.kind == "int":
        return forms.IntegerField(
            label=f.label,
            initial=current or f.default,
            required=f.required,
            min_value=1,
            max_value=65535,
            help_text=f.help,
        )
    return forms.CharField(
        label=f.label,
        initial=current,
        required=f.required,
        max_length=255,
        help_text=f.help,
    )

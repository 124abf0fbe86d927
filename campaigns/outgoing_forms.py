"""The form of an outgoing webhook endpoint. The URL's safety (public addresses only) is
checked by campaigns.sending.outgoing when it saves, so the form and the API say the same."""

from __future__ import annotations

from django import forms

from .sending import outgoing


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label="Endpoint URL",
        max_length=500,
        assume_scheme="https",
        help_text="Where Mailpath POSTs each event, e.g. https://example.com/hooks/mailpath. "
        "It must answer 2xx; redirects are not followed.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/mailpath"}),
    )
    description = forms.CharField(
        max_length=200, required=False, help_text="What listens there, for your team."
    )
    events = forms.MultipleChoiceField(
        choices=outgoing.event_choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )
    active = forms.BooleanField(
        required=False,
        initial=True,
        label="Active",
        help_text="Off: nothing is sent; deliveries of events already announced wait.",
    )

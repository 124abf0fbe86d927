"""The brand kit form: colours, fonts, footer, social links, sender and postal address."""

from __future__ import annotations

from django import forms

from workspaces.models import Workspace

from .models import FONT_CHOICES, SOCIAL_NETWORKS, BrandKit
from .services import COLOR_FIELDS, LOGO_MAX_BYTES

COLOR_LABELS = {
    "primary_color": "Primary",
    "text_color": "Text",
    "background_color": "Background",
    "content_background_color": "Content area",
    "button_color": "Buttons",
    "button_text_color": "Button text",
}
SENDER_FIELDS = ("default_from_name", "default_from_email", "postal_address")
KIT_FIELDS = (*COLOR_FIELDS, "font", "heading_font", "footer_text", "logo_width", "logo_alt")


class BrandKitForm(forms.Form):
    font = forms.ChoiceField(choices=FONT_CHOICES, label="Body font")
    heading_font = forms.ChoiceField(choices=FONT_CHOICES, label="Heading font")
    footer_text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="A line under every email, e.g. why the reader gets it.",
    )
    logo_width = forms.IntegerField(min_value=40, max_value=600, label="Logo width (px)")
    logo_alt = forms.CharField(required=False, max_length=120, label="Logo alt text")
    default_from_name = forms.CharField(required=False, max_length=120, label="Sender name")
    default_from_email = forms.EmailField(required=False, label="Sender email")
    postal_address = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown in every marketing email's footer; the law requires it.",
    )

    def __init__(self, *args, kit: BrandKit, workspace: Workspace, **kwargs) -> None:  # type: ignore[no-untyped-def]
        links = {link["network"]: link["url"] for link in kit.social_links}
        initial = {name: getattr(kit, name) for name in KIT_FIELDS}
        initial |= {name: getattr(workspace, name) for name in SENDER_FIELDS}
        initial |= {f"social_{network}": links.get(network, "") for network, _ in SOCIAL_NETWORKS}
        super().__init__(*args, initial=initial, **kwargs)
        for name in COLOR_FIELDS:
            self.fields[name] = forms.RegexField(
                regex=r"^#[0-9a-fA-F]{6}$",
                label=COLOR_LABELS[name],
                error_messages={"invalid": "Use a colour like #1d4ed8."},
                widget=forms.TextInput(attrs={"type": "color"}),
            )
        for network, label in SOCIAL_NETWORKS:
            self.fields[f"social_{network}"] = forms.URLField(
                required=False, label=label, assume_scheme="https"
            )

    def brand_fields(self) -> dict:
        data = self.cleaned_data
        fields = {name: data[name] for name in KIT_FIELDS}
        fields["social_links"] = [
            {"network": network, "url": data[f"social_{network}"]}
            for network, _ in SOCIAL_NETWORKS
            if data.get(f"social_{network}")
        ]
        return fields

    def sender_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in SENDER_FIELDS}


class LogoForm(forms.Form):
    logo = forms.FileField(help_text="PNG, JPEG or GIF, at most 1 MB and 2,400 px a side.")

    def clean_logo(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["logo"]
        if upload.size > LOGO_MAX_BYTES:
            raise forms.ValidationError(
                f"The logo is {upload.size / 1024:.0f} KB; the limit is 1 MB."
            )
        return upload

"""The brand kit page: an admin changes colours, fonts, sender, footer and logo, and every
template's preview follows; bad input is shown on the form and saves nothing."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from campaigns import services
from campaigns.models import BrandKit
from tests.factories import EmailTemplateFactory

pytestmark = pytest.mark.django_db


def kit_url(workspace, name="brand_kit"):
    return reverse(name, args=[workspace.slug])


def form_data(**overrides):
    data = {
        "primary_color": "#2f6b3f",
        "text_color": "#222222",
        "background_color": "#eeeeee",
        "content_background_color": "#ffffff",
        "button_color": "#c65a11",
        "button_text_color": "#ffffff",
        "font": "georgia",
        "heading_font": "trebuchet",
        "footer_text": "You signed up at our shop.",
        "logo_width": "180",
        "logo_alt": "Acme",
        "default_from_name": "Acme Outdoor",
        "default_from_email": "hello@acme.example",
        "postal_address": "12 Trail Road\nBoulder CO",
        "social_instagram": "https://instagram.com/acme",
    }
    return {**data, **overrides}


def png(width=120, height=40):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "#2f6b3f").save(buffer, format="PNG")
    return SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")


def test_page_shows_the_kit_and_a_sandboxed_preview(owner_client, workspace_a):
    response = owner_client.get(kit_url(workspace_a))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Save brand kit" in body
    assert 'sandbox=""' in body and "allow-scripts" not in body


def test_saving_changes_every_template(owner_client, workspace_a):
    template = EmailTemplateFactory(workspace=workspace_a)
    before = services.template_preview(template).email.html
    response = owner_client.post(kit_url(workspace_a), form_data())
    assert response.status_code == 302
    kit = BrandKit.objects.for_workspace(workspace_a).get()
    assert kit.button_color == "#c65a11" and kit.font == "georgia"
    assert kit.social_links == [{"network": "instagram", "url": "https://instagram.com/acme"}]
    workspace_a.refresh_from_db()
    assert workspace_a.default_from_email == "hello@acme.example"
    after = services.template_preview(template).email.html
    assert "#c65a11" in after and "#c65a11" not in before
    assert "12 Trail Road" in after and "Georgia" in after


def test_a_bad_colour_is_a_form_error_and_saves_nothing(owner_client, workspace_a):
    response = owner_client.post(kit_url(workspace_a), form_data(button_color="red"))
    assert response.status_code == 400
    assert "Use a colour like #1d4ed8." in response.content.decode()
    assert BrandKit.objects.for_workspace(workspace_a).get().button_color == "#1d4ed8"
    workspace_a.refresh_from_db()
    assert workspace_a.default_from_email != "hello@acme.example"


def test_logo_upload_shows_in_emails_and_can_be_removed(owner_client, workspace_a):
    response = owner_client.post(kit_url(workspace_a, "brand_logo_upload"), {"logo": png()})
    assert response.status_code == 302
    kit = BrandKit.objects.for_workspace(workspace_a).get()
    assert kit.logo_content_type == "image/png"
    html = services.template_preview(EmailTemplateFactory(workspace=workspace_a)).email.html
    assert services.logo_url(kit).split("?")[0] in html
    owner_client.post(kit_url(workspace_a, "brand_logo_remove"))
    assert not BrandKit.objects.for_workspace(workspace_a).get().logo


def test_an_oversized_or_fake_logo_is_refused_with_the_reason(owner_client, workspace_a):
    huge = SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (1024 * 1024 + 10))
    response = owner_client.post(kit_url(workspace_a, "brand_logo_upload"), {"logo": huge})
    assert response.status_code == 400
    assert "the limit is 1 MB" in response.content.decode()
    text = SimpleUploadedFile("logo.png", b"not an image at all")
    response = owner_client.post(kit_url(workspace_a, "brand_logo_upload"), {"logo": text})
    assert response.status_code == 400
    assert "not a PNG, JPEG or GIF" in response.content.decode()
    assert not BrandKit.objects.for_workspace(workspace_a).get().logo


def test_editors_and_viewers_read_but_cannot_change_it(editor_client, viewer_client, workspace_a):
    assert viewer_client.get(kit_url(workspace_a)).status_code == 200
    assert editor_client.post(kit_url(workspace_a), form_data()).status_code == 403
    response = viewer_client.post(kit_url(workspace_a, "brand_logo_upload"), {"logo": png()})
    assert response.status_code == 403


def test_outsiders_get_404(outsider_client, workspace_a):
    assert outsider_client.get(kit_url(workspace_a)).status_code == 404

"""The template services against PostgreSQL: saves that compile add a revision and saves
that do not change nothing; the brand kit and its logo; the checks that gate a marketing
send; test sends into the sandbox inbox; previews as a real contact."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from campaigns import services
from campaigns.models import BrandKit, EmailTemplate, TemplateRevision
from campaigns.rendering.compile import TemplateContent, TemplateInvalid
from campaigns.services import TemplateNotSendable
from tests.factories import (
    WELCOME_BLOCKS,
    ContactFactory,
    EmailTemplateFactory,
    EventFactory,
    UserFactory,
    WorkspaceFactory,
)
from workspaces.models import SandboxMessage

ADDRESS = "O'Brien & Sons, 12 Harbour Road\nBristol BS1 4AA"


@pytest.fixture
def workspace(workspace_a):
    workspace_a.postal_address = ADDRESS
    workspace_a.default_from_name = "Acme"
    workspace_a.default_from_email = "hello@acme.example.com"
    workspace_a.save()
    return workspace_a


def welcome(workspace, **fields):  # type: ignore[no-untyped-def]
    fields = {
        "name": "Welcome",
        "subject": "Welcome, {{ contact.first_name | default: 'friend' }}",
        "preheader": "Glad you are here",
        "blocks": [dict(block) for block in WELCOME_BLOCKS],
        **fields,
    }
    return services.create_template(workspace, **fields)


def revisions(template: EmailTemplate) -> list[int]:
    return list(
        TemplateRevision.objects.for_workspace(template.workspace)
        .filter(template=template)
        .order_by("number")
        .values_list("number", flat=True)
    )


def reread(template: EmailTemplate) -> EmailTemplate:
    return EmailTemplate.objects.for_workspace(template.workspace).get(pk=template.pk)


# --- revisions --------------------------------------------------------------------------


def test_create_and_update_add_a_revision_each(workspace, owner):
    template = welcome(workspace, user=owner)
    assert (template.revision_number, revisions(template)) == (1, [1])

    services.update_template(template, user=owner, subject="New subject", note="Shorter")
    services.update_template(template, user=owner, preheader="New preheader")

    stored = reread(template)
    assert (stored.subject, stored.preheader, stored.revision_number) == (
        "New subject",
        "New preheader",
        3,
    )
    assert revisions(template) == [1, 2, 3]
    latest = stored.revisions.get(number=3)
    assert (latest.subject, latest.preheader, latest.created_by) == (
        "New subject",
        "New preheader",
        owner,
    )
    assert stored.revisions.get(number=2).note == "Shorter"


def test_an_update_that_changes_nothing_adds_no_revision(workspace):
    template = welcome(workspace)
    services.update_template(template, subject=template.subject, name="Welcome again")
    assert revisions(template) == [1] and reread(template).name == "Welcome again"


BROKEN = {
    "broken liquid in the subject": {"subject": "Hi {{ contact.first_name"},
    "broken liquid in a block": {
        "blocks": [{"type": "text", "html": "<p>{% if x %}</p>"}, {"type": "footer"}]
    },
    "invalid mjml": {"kind": "mjml", "source": "<mj-section><mj-column><mj-text>Hi"},
    "mjml with an include": {"kind": "mjml", "source": '<mj-include path="/etc/passwd" />'},
    "broken liquid in html": {"kind": "html", "source": "<p>{{ contact.first_name | }}</p>"},
    "unknown block type": {"blocks": [{"type": "marquee", "text": "hi"}]},
    "blocks not a list": {"blocks": {"type": "text"}},
    "button without url": {"blocks": [{"type": "button", "label": "Go", "url": ""}]},
    "javascript button": {"blocks": [{"type": "button", "label": "Go", "url": "javascript:x"}]},
    "empty subject": {"subject": "   "},
    "empty source": {"kind": "html", "source": " "},
}


@pytest.mark.parametrize("fields", BROKEN.values(), ids=BROKEN.keys())
def test_an_update_that_does_not_compile_changes_nothing(workspace, fields):
    template = welcome(workspace)
    before = reread(template).content()

    with pytest.raises(TemplateInvalid) as invalid:
        services.update_template(template, name="Renamed", purpose="transactional", **fields)

    assert invalid.value.problems and all(str(p) for p in invalid.value.problems)
    stored = reread(template)
    assert stored.content() == before
    assert (stored.name, stored.purpose, stored.revision_number) == ("Welcome", "marketing", 1)
    assert revisions(template) == [1]
    # nor does the caller's copy pretend the rename happened
    assert (template.name, template.purpose) == ("Welcome", "marketing")


def test_create_that_does_not_compile_saves_nothing(workspace):
    with pytest.raises(TemplateInvalid):
        services.create_template(workspace, name="Bad", kind="mjml", source="<mj-text>")
    assert not EmailTemplate.objects.for_workspace(workspace).exists()
    assert not TemplateRevision.objects.for_workspace(workspace).exists()


def test_bad_name_purpose_or_kind_is_a_validation_error(workspace):
    welcome(workspace)
    for fields in ({"name": " "}, {"name": "WELCOME"}, {"name": "X", "purpose": "spam"}):
        with pytest.raises(ValidationError):
            welcome(workspace, **fields)
    with pytest.raises(ValidationError):
        welcome(workspace, name="Other", kind="pdf")
    assert EmailTemplate.objects.for_workspace(workspace).count() == 1


def test_restore_revision_brings_back_old_content_as_a_new_revision(workspace, owner):
    template = welcome(workspace)
    services.update_template(template, subject="Second", kind="html", source="<p>Two</p>")
    first = template.revisions.get(number=1)

    services.restore_revision(template, first, user=owner)

    stored = reread(template)
    assert (stored.kind, stored.subject, stored.blocks) == ("blocks", first.subject, first.blocks)
    assert revisions(template) == [1, 2, 3]
    assert stored.revisions.get(number=3).note == "Restored revision 1"


def test_restore_refuses_a_revision_of_another_template(workspace):
    template, other = welcome(workspace), welcome(workspace, name="Other", subject="Other")
    with pytest.raises(ValidationError):
        services.restore_revision(template, other.revisions.get(number=1))
    assert reread(template).subject != "Other" and revisions(template) == [1]


def test_duplicate_copies_the_content_under_a_free_name(workspace):
    template = welcome(workspace, purpose="transactional")
    first, second = services.duplicate_template(template), services.duplicate_template(template)

    assert (first.name, second.name) == ("Welcome (copy)", "Welcome (copy) 2")
    assert first.content() == template.content() and first.purpose == "transactional"
    assert first.pk != template.pk and revisions(first) == [1]
    assert first.revisions.get().note == "Created"


# --- brand kit --------------------------------------------------------------------------


def test_changing_the_brand_kit_changes_the_compiled_template(workspace):
    template = welcome(workspace)
    before = services.compile_template(reread(template)).html_source

    services.update_brand_kit(workspace, primary_color="#aa0011", button_color="#00aa55")
    after = services.compile_template(reread(template)).html_source

    assert "#aa0011" not in before and "#aa0011" in after
    assert "#00aa55" in after


def test_a_bad_brand_kit_value_saves_nothing(workspace):
    services.update_brand_kit(workspace, primary_color="#123456")
    for fields in (
        {"primary_color": "red"},
        {"font": "comic-sans"},
        {"logo_width": 9000},
        {"social_links": [{"network": "x", "url": "javascript:alert(1)"}]},
        {"postal_address": "elsewhere"},
    ):
        with pytest.raises(ValidationError):
            services.update_brand_kit(workspace, **{"text_color": "#000000", **fields})
    kit = services.brand_kit_for(workspace)
    assert (kit.primary_color, kit.text_color) == ("#123456", "#1f2937")


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (200, 60), noise: bool = False) -> bytes:
    image = (
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
        if noise
        else Image.new("RGB", size, (200, 30, 30))
    )
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


def test_a_small_png_logo_is_kept_and_served_publicly(workspace, client):
    data = image_bytes()
    kit = services.set_logo(workspace, data, alt="Acme logo")

    stored = BrandKit.objects.for_workspace(workspace).get()
    assert bytes(stored.logo) == data and stored.logo_content_type == "image/png"
    assert (stored.logo_alt, stored.logo_height) == ("Acme logo", 48)  # 160 px wide

    response = client.get(reverse("brand_logo", args=[kit.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == data

    brand = services.brand_of(workspace)
    assert brand.logo_url.startswith("http") and str(kit.public_id) in brand.logo_url
    assert brand.logo_url in services.compile_template(welcome(workspace)).html_source


def test_a_jpeg_logo_is_served_as_jpeg(workspace, client):
    kit = services.set_logo(workspace, image_bytes("JPEG"))
    response = client.get(reverse("brand_logo", args=[kit.public_id]))
    assert response["Content-Type"] == "image/jpeg"


def test_the_logo_url_answers_404_for_an_unknown_kit_or_a_kit_without_logo(workspace, client):
    import uuid

    assert client.get(reverse("brand_logo", args=[uuid.uuid4()])).status_code == 404
    kit = services.brand_kit_for(workspace)
    assert client.get(reverse("brand_logo", args=[kit.public_id])).status_code == 404
    services.set_logo(workspace, image_bytes())
    services.remove_logo(workspace)
    assert client.get(reverse("brand_logo", args=[kit.public_id])).status_code == 404


BAD_LOGOS = {
    "over 1 MB": (lambda: image_bytes(size=(700, 700), noise=True), "the limit is 1 MB"),
    "not an image": (lambda: b"%PDF-1.4 not an image at all", "not a PNG, JPEG or GIF"),
    "a script": (lambda: b"<svg onload='alert(1)'></svg>", "not a PNG, JPEG or GIF"),
    "truncated png": (lambda: image_bytes()[:60], "not a PNG, JPEG or GIF"),
    "webp": (lambda: image_bytes("WEBP"), "WEBP images do not show in every inbox"),
    "bmp": (lambda: image_bytes("BMP"), "BMP images do not show in every inbox"),
    "3000x3000": (lambda: image_bytes(size=(3000, 3000)), "3000x3000 px"),
    "10x10": (lambda: image_bytes(size=(10, 10)), "10x10 px"),
    "empty": (lambda: b"", "not a PNG, JPEG or GIF"),
}


@pytest.mark.parametrize(("make", "message"), BAD_LOGOS.values(), ids=BAD_LOGOS.keys())
def test_a_bad_logo_is_refused_with_a_clear_message_and_nothing_saved(workspace, make, message):
    good = image_bytes()
    services.set_logo(workspace, good, alt="Old")
    data = make()
    if "1 MB" in message:
        assert len(data) > 1024 * 1024

    with pytest.raises(ValidationError) as refused:
        services.set_logo(workspace, data, alt="New")

    assert message in " ".join(refused.value.message_dict["logo"])
    kit = BrandKit.objects.for_workspace(workspace).get()
    assert bytes(kit.logo) == good and kit.logo_alt == "Old"


# --- checks before a marketing send -------------------------------------------------------


def test_the_welcome_template_is_sendable_when_the_workspace_has_an_address(workspace):
    # the address holds an "&", which the HTML shows as &amp;
    template = EmailTemplateFactory(workspace=workspace)
    report = services.ensure_sendable(template)
    assert report.errors == []


def test_a_marketing_template_without_a_postal_address_is_not_sendable(workspace):
    workspace.postal_address = ""
    workspace.save()
    with pytest.raises(TemplateNotSendable) as refused:
        services.ensure_sendable(EmailTemplateFactory(workspace=workspace))
    assert any("postal address" in message for message in refused.value.messages)


FRAGMENT = "<p>Hello {{ contact.first_name }}</p><p>Acme</p>"
OWN_HTML = f"<!DOCTYPE html><html><body>{FRAGMENT}</body></html>"


def test_an_html_document_without_unsubscribe_link_is_not_sendable_for_marketing(workspace):
    template = EmailTemplateFactory(workspace=workspace, kind="html", blocks=[], source=OWN_HTML)
    with pytest.raises(TemplateNotSendable) as refused:
        services.ensure_sendable(template)
    messages = " ".join(refused.value.messages)
    assert "unsubscribe" in messages and "{{ unsubscribe_url }}" in messages
    assert "postal address" in messages


def test_an_html_fragment_gets_the_brand_footer_and_is_sendable(workspace):
    template = EmailTemplateFactory(workspace=workspace, kind="html", blocks=[], source=FRAGMENT)
    assert services.ensure_sendable(template).errors == []


def test_an_html_document_with_its_own_footer_is_sendable(workspace):
    footer = '<p>{{ brand.postal_address }} <a href="{{ unsubscribe_url }}">Leave</a></p>'
    source = OWN_HTML.replace("</body>", f"{footer}</body>")
    template = EmailTemplateFactory(workspace=workspace, kind="html", blocks=[], source=source)
    assert services.ensure_sendable(template).errors == []


def test_a_transactional_template_needs_no_unsubscribe_link(workspace):
    template = EmailTemplateFactory(
        workspace=workspace, purpose="transactional", kind="html", blocks=[], source=OWN_HTML
    )
    report = services.ensure_sendable(template)
    assert report.errors == []


def test_a_template_that_fails_to_render_is_not_sendable(workspace):
    template = EmailTemplateFactory(
        workspace=workspace, subject="{{ contact.nothing }}", purpose="transactional"
    )
    with pytest.raises(TemplateNotSendable) as refused:
        services.ensure_sendable(template)
    assert "subject rendered empty" in " ".join(refused.value.messages)


def preview_warnings(workspace, **fields) -> list[str]:  # type: ignore[no-untyped-def]
    content = TemplateContent(**{"kind": "blocks", "subject": "Hi", "preheader": "P", **fields})
    result = services.preview(workspace, content)
    assert result.email is not None, (result.problems, result.render_error)
    return result.report.warnings


def test_warnings_for_images_without_alt_plain_http_links_size_and_preheader(workspace):
    good = [dict(block) for block in WELCOME_BLOCKS]
    assert preview_warnings(workspace, blocks=good) == []

    image = {"type": "image", "src": "https://cdn.example.com/a.png", "alt": ""}
    assert any("no alt text" in w for w in preview_warnings(workspace, blocks=[image, *good]))

    http = {"type": "button", "label": "Old site", "url": "http://old.example.com/"}
    assert "Link is not https: http://old.example.com/" in preview_warnings(
        workspace, blocks=[http, *good]
    )

    assert any("No preheader" in w for w in preview_warnings(workspace, blocks=good, preheader=""))

    big = {"type": "text", "html": "<p>" + "Long story. " * 1600 + "</p>"}
    warnings = preview_warnings(workspace, blocks=[big] * 6 + good)
    assert any("Gmail clips messages over 102 KB" in w for w in warnings)


# --- test sends and previews --------------------------------------------------------------


@pytest.fixture
def sandbox(settings):
    settings.EMAIL_BACKEND = "workspaces.sandbox.SandboxEmailBackend"


def test_send_test_delivers_the_personalised_email_to_the_sandbox_inbox(workspace, sandbox):
    contact = ContactFactory(workspace=workspace, first_name="Priya", attributes={"plan": "pro"})
    template = EmailTemplateFactory(
        workspace=workspace, subject="Hello {{ contact.first_name }} ({{ contact.plan }})"
    )

    services.send_test(template, to="me@acme.example.com", contact=contact)

    message = SandboxMessage.objects.for_workspace(workspace).get()
    assert message.subject == "[Test] Hello Priya (pro)"
    assert message.to == ["me@acme.example.com"]
    assert message.from_email == "Acme <hello@acme.example.com>"
    assert "Welcome, Priya!" in message.html_body and "Welcome, Priya!" in message.text_body
    assert "O'Brien &amp; Sons" in message.html_body
    assert not SandboxMessage.objects.for_workspace(WorkspaceFactory()).exists()


def test_send_test_without_a_contact_uses_the_sample(workspace, sandbox):
    services.send_test(EmailTemplateFactory(workspace=workspace), to="me@acme.example.com")
    assert SandboxMessage.objects.for_workspace(workspace).get().subject == "[Test] Hello Jamie"


def test_send_test_of_a_template_that_fails_to_render_sends_nothing(workspace, sandbox):
    template = EmailTemplateFactory(workspace=workspace, subject="{{ contact.first_name }}")
    contact = ContactFactory(workspace=workspace, first_name="")
    with pytest.raises(ValidationError) as refused:
        services.send_test(template, to="me@acme.example.com", contact=contact)
    assert "subject rendered empty" in str(refused.value)
    assert not SandboxMessage.objects.for_workspace(workspace).exists()


CART = [
    {"type": "product_list", "items": "event.properties.products", "title": "Your cart"},
    {"type": "footer"},
]


def test_preview_as_a_contact_uses_that_contacts_newest_event(workspace):
    contact = ContactFactory(workspace=workspace, first_name="Lee")
    now = timezone.now()
    EventFactory(
        workspace=workspace,
        contact=contact,
        name="Cart Updated",
        occurred_at=now - timedelta(days=2),
        properties={"products": [{"name": "Old tent", "price": 10}]},
    )
    EventFactory(
        workspace=workspace,
        contact=contact,
        name="Cart Updated",
        occurred_at=now - timedelta(hours=1),
        properties={"products": [{"name": "Kayak", "price": 499}]},
    )
    EventFactory(workspace=workspace, contact=contact, occurred_at=now, properties={})
    other = ContactFactory(workspace=workspace)
    content = TemplateContent(kind="blocks", subject="{{ contact.first_name }}", blocks=CART)

    mine = services.preview(workspace, content, contact=contact).email
    assert mine.subject == "Lee"
    assert "Kayak" in mine.text and "$499.00" in mine.text
    assert "Old tent" not in mine.text and "Trail running shoes" not in mine.text
    # a contact without events sees the sample cart
    assert "Trail running shoes" in services.preview(workspace, content, contact=other).email.text


def test_preview_reports_problems_and_render_errors_without_raising(workspace):
    broken = TemplateContent(kind="html", subject="Hi", source="<p>{{ x | }}</p>")
    result = services.preview(workspace, broken)
    assert result.email is None and result.problems[0].line == 1

    failing = TemplateContent(kind="html", subject="Hi", source="<p>{{ 1 | divided_by: 0 }}</p>")
    result = services.preview(workspace, failing)
    assert result.email is None and "divide by 0" in result.render_error


def test_another_workspaces_template_is_not_reachable_by_its_id(workspace, workspace_b):
    template = welcome(workspace)
    assert not EmailTemplate.objects.for_workspace(workspace_b).filter(pk=template.pk).exists()
    user = UserFactory()
    other = welcome(workspace_b, user=user)
    assert other.revisions.get().created_by == user

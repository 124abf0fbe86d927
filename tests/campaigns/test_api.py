"""The templates and brand kit REST API: CRUD with revisions, refusals that leave the last
good revision alone, render previews (saved and unsaved, for a contact or an event), the
send checks, the brand kit and its logo, roles and tenancy."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import BrandKit, EmailTemplate, TemplateRevision
from tests.factories import WELCOME_BLOCKS, ApiKeyFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db

BROKEN_SUBJECT = "Hi {{ contact.first_name "
# A whole HTML document is sent as written: no brand footer, so no unsubscribe link.
OWN_HTML = "<html><body><p>Hello {{ contact.first_name }}</p></body></html>"
PRODUCTS_BLOCKS = [
    {"type": "heading", "text": "You left these behind"},
    {"type": "product_list", "items": "event.properties.products", "title": "", "currency": "EUR"},
    {"type": "footer"},
]


@pytest.fixture
def api(workspace_a):
    client = APIClient()
    key = ApiKeyFactory(workspace=workspace_a)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.secret}")
    return client


def url(*parts):
    return "/api/v1/templates/" + "".join(f"{part}/" for part in parts)


def session_url(workspace, *parts):
    return f"/api/v1/w/{workspace.slug}/templates/" + "".join(f"{part}/" for part in parts)


def welcome(workspace, name="Welcome", **fields):
    content = {"subject": "Hello {{ contact.first_name }}", "blocks": WELCOME_BLOCKS, **fields}
    return services.create_template(workspace, name=name, **content)


def revisions(template):
    return TemplateRevision.objects.for_workspace(template.workspace).filter(template=template)


def png(width=64, height=32):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "#1d4ed8").save(buffer, format="PNG")
    return SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")


# --- CRUD -------------------------------------------------------------------------------


def test_crud_round_trip_with_an_api_key(api, workspace_a):
    created = api.post(
        url(),
        {
            "name": "Welcome",
            "subject": "Hello {{ contact.first_name }}",
            "preheader": "Glad you're here",
            "blocks": WELCOME_BLOCKS,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["kind"] == "blocks" and body["purpose"] == "marketing"
    assert body["revision"] == 1
    template_id = body["id"]

    assert [t["name"] for t in api.get(url()).json()["results"]] == ["Welcome"]
    assert api.get(url(template_id)).json()["blocks"] == WELCOME_BLOCKS

    changed = api.patch(
        url(template_id), {"subject": "Welcome aboard", "note": "Shorter"}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["subject"] == "Welcome aboard"
    assert changed.json()["revision"] == 2
    history = api.get(url(template_id, "revisions")).json()["results"]
    assert [(r["number"], r["note"], r["created_by"]) for r in history] == [
        (2, "Shorter", None),
        (1, "Created", None),
    ]
    assert history[1]["subject"] == "Hello {{ contact.first_name }}"

    replaced = api.put(
        url(template_id),
        {**body, "subject": "Replaced", "blocks": [*WELCOME_BLOCKS[:1], {"type": "footer"}]},
        format="json",
    )
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["revision"] == 3
    assert replaced.json()["preheader"] == "Glad you're here"  # sent back as GET returned it

    assert api.delete(url(template_id)).status_code == 204
    assert api.get(url(template_id)).status_code == 404
    assert not EmailTemplate.objects.for_workspace(workspace_a).exists()
    assert not TemplateRevision.objects.for_workspace(workspace_a).exists()


def test_crud_round_trip_signed_in_credits_the_editor(editor_client, editor, workspace_a):
    created = editor_client.post(
        session_url(workspace_a),
        {"name": "Receipt", "purpose": "transactional", "kind": "html", "subject": "Your order",
         "source": "<p>Thanks for order {{ event.properties.order_id }}.</p>"},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    template_id = created.json()["id"]
    archived = editor_client.patch(
        session_url(workspace_a, template_id),
        {"archived": True},
        content_type="application/json",
    )
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    assert archived.json()["revision"] == 1  # archiving is not a content change

    listed = editor_client.get(session_url(workspace_a), {"archived": "true", "kind": "html"})
    assert [t["id"] for t in listed.json()["results"]] == [template_id]
    assert (
        editor_client.get(session_url(workspace_a), {"archived": "false"}).json()["results"] == []
    )
    history = editor_client.get(session_url(workspace_a, template_id, "revisions")).json()
    assert history["results"][0]["created_by"] == editor.email

    deleted = editor_client.delete(session_url(workspace_a, template_id))
    assert deleted.status_code == 204
    assert not EmailTemplate.objects.for_workspace(workspace_a).exists()


def test_list_filters_refuse_values_that_mean_nothing(api):
    assert api.get(url(), {"kind": "pdf"}).json() == {
        "kind": ["“pdf” is not a kind; use one of: blocks, mjml, html."]
    }
    assert api.get(url(), {"archived": "maybe"}).status_code == 400


def test_the_list_is_two_queries_however_many_templates(
    api, workspace_a, django_assert_num_queries
):
    for n in range(6):
        welcome(workspace_a, name=f"Template {n}")
    api.get(url())  # a key's first call also records when it was used
    with django_assert_num_queries(2):  # the key, the page
        assert len(api.get(url()).json()["results"]) == 6


def test_unknown_and_oversized_fields_are_refused_before_anything_is_saved(api, workspace_a):
    unknown = api.post(url(), {"name": "X", "subjekt": "Hi"}, format="json")
    long_subject = api.post(url(), {"name": "X", "subject": "a" * 256}, format="json")
    taken = api.post(url(), {"name": "Welcome", "subject": "Hi"}, format="json")

    assert unknown.status_code == 400 and unknown.json() == {"subjekt": ["Unknown field."]}
    assert long_subject.status_code == 400 and "subject" in long_subject.json()
    assert taken.status_code == 201
    again = api.post(url(), {"name": "welcome", "subject": "Hi"}, format="json")
    assert again.status_code == 400
    assert again.json() == {"name": ["A template called 'welcome' already exists."]}
    assert EmailTemplate.objects.for_workspace(workspace_a).count() == 1


# --- bad content: 400, and the last good revision stays ---------------------------------


def test_broken_liquid_is_refused_with_line_and_column_and_nothing_changes(api, workspace_a):
    template = welcome(workspace_a)
    blocks = [*WELCOME_BLOCKS[:2], {"type": "button", "label": "Go"}]

    response = api.patch(
        url(template.public_id),
        {"name": "Renamed", "subject": BROKEN_SUBJECT, "blocks": blocks},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["blocks"] == ["Block 3 (button): url is required"]
    assert body["subject"] == ["Subject, line 1, column 4: expected '}}', found end of file"]
    assert {"field": "subject", "where": "Subject", "message": "expected '}}', found end of file",
            "line": 1, "column": 4} in body["problems"]  # fmt: skip
    assert {"field": "blocks", "where": "Block 3 (button)", "message": "url is required",
            "line": None, "column": None} in body["problems"]  # fmt: skip
    template.refresh_from_db()
    assert (template.name, template.subject, template.blocks) == (
        "Welcome",
        "Hello {{ contact.first_name }}",
        WELCOME_BLOCKS,
    )
    assert template.revision_number == 1
    assert revisions(template).count() == 1
    assert api.get(url(template.public_id)).json()["subject"] == "Hello {{ contact.first_name }}"


def test_a_template_that_does_not_compile_is_not_created(api, workspace_a):
    response = api.post(
        url(),
        {"name": "Broken", "subject": "Hi", "blocks": [{"type": "text", "html": "{% if x %}"}]},
        format="json",
    )
    assert response.status_code == 400
    [problem] = response.json()["problems"]
    assert problem["field"] == "blocks"
    assert "endif" in problem["message"]
    assert problem["line"] == 1
    assert not EmailTemplate.objects.for_workspace(workspace_a).exists()


def test_invalid_mjml_is_refused_under_source(api, workspace_a):
    good = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ contact.first_name }}"
    good += "</mj-text></mj-column></mj-section></mj-body></mjml>"
    template = api.post(
        url(), {"name": "M", "kind": "mjml", "subject": "Hi", "source": good}, format="json"
    )
    assert template.status_code == 201, template.json()

    response = api.patch(
        url(template.json()["id"]), {"source": "<mjml><mj-body><mj-section>"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["source", "problems"]
    assert response.json()["source"][0].startswith("MJML: ")
    stored = EmailTemplate.objects.for_workspace(workspace_a).get()
    assert stored.source == good and stored.revision_number == 1


# --- render -----------------------------------------------------------------------------


def test_render_for_a_contact_shows_that_contact(api, workspace_a):
    template = welcome(workspace_a)
    zelda = ContactFactory(workspace=workspace_a, first_name="Zelda")

    response = api.post(
        url(template.public_id, "render"), {"contact_id": str(zelda.public_id)}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["subject"] == "Hello Zelda"
    assert "Welcome, Zelda!" in body["html"]
    assert "Welcome, Zelda!" in body["text"]
    assert set(body["checks"]) == {"errors", "warnings"}


def test_render_without_options_uses_the_sample_contact(api, workspace_a):
    template = welcome(workspace_a)
    assert api.post(url(template.public_id, "render")).json()["subject"] == "Hello Jamie"
    sample = api.post(url(template.public_id, "render"), {"sample": True}, format="json")
    assert sample.json()["subject"] == "Hello Jamie"


def test_render_never_shows_another_workspaces_contact(api, workspace_a, workspace_b):
    template = welcome(workspace_a)
    theirs = ContactFactory(workspace=workspace_b, first_name="Bartholomew", email="b@bloom.test")

    response = api.post(
        url(template.public_id, "render"), {"contact_id": str(theirs.public_id)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"contact_id": ["This workspace has no contact with this id."]}
    assert b"Bartholomew" not in response.content and b"bloom" not in response.content


def test_render_loops_over_the_given_event_or_the_contacts_latest(api, workspace_a):
    template = welcome(workspace_a, name="Cart", subject="Your cart", blocks=PRODUCTS_BLOCKS)
    contact = ContactFactory(workspace=workspace_a)
    EventFactory(
        workspace=workspace_a,
        contact=contact,
        name="Cart Updated",
        properties={"products": [{"name": "Canoe paddle", "price": 49, "quantity": 1}]},
    )
    given = {"name": "Cart Updated", "properties": {"products": [{"name": "Tent", "price": 5}]}}

    latest = api.post(
        url(template.public_id, "render"), {"contact_id": str(contact.public_id)}, format="json"
    )
    explicit = api.post(
        url(template.public_id, "render"),
        {"contact_id": str(contact.public_id), "event": given},
        format="json",
    )

    assert "Canoe paddle" in latest.json()["html"]
    assert "Tent" in explicit.json()["html"] and "Canoe paddle" not in explicit.json()["html"]
    assert "€5.00" in explicit.json()["text"]


def test_render_of_unsaved_content_saves_nothing_and_reports_problems(api, workspace_a):
    unsaved = {"kind": "html", "subject": "Hi {{ contact.first_name }}", "source": OWN_HTML}
    ok = api.post(url("render"), unsaved, format="json")
    broken = api.post(
        url("render"), {"kind": "html", "subject": "Hi", "source": "{{ oops"}, format="json"
    )

    assert ok.status_code == 200, ok.json()
    assert ok.json()["subject"] == "Hi Jamie"
    assert any("unsubscribe" in error for error in ok.json()["checks"]["errors"])
    assert broken.status_code == 400
    assert broken.json()["problems"][0]["field"] == "source"
    assert broken.json()["problems"][0]["line"] == 1
    assert not EmailTemplate.objects.for_workspace(workspace_a).exists()


def test_a_render_that_fails_at_personalisation_is_a_400_with_the_reason(api, workspace_a):
    template = welcome(workspace_a, subject="{{ contact.first_name }}")
    nameless = ContactFactory(workspace=workspace_a, first_name="")

    response = api.post(
        url(template.public_id, "render"), {"contact_id": str(nameless.public_id)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The email could not be rendered: the subject rendered empty"
    }


# --- revisions, duplicate, checks -------------------------------------------------------


def test_restore_makes_an_old_revision_current_as_a_new_one(api, workspace_a):
    template = welcome(workspace_a)
    services.update_template(template, subject="Second")

    restored = api.post(url(template.public_id, "restore"), {"revision": 1}, format="json")
    missing = api.post(url(template.public_id, "restore"), {"revision": 9}, format="json")

    assert restored.status_code == 200, restored.json()
    assert restored.json()["subject"] == "Hello {{ contact.first_name }}"
    assert restored.json()["revision"] == 3
    assert revisions(template).get(number=3).note == "Restored revision 1"
    assert missing.status_code == 400
    assert missing.json() == {"revision": ["This template has no revision 9."]}


def test_duplicate_makes_a_copy_with_its_own_history(api, workspace_a):
    template = welcome(workspace_a)
    services.update_template(template, subject="Second")

    response = api.post(url(template.public_id, "duplicate"))

    assert response.status_code == 201
    assert response.json()["name"] == "Welcome (copy)"
    assert response.json()["subject"] == "Second"
    assert response.json()["revision"] == 1


def test_checks_say_whether_a_marketing_send_may_use_the_template(api, workspace_a):
    workspace_a.postal_address = "1 Main Street, Springfield"
    workspace_a.save()
    with_footer = welcome(workspace_a)
    without = welcome(workspace_a, name="Bare", preheader="", kind="html", source=OWN_HTML)

    ok = api.get(url(with_footer.public_id, "checks")).json()
    refused = api.get(url(without.public_id, "checks")).json()

    assert ok == {"sendable": True, "errors": [], "warnings": ok["warnings"]}
    assert refused["sendable"] is False
    assert any("unsubscribe" in error for error in refused["errors"])
    assert any("preheader" in warning for warning in refused["warnings"])


# --- brand kit --------------------------------------------------------------------------


def brand_url(workspace=None, *parts):
    base = f"/api/v1/w/{workspace.slug}/" if workspace else "/api/v1/"
    return base + "brand-kit/" + "".join(f"{part}/" for part in parts)


def kit(workspace):
    return BrandKit.objects.for_workspace(workspace).get()


def test_brand_kit_reads_and_changes_and_bad_colours_name_the_field(api, workspace_a):
    assert api.get(brand_url()).json()["primary_color"] == "#1d4ed8"

    changed = api.patch(
        brand_url(),
        {"primary_color": "#ff6600", "font": "georgia", "footer_text": "See you soon"},
        format="json",
    )
    bad = api.patch(brand_url(), {"primary_color": "orange", "font": "comic"}, format="json")

    assert changed.status_code == 200, changed.json()
    assert changed.json()["primary_color"] == "#ff6600"
    assert changed.json()["font"] == "georgia"
    assert bad.status_code == 400
    assert bad.json()["primary_color"] == ["Use a colour like #1d4ed8."]
    assert "font" in bad.json()
    assert (kit(workspace_a).primary_color, kit(workspace_a).font) == ("#ff6600", "georgia")


def test_brand_kit_refuses_bad_social_links_and_unknown_fields(api):
    link = api.patch(
        brand_url(), {"social_links": [{"network": "x", "url": "http://x.com/a"}]}, format="json"
    )
    unknown = api.patch(brand_url(), {"logo": "data:image/png;base64,AAAA"}, format="json")
    assert link.status_code == 400
    assert link.json() == {"social_links": ["Link 1: use an https:// address."]}
    assert unknown.json() == {"logo": ["Unknown field."]}


def test_a_small_png_logo_is_stored_and_removed(api, workspace_a):
    response = api.put(brand_url(None, "logo"), {"logo": png(), "alt": "Acme"}, format="multipart")

    assert response.status_code == 200, response.json()
    assert "/brand/" in response.json()["logo_url"]
    assert response.json()["logo_alt"] == "Acme"
    assert response.json()["logo_height"] == 80  # 160 px wide, as 64x32
    logo = api.get(urlsplit(response.json()["logo_url"]).path)
    assert logo.status_code == 200 and logo["Content-Type"] == "image/png"

    assert api.delete(brand_url(None, "logo")).status_code == 204
    assert api.get(brand_url()).json()["logo_url"] == ""
    assert kit(workspace_a).logo is None


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (2 * 1024 * 1024)), "limit is 1 MB"),
        (SimpleUploadedFile("logo.png", b"not an image at all\n"), "not a PNG, JPEG or GIF"),
        (None, "16 to 2400 px a side"),
    ],
    ids=["2 MB", "text", "too wide"],
)
def test_a_logo_that_is_too_big_or_not_an_image_is_refused(api, workspace_a, upload, message):
    upload = upload or png(width=3000, height=100)
    response = api.post(brand_url(None, "logo"), {"logo": upload}, format="multipart")

    assert response.status_code == 400
    [error] = response.json()["logo"]
    assert message in error
    assert not BrandKit.objects.for_workspace(workspace_a).exclude(logo=None).exists()


def test_a_logo_must_come_as_a_multipart_file(api):
    missing = api.post(brand_url(None, "logo"), {"alt": "x"}, format="multipart")
    as_json = api.post(brand_url(None, "logo"), {"logo": "AAAA"}, format="json")
    assert missing.status_code == 400 and "multipart" in missing.json()["logo"][0]
    assert as_json.status_code == 415


# --- roles and tenancy ------------------------------------------------------------------


def test_a_viewer_reads_and_previews_but_cannot_write(viewer_client, workspace_a):
    template = welcome(workspace_a)
    detail = session_url(workspace_a, template.public_id)
    json = {"content_type": "application/json"}

    assert viewer_client.get(detail).status_code == 200
    assert (
        viewer_client.post(session_url(workspace_a, template.public_id, "render")).json()["subject"]
        == "Hello Jamie"
    )
    assert viewer_client.post(session_url(workspace_a, "render"), {"subject": "x"}, **json)
    assert viewer_client.get(brand_url(workspace_a)).status_code == 200
    refused = [
        viewer_client.post(session_url(workspace_a), {"name": "N", "subject": "S"}, **json),
        viewer_client.patch(detail, {"subject": "Hacked"}, **json),
        viewer_client.delete(detail),
        viewer_client.post(session_url(workspace_a, template.public_id, "duplicate")),
        viewer_client.post(session_url(workspace_a, template.public_id, "restore"), {}, **json),
        viewer_client.patch(brand_url(workspace_a), {"primary_color": "#000000"}, **json),
        viewer_client.delete(brand_url(workspace_a, "logo")),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    template.refresh_from_db()
    assert template.subject == "Hello {{ contact.first_name }}"
    assert EmailTemplate.objects.for_workspace(workspace_a).count() == 1


def test_an_editor_writes_templates_but_only_admins_change_the_brand_kit(
    editor_client, admin_client_a, workspace_a
):
    json = {"content_type": "application/json"}
    change = {"primary_color": "#000000"}
    assert editor_client.patch(brand_url(workspace_a), change, **json).status_code == 403
    assert admin_client_a.patch(brand_url(workspace_a), change, **json).status_code == 200


def test_an_outsider_gets_404_for_templates_of_another_workspace(
    outsider_client, workspace_a, workspace_b
):
    template = welcome(workspace_a)
    their_key = APIClient()
    their_key.credentials(
        HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory(workspace=workspace_b).secret}"
    )

    for path in ("", "render", "checks", "revisions", "duplicate"):
        parts = [template.public_id, path] if path else [template.public_id]
        method = "get" if path in ("", "checks", "revisions") else "post"
        as_member = getattr(outsider_client, method)(session_url(workspace_b, *parts))
        as_victim = getattr(outsider_client, method)(session_url(workspace_a, *parts))
        by_key = getattr(their_key, method)(url(*parts))
        assert (as_member.status_code, as_victim.status_code, by_key.status_code) == (
            404,
            404,
            404,
        ), path
        assert b"Welcome" not in by_key.content
    assert outsider_client.get(brand_url(workspace_a)).status_code == 404
    assert EmailTemplate.objects.for_workspace(workspace_a).count() == 1


def test_the_schema_describes_the_template_and_brand_kit_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/v1/templates/",
        "/api/v1/templates/{public_id}/",
        "/api/v1/templates/{public_id}/render/",
        "/api/v1/templates/render/",
        "/api/v1/templates/{public_id}/restore/",
        "/api/v1/brand-kit/",
        "/api/v1/brand-kit/logo/",
    ):
        assert path in schema["paths"], path
    upload = schema["paths"]["/api/v1/brand-kit/logo/"]["put"]["requestBody"]["content"]
    assert "multipart/form-data" in upload

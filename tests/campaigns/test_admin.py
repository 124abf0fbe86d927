"""Operators' admin for brand kits, templates and revisions: every page opens across
workspaces, the logo's bytes are never shown, and content is read-only there."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image

from campaigns import services
from campaigns.gallery import create_from_starter
from campaigns.models import BrandKit, EmailTemplate, TemplateRevision

pytestmark = pytest.mark.django_db


def png_bytes(size=(64, 32)) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    Image.new("RGB", size, "#2f5d3a").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw-long-enough")
    client.force_login(user)
    return client


@pytest.fixture
def templates(workspace_a, workspace_b, owner):
    services.set_logo(workspace_a, png_bytes(), alt="Acme")
    services.brand_kit_for(workspace_b)
    mine = create_from_starter(workspace_a, "welcome", user=owner)
    services.update_template(mine, user=owner, subject="Hello again", note="New subject")
    theirs = create_from_starter(workspace_b, "birthday")
    return mine, theirs


def test_changelists_list_every_workspace(operator, templates):
    _mine, theirs = templates
    response = operator.get("/admin/campaigns/emailtemplate/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    assert {t.name for t in response.context["cl"].result_list} == {"Welcome", "Birthday"}
    response = operator.get("/admin/campaigns/emailtemplate/", {"q": "birth"})
    assert [t.pk for t in response.context["cl"].result_list] == [theirs.pk]
    response = operator.get("/admin/campaigns/templaterevision/")
    assert response.status_code == 200 and response.context["cl"].result_count == 3
    response = operator.get("/admin/campaigns/brandkit/")
    assert response.status_code == 200 and response.context["cl"].result_count == 2


def test_filters_narrow_the_template_list(operator, templates, workspace_a):
    mine, _theirs = templates
    services.archive_template(mine)
    url = "/admin/campaigns/emailtemplate/"
    for params, expected in (
        ({"workspace__id__exact": workspace_a.pk}, 1),
        ({"starter": "birthday"}, 1),
        ({"purpose": "transactional"}, 0),
        ({"archived_at__isempty": "0"}, 1),
    ):
        response = operator.get(url, params)
        assert response.status_code == 200
        assert response.context["cl"].result_count == expected, params


def test_brand_kit_shows_whether_a_logo_is_set_but_never_its_bytes(operator, workspace_a):
    kit = services.set_logo(workspace_a, png_bytes(), alt="Acme")
    response = operator.get("/admin/campaigns/brandkit/")
    assert "image/png" in response.content.decode()
    response = operator.get(f"/admin/campaigns/brandkit/{kit.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "image/png" in page and "KB" in page
    assert 'name="logo"' not in page
    assert "logo" not in response.context["adminform"].form.fields


def test_brand_kit_edit_is_validated_like_the_brand_kit_page(operator, workspace_a):
    kit = services.brand_kit_for(workspace_a)
    url = f"/admin/campaigns/brandkit/{kit.pk}/change/"
    data = {
        "logo_width": 160, "logo_alt": "", "primary_color": "green", "text_color": "#111111",
        "background_color": "#eeeeee", "content_background_color": "#ffffff",
        "button_color": "#e8772e", "button_text_color": "#ffffff", "font": "georgia",
        "heading_font": "georgia", "footer_text": "", "social_links": "[]",
    }  # fmt: skip
    response = operator.post(url, data)
    assert response.status_code == 200
    assert "Use a colour like" in response.content.decode()
    kit.refresh_from_db()
    assert kit.font == "helvetica"  # nothing saved
    response = operator.post(url, {**data, "primary_color": "#2f5d3a"})
    assert response.status_code == 302
    kit.refresh_from_db()
    assert (kit.primary_color, kit.font) == ("#2f5d3a", "georgia")


def test_template_change_page_shows_revisions_read_only(operator, templates):
    mine, _theirs = templates
    response = operator.get(f"/admin/campaigns/emailtemplate/{mine.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "New subject" in page and "Created from welcome" in page
    form = response.context["adminform"].form
    assert set(form.fields) == {"name", "purpose", "archived_at"}
    inline = response.context["inline_admin_formsets"][0]
    assert not inline.has_add_permission and not inline.has_change_permission
    response = operator.post(
        f"/admin/campaigns/emailtemplate/{mine.pk}/change/",
        {"name": "Welcome series 1", "purpose": "marketing", "archived_at_0": "",
         "archived_at_1": "", "revisions-TOTAL_FORMS": "2", "revisions-INITIAL_FORMS": "2",
         "revisions-MIN_NUM_FORMS": "0", "revisions-MAX_NUM_FORMS": "1000"},
    )  # fmt: skip
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.name == "Welcome series 1" and mine.subject == "Hello again"


def test_revision_pages_open_but_cannot_be_changed(operator, templates):
    mine, _theirs = templates
    revision = TemplateRevision.all_workspaces.get(template=mine, number=1)
    url = f"/admin/campaigns/templaterevision/{revision.pk}/change/"
    response = operator.get(url)
    assert response.status_code == 200
    assert "Created from welcome" in response.content.decode()
    assert operator.post(url, {"note": "tampered"}).status_code == 403
    revision.refresh_from_db()
    assert revision.note == "Created from welcome"
    assert operator.get("/admin/campaigns/templaterevision/add/").status_code == 403
    assert operator.get("/admin/campaigns/emailtemplate/add/").status_code == 403
    assert operator.get("/admin/campaigns/brandkit/add/").status_code == 403


def test_every_campaigns_model_is_registered():
    from django.contrib import admin

    for model in (BrandKit, EmailTemplate, TemplateRevision):
        assert admin.site.is_registered(model)

"""Template pages: the list, the gallery, the editor (block cards rebuilt from the posted
form, saves that keep the last good revision when the content does not compile), the live
preview (sandboxed, as a real contact), test sends, revision history with restore, and
who may do what."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from campaigns import services
from campaigns.models import EmailTemplate, TemplateRevision
from tests.factories import ContactFactory, EmailTemplateFactory, EventFactory
from workspaces.models import SandboxMessage

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
BROKEN_LIQUID = "<p>Hi {% if contact.first_name %}{{ contact.first_name }}</p>"


def page(name, workspace, **kwargs):
    return reverse(name, kwargs={"workspace_slug": workspace.slug, **kwargs})


def tpage(name, template, **kwargs):
    return page(name, template.workspace, template_id=template.public_id, **kwargs)


class FormScraper(HTMLParser):
    """What a browser would post from the editor: every named control's value (checked
    radios only, the selected option of each select, textarea contents)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("radio", "checkbox", "submit"):
            self.values[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
                self.values.setdefault(self._select, self._first_option)
            if "selected" in a:
                self.values[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += (
                data.removeprefix("\n") if not self.values[self._textarea] else data
            )


def scrape(response) -> dict[str, str]:
    scraper = FormScraper()
    scraper.feed(response.content.decode())
    values = scraper.values
    values.pop("preview-width", None)
    return values


def block_types(data: dict[str, str]) -> list[str]:
    found = sorted((int(m[1]), v) for k, v in data.items() if (m := re.match(r"^b(\d+):type$", k)))
    return [kind for _, kind in found]


@pytest.fixture
def template(workspace_a, owner):
    return services.create_template(
        workspace_a,
        name="Welcome",
        user=owner,
        subject="Hello {{ contact.first_name }}",
        preheader="A short preview line",
        blocks=[
            {"type": "heading", "text": 'Hi {{ contact.first_name | default: "friend" }}!'},
            {"type": "text", "html": "<p>Thanks for joining.</p>"},
            {"type": "footer"},
        ],
    )


@pytest.fixture
def sandbox_mail(settings):
    settings.EMAIL_BACKEND = "workspaces.sandbox.SandboxEmailBackend"


# --- list and gallery ----------------------------------------------------------------------


def test_an_empty_list_explains_templates_and_leads_to_the_gallery(editor_client, workspace_a):
    response = editor_client.get(page("template_list", workspace_a))
    assert response.status_code == 200
    body = response.content.decode()
    assert "No templates yet" in body
    assert page("template_gallery", workspace_a) in body
    assert 'href="/w/acme/templates/" aria-current="page"' in body  # the sidebar section


def test_the_list_shows_templates_and_keeps_archived_ones_apart(
    viewer_client, workspace_a, django_assert_max_num_queries
):
    EmailTemplateFactory(workspace=workspace_a, name="Order confirmation", purpose="transactional")
    old = EmailTemplateFactory(workspace=workspace_a, name="Spring sale 2023")
    services.archive_template(old)
    with django_assert_max_num_queries(12):
        response = viewer_client.get(page("template_list", workspace_a))
    body = response.content.decode()
    assert "Order confirmation" in body and "Transactional" in body
    assert "Spring sale 2023" not in body
    assert "New template" not in body  # viewers read only
    archived = viewer_client.get(page("template_list", workspace_a) + "?archived=1")
    assert "Spring sale 2023" in archived.content.decode()
    assert "Order confirmation" not in archived.content.decode()


def test_the_gallery_shows_starters_in_sandboxed_thumbnails(editor_client, workspace_a):
    from campaigns import gallery

    response = editor_client.get(page("template_gallery", workspace_a))
    assert response.status_code == 200
    body = response.content.decode()
    frames = re.findall(r"<iframe[^>]*>", body)
    assert len(frames) == len(gallery.STARTERS)
    assert all('sandbox=""' in frame for frame in frames)
    assert "allow-scripts" not in body
    assert body.count("Use this template") == len(gallery.STARTERS)
    assert "Welcome to Acme" in body or "Acme" in body  # dressed in this workspace's name


def test_using_a_starter_creates_a_template_and_opens_the_editor(editor_client, workspace_a):
    response = editor_client.post(page("template_gallery_use", workspace_a), {"starter": "welcome"})
    template = EmailTemplate.objects.for_workspace(workspace_a).get()
    assert response.status_code == 302
    assert response["Location"] == tpage("template_edit", template)
    assert template.starter == "welcome" and template.revision_number == 1
    editor = editor_client.get(response["Location"])
    assert editor.status_code == 200
    assert "welcome aboard" in editor.content.decode()


def test_an_unknown_starter_creates_nothing(editor_client, workspace_a):
    response = editor_client.post(page("template_gallery_use", workspace_a), {"starter": "nope"})
    assert response.status_code == 302
    assert not EmailTemplate.objects.for_workspace(workspace_a).exists()


@pytest.mark.parametrize("kind", ["blocks", "mjml", "html"])
def test_start_blank_makes_a_template_that_compiles_and_passes_the_checks(
    editor_client, workspace_a, kind
):
    workspace_a.postal_address = "1 Main St, Springfield"
    workspace_a.save()
    response = editor_client.post(page("template_create_blank", workspace_a), {"kind": kind})
    template = EmailTemplate.objects.for_workspace(workspace_a).get()
    assert template.kind == kind
    editor = editor_client.get(response["Location"])
    assert editor.status_code == 200
    services.ensure_sendable(template)  # unsubscribe link and postal address are there


# --- the editor ----------------------------------------------------------------------------


def test_the_editor_shows_block_cards_and_a_preview(viewer_client, template):
    response = viewer_client.get(tpage("template_edit", template))
    assert response.status_code == 200
    data = scrape(response)
    assert block_types(data) == ["heading", "text", "footer"]
    assert data["b0:text"] == 'Hi {{ contact.first_name | default: "friend" }}!'
    body = response.content.decode()
    assert "Hi Jamie!" in body  # the preview, with the sample contact
    assert '<fieldset class="editor-fields" disabled>' in body  # viewers read only
    assert '<button type="submit">Save</button>' not in body


def test_blocks_are_added_moved_and_deleted_without_losing_unsaved_edits(editor_client, template):
    data = scrape(editor_client.get(tpage("template_edit", template)))
    data["b1:html"] = "<p>An unsaved edit.</p>"

    added = editor_client.post(
        tpage("template_blocks", template),
        {**data, "op": "add", "new_type": "button"},
        headers=HTMX,
    )
    assert added.status_code == 200
    data = {**data, **scrape(added)}
    assert block_types(data) == ["heading", "text", "button", "footer"]  # above the footer
    assert data["b1:html"] == "<p>An unsaved edit.</p>"
    assert 'data-testid="preview" hx-swap-oob="true"' in added.content.decode()  # preview follows

    moved = editor_client.post(
        tpage("template_blocks", template), {**data, "op": "down", "at": "0"}, headers=HTMX
    )
    data = _replace_blocks(data, scrape(moved))
    assert block_types(data) == ["text", "heading", "button", "footer"]
    assert data["b0:html"] == "<p>An unsaved edit.</p>"

    deleted = editor_client.post(
        tpage("template_blocks", template), {**data, "op": "delete", "at": "1"}, headers=HTMX
    )
    data = _replace_blocks(data, scrape(deleted))
    assert block_types(data) == ["text", "button", "footer"]
    data["b1:label"] = "Shop the sale"

    saved = editor_client.post(tpage("template_edit", template), {**data, "note": "Button"})
    assert saved.status_code == 302
    template.refresh_from_db()
    assert template.revision_number == 2
    assert [b["type"] for b in template.blocks] == ["text", "button", "footer"]
    assert template.blocks[0]["html"] == "<p>An unsaved edit.</p>"
    assert template.blocks[1]["label"] == "Shop the sale"
    assert template.revisions.get(number=2).note == "Button"


def _replace_blocks(data: dict[str, str], fresh: dict[str, str]) -> dict[str, str]:
    kept = {k: v for k, v in data.items() if not re.match(r"^b\d", k)}
    return {**kept, **fresh}


def test_columns_hold_inner_blocks(editor_client, template):
    data = scrape(editor_client.get(tpage("template_edit", template)))
    added = editor_client.post(
        tpage("template_blocks", template),
        {**data, "op": "add", "new_type": "columns"},
        headers=HTMX,
    )
    data = _replace_blocks(data, scrape(added))
    three = editor_client.post(
        tpage("template_blocks", template),
        {**data, "b2:column_count": "3", "op": "columns"},
        headers=HTMX,
    )
    data = _replace_blocks(data, scrape(three))
    inner = editor_client.post(
        tpage("template_blocks", template),
        {**data, "op": "add_inner", "at": "2.3", "inner_type:2.3": "button"},
        headers=HTMX,
    )
    data = _replace_blocks(data, scrape(inner))
    assert block_types(data) == ["heading", "text", "columns", "footer"]
    assert data["b2.c3.0:type"] == "button"
    assert editor_client.post(tpage("template_edit", template), data).status_code == 302
    template.refresh_from_db()
    columns = template.blocks[2]["columns"]
    assert len(columns) == 3 and columns[2][0]["type"] == "button"


def test_broken_liquid_is_shown_with_line_and_column_and_nothing_is_saved(editor_client, template):
    before = template.blocks
    data = scrape(editor_client.get(tpage("template_edit", template)))
    data["b1:html"] = BROKEN_LIQUID
    data["name"] = "Renamed"

    response = editor_client.post(tpage("template_edit", template), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert re.search(r"Block 2 \(text\) html, line 1, column \d+", body)
    assert "The last saved version is unchanged" in body
    assert scrape(response)["b1:html"] == BROKEN_LIQUID  # the user's input is kept
    template.refresh_from_db()
    assert template.blocks == before and template.name == "Welcome"
    assert template.revision_number == 1

    htmx = editor_client.post(tpage("template_edit", template), data, headers=HTMX)
    assert htmx.status_code == 422


def test_a_block_problem_is_shown_on_its_card(editor_client, template):
    data = scrape(editor_client.get(tpage("template_edit", template)))
    response = editor_client.post(
        tpage("template_blocks", template),
        {**data, "op": "add", "new_type": "button"},
        headers=HTMX,
    )
    data = _replace_blocks(data, scrape(response))
    data["b2:url"] = "javascript:alert(1)"
    saved = editor_client.post(tpage("template_edit", template), data, headers=HTMX)
    assert saved.status_code == 422
    card = re.search(
        r'<div class="block-card invalid"[^>]*data-number="3">.*?</div>',
        saved.content.decode(),
        re.S,
    )
    assert card and "url must start with https://" in saved.content.decode()
    template.refresh_from_db()
    assert len(template.blocks) == 3


def test_a_taken_name_is_a_field_error(editor_client, template):
    EmailTemplateFactory(workspace=template.workspace, name="Taken")
    data = {**scrape(editor_client.get(tpage("template_edit", template))), "name": "Taken"}
    response = editor_client.post(tpage("template_edit", template), data)
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_invalid_mjml_shows_an_error_and_keeps_the_source(editor_client, workspace_a, owner):
    from campaigns.template_forms import blank_content

    template = services.create_template(
        workspace_a, name="Raw", user=owner, **blank_content("mjml")
    )
    data = scrape(editor_client.get(tpage("template_edit", template)))
    data["source"] = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-body></mjml>"
    response = editor_client.post(tpage("template_edit", template), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "MJML:" in body or "MJML</span>:" in body
    assert "check that every tag is closed" in body
    template.refresh_from_db()
    assert template.revision_number == 1 and "<mj-text>Hi</mj-body>" not in template.source


def test_the_live_preview_compiles_unsaved_content_and_reports_problems(editor_client, template):
    data = scrape(editor_client.get(tpage("template_edit", template)))
    data["b0:text"] = "Brand new headline"
    response = editor_client.post(tpage("template_preview", template), data, headers=HTMX)
    assert response.status_code == 200
    assert "Brand new headline" in response.content.decode()

    data["subject"] = "Hi {% if %}"
    broken = editor_client.post(tpage("template_preview", template), data, headers=HTMX)
    assert re.search(r"Subject, line 1, column \d+", broken.content.decode())
    template.refresh_from_db()
    assert template.blocks[0]["text"].startswith("Hi {{")


def test_the_preview_frame_is_sandboxed_without_scripts(editor_client, template):
    data = scrape(editor_client.get(tpage("template_edit", template)))
    response = editor_client.post(tpage("template_preview", template), data, headers=HTMX)
    frames = re.findall(r"<iframe[^>]*>", response.content.decode())
    assert len(frames) == 1
    assert 'sandbox=""' in frames[0]
    assert "allow-scripts" not in frames[0] and "allow-same-origin" not in frames[0]


def test_preview_as_a_real_contact_shows_their_first_name(viewer_client, template):
    ContactFactory(workspace=template.workspace, email="zelda@example.com", first_name="Zelda")
    data = scrape(viewer_client.get(tpage("template_edit", template)))
    response = viewer_client.post(
        tpage("template_preview", template),
        {**data, "preview_as": "ZELDA@example.com"},
        headers=HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Hi Zelda!" in body and "Hi Jamie!" not in body
    assert "Previewing as <strong>zelda@example.com</strong>" in body
    assert '<option value="zelda@example.com">' in body  # the picker's suggestion


def test_the_picker_suggests_contacts_of_this_workspace_only(editor_client, template, workspace_b):
    ContactFactory(workspace=workspace_b, email="zelda@bloom.example", first_name="Zelda")
    data = scrape(editor_client.get(tpage("template_edit", template)))
    response = editor_client.post(
        tpage("template_preview", template),
        {**data, "preview_as": "zelda@bloom.example"},
        headers=HTMX,
    )
    body = response.content.decode()
    assert "No contact has the email" in body and "Hi Jamie!" in body
    assert "<option" not in body


def test_send_test_puts_the_email_in_the_sandbox_inbox(
    editor_client, editor, template, sandbox_mail
):
    contact = ContactFactory(
        workspace=template.workspace, email="zed@example.com", first_name="Zed"
    )
    EventFactory(workspace=template.workspace, contact=contact)
    response = editor_client.post(
        tpage("template_send_test", template), {"preview_as": contact.email}, headers=HTMX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Sandbox inbox" in body and page("sandbox_inbox", template.workspace) in body
    message = SandboxMessage.objects.for_workspace(template.workspace).get()
    assert message.to == [editor.email]
    assert message.subject == "[Test] Hello Zed"
    assert "Hi Zed!" in message.html_body


def test_send_test_without_htmx_redirects_with_a_message(editor_client, template, sandbox_mail):
    response = editor_client.post(tpage("template_send_test", template), follow=True)
    assert "find it in the Sandbox inbox" in response.content.decode()
    assert SandboxMessage.objects.for_workspace(template.workspace).count() == 1


# --- revisions --------------------------------------------------------------------------------


def test_restoring_a_revision_brings_back_its_content_as_a_new_revision(
    editor_client, template, owner
):
    services.update_template(template, user=owner, subject="Second subject")
    history = editor_client.get(tpage("template_revisions", template))
    body = history.content.decode()
    assert "Created" in body and "Edited" in body and owner.get_full_name() in body
    first = template.revisions.get(number=1)
    preview = editor_client.get(tpage("template_revision", template, revision_id=first.public_id))
    assert preview.status_code == 200 and "Hello Jamie" in preview.content.decode()

    response = editor_client.post(
        tpage("template_revision_restore", template, revision_id=first.public_id)
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.revision_number == 3
    assert template.subject == "Hello {{ contact.first_name }}"
    assert template.revisions.get(number=3).note == "Restored revision 1"


def test_a_revision_of_another_template_is_not_found(editor_client, template):
    other = services.duplicate_template(template)
    revision = other.revisions.get()
    url = tpage("template_revision", template, revision_id=revision.public_id)
    assert editor_client.get(url).status_code == 404
    restore = tpage("template_revision_restore", template, revision_id=revision.public_id)
    assert editor_client.post(restore).status_code == 404


# --- duplicate, archive, delete, full preview -------------------------------------------------


def test_duplicate_archive_and_delete(editor_client, template):
    copy = editor_client.post(tpage("template_duplicate", template))
    duplicate = EmailTemplate.objects.for_workspace(template.workspace).get(name="Welcome (copy)")
    assert copy["Location"] == tpage("template_edit", duplicate)

    editor_client.post(tpage("template_archive", template), {"archived": "1"})
    template.refresh_from_db()
    assert template.archived_at is not None
    editor_client.post(tpage("template_archive", template), {"archived": "0"})
    template.refresh_from_db()
    assert template.archived_at is None

    confirm = editor_client.get(tpage("template_delete", duplicate))
    assert "Delete “Welcome (copy)”?" in confirm.content.decode()
    editor_client.post(tpage("template_delete", duplicate))
    assert (
        not EmailTemplate.objects.for_workspace(template.workspace).filter(pk=duplicate.pk).exists()
    )
    assert (
        not TemplateRevision.objects.for_workspace(template.workspace)
        .filter(template_id=duplicate.pk)
        .exists()
    )


def test_the_full_preview_page_previews_as_a_contact(viewer_client, template):
    ContactFactory(workspace=template.workspace, email="kim@example.com", first_name="Kim")
    response = viewer_client.get(
        tpage("template_preview_page", template) + "?preview_as=kim@example.com"
    )
    assert response.status_code == 200
    assert "Hi Kim!" in response.content.decode()
    assert 'id="width-phone"' in response.content.decode()


# --- who may do what ---------------------------------------------------------------------------


def test_a_viewer_previews_but_gets_403_on_every_write(viewer_client, template):
    data = scrape(viewer_client.get(tpage("template_edit", template)))
    assert (
        viewer_client.post(
            tpage("template_preview", template), {"saved": "1"}, headers=HTMX
        ).status_code
        == 200
    )
    for name in (
        "template_edit",
        "template_blocks",
        "template_send_test",
        "template_duplicate",
        "template_archive",
        "template_delete",
    ):
        assert viewer_client.post(tpage(name, template), data).status_code == 403, name
    for name in ("template_gallery_use", "template_create_blank"):
        response = viewer_client.post(page(name, template.workspace), {"kind": "blocks"})
        assert response.status_code == 403, name
    template.refresh_from_db()
    assert template.revision_number == 1


def test_an_outsider_gets_404(outsider_client, template):
    revision = template.revisions.get()
    assert outsider_client.get(tpage("template_edit", template)).status_code == 404
    assert outsider_client.get(page("template_list", template.workspace)).status_code == 404
    bloom = template.workspace.__class__.objects.get(slug="bloom")
    own = reverse(
        "template_edit", kwargs={"workspace_slug": bloom.slug, "template_id": template.public_id}
    )
    assert outsider_client.get(own).status_code == 404
    own_revision = reverse(
        "template_revision",
        kwargs={
            "workspace_slug": bloom.slug,
            "template_id": template.public_id,
            "revision_id": revision.public_id,
        },
    )
    assert outsider_client.get(own_revision).status_code == 404
    assert outsider_client.post(own + "preview/").status_code == 404

"""A user picks a gallery template, changes its heading and watches the preview follow,
switches to phone width, previews it as a real contact, saves, sends a test to themselves
and finds it in the sandbox inbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factories import (
    PASSWORD,
    ContactFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
)
from workspaces.models import Role

pytestmark = pytest.mark.e2e
SCREENSHOT = Path("/tmp/editor.png")


@pytest.fixture
def harbour(transactional_db, settings):
    settings.EMAIL_BACKEND = "workspaces.sandbox.SandboxEmailBackend"
    workspace = WorkspaceFactory(
        name="Harbour Coffee",
        slug="harbour-coffee",
        default_from_name="Harbour Coffee",
        postal_address="4 Quay Street, Portsmouth PO1 2AB",
    )
    user = UserFactory(email="maya@harbour-coffee.example", first_name="Maya", last_name="Fischer")
    MembershipFactory(workspace=workspace, user=user, role=Role.OWNER)
    ContactFactory(workspace=workspace, email="zelda@example.com", first_name="Zelda")
    return workspace


def _log_in(page: Page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("maya@harbour-coffee.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/w/harbour-coffee/$"))


def test_pick_edit_preview_save_and_send_a_test(page: Page, live_server, harbour, artifacts_dir):
    _log_in(page)
    page.get_by_role("navigation").get_by_role("link", name="Templates").click()
    expect(page.get_by_test_id("templates-empty")).to_be_visible()
    page.get_by_role("button", name="New template").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Template gallery")
    page.get_by_role("button", name="Use the Welcome template").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")

    preview = page.frame_locator('[data-testid="preview-frame"]')
    expect(preview.locator("h1")).to_contain_text("Hi Jamie, welcome aboard!")

    page.get_by_label("Heading text of block 1").fill(
        "Fresh beans are waiting, {{ contact.first_name }}"
    )
    expect(preview.locator("h1")).to_have_text("Fresh beans are waiting, Jamie")

    frame = page.get_by_test_id("preview-frame")
    expect(frame).to_have_css("width", "600px")
    page.locator("label[for=width-phone]").click()
    expect(frame).to_have_css("width", "375px")

    page.get_by_label("Preview as").fill("zelda@example.com")
    expect(page.get_by_test_id("preview-who")).to_contain_text("zelda@example.com")
    expect(preview.locator("h1")).to_have_text("Fresh beans are waiting, Zelda")
    expect(page.get_by_test_id("preview-frame")).to_have_css("width", "375px")  # still a phone
    page.screenshot(path=artifacts_dir / "template-editor-phone.png", full_page=False)

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Saved as revision 2")
    expect(page.get_by_label("Heading text of block 1")).to_have_value(
        "Fresh beans are waiting, {{ contact.first_name }}"
    )
    page.screenshot(path=SCREENSHOT, full_page=False)

    page.get_by_label("Preview as").fill("zelda@example.com")
    expect(preview.locator("h1")).to_have_text("Fresh beans are waiting, Zelda")
    page.get_by_role("button", name="Send a test to me").click()
    result = page.get_by_test_id("send-ok")
    expect(result).to_contain_text("maya@harbour-coffee.example")
    result.get_by_role("link", name="Sandbox inbox").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Sandbox inbox")
    page.get_by_role("link", name="[Test] Welcome to Harbour Coffee").click()
    expect(page.locator("dl.meta dd").nth(1)).to_have_text("maya@harbour-coffee.example")
    message = page.frame_locator("iframe.email-preview")
    expect(message.locator("h1")).to_have_text("Fresh beans are waiting, Zelda")

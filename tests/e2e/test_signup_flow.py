"""A new customer signs up, adds a second workspace, switches back and logs out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def _switch_to(page: Page, link_name: str) -> None:
    switcher = page.get_by_test_id("workspace-switcher")
    switcher.locator("summary").click()
    switcher.get_by_role("link", name=link_name, exact=True).click()


def test_signup_second_workspace_switch_and_logout(page: Page, live_server, artifacts_dir):
    heading = page.get_by_role("heading", level=1)

    page.goto("/accounts/signup/")
    expect(heading).to_have_text("Create your account")
    page.get_by_label("Your name").fill("Maya Fischer")
    page.get_by_label("Work email").fill("maya@harbour-coffee.example")
    page.get_by_label("Password").fill("steamed-milk-at-dawn")
    page.get_by_label("Business name").fill("Harbour Coffee")
    page.get_by_role("button", name="Create account").click()

    first_dashboard = f"{live_server.url}/w/harbour-coffee/"
    expect(page).to_have_url(first_dashboard)
    expect(heading).to_have_text("Welcome to Harbour Coffee")
    expect(page.get_by_test_id("empty-dashboard")).to_be_visible()
    page.screenshot(path=artifacts_dir / "dashboard.png", full_page=True)

    _switch_to(page, "+ New workspace")
    expect(heading).to_have_text("New workspace")
    page.get_by_label("Workspace name").fill("Harbour Bakery")
    page.get_by_role("button", name="Create workspace").click()

    expect(page).to_have_url(f"{live_server.url}/w/harbour-bakery/")
    expect(heading).to_have_text("Welcome to Harbour Bakery")
    expect(page.get_by_role("status")).to_contain_text("Harbour Bakery")

    _switch_to(page, "Harbour Coffee")
    expect(page).to_have_url(first_dashboard)
    expect(heading).to_have_text("Welcome to Harbour Coffee")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(heading).to_have_text("Log in")

    page.goto(first_dashboard)
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/w/harbour-coffee/$"))
    expect(heading).to_have_text("Log in")

"""Real-browser fixtures: Debian's headless Chromium, driven by Playwright, against
pytest-django's `live_server`.

Chromium is not downloaded by Playwright here (`playwright install` cannot reach its CDN),
so the tests launch /usr/bin/chromium. Without it they skip, unless
MAILPATH_REQUIRE_BROWSER=1 (CI sets it), where a missing browser is a failure: a CI run
that silently skipped every browser test would look green while testing nothing.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# Playwright's sync API keeps an asyncio event loop running in the main thread while the
# browser is open, and Django refuses ORM calls from a thread with a running loop. Set at
# import time, not in a fixture: the session-scoped browser stays open after the e2e tests,
# so tests collected after them in the same run would trip over the same check.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
TIMEOUT_MS = 10_000


def _browser_unavailable(reason: str) -> None:
    if os.environ.get("MAILPATH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (MAILPATH_REQUIRE_BROWSER=1, so this is a failure)", pytrace=False)
    pytest.skip(f"{reason}; set MAILPATH_REQUIRE_BROWSER=1 to fail instead of skipping")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _browser_unavailable(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so `page` can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(
    browser: Browser, live_server, artifacts_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test; a screenshot if the test fails."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page.screenshot(path=artifacts_dir / f"FAILED-{request.node.name}.png", full_page=True)
    context.close()

"""The sidebar: the product's sections in order, each linked once its app has a page.

Apps attach their landing page in `AppConfig.ready()` with `register_section`; a section
that has no page yet is listed, greyed out, so a new user sees what Mailpath will cover.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

SECTIONS = [
    ("home", "Home"),
    ("contacts", "Contacts"),
    ("segments", "Segments"),
    ("forms", "Signup forms"),
    ("templates", "Templates"),
    ("campaigns", "Campaigns"),
    ("journeys", "Journeys"),
    ("analytics", "Analytics"),
    ("sandbox", "Sandbox inbox"),
    ("settings", "Settings"),
]
_section_urls: dict[str, str] = {}


def register_section(section: str, url_name: str) -> None:
    if section not in dict(SECTIONS):
        raise ValueError(f"Unknown section {section!r}; add it to SECTIONS first.")
    _section_urls[section] = url_name


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: str | None

    @property
    def available(self) -> bool:
        return self.url is not None


def nav_items(workspace_slug: str) -> list[NavItem]:
    items = []
    for key, label in SECTIONS:
        url_name = _section_urls.get(key)
        url = reverse(url_name, kwargs={"workspace_slug": workspace_slug}) if url_name else None
        items.append(NavItem(key, label, url))
    return items


def active_section(items: list[NavItem], path: str) -> str | None:
    """The section whose page is the longest prefix of the current path."""
    matches = [item for item in items if item.url and path.startswith(item.url)]
    return max(matches, key=lambda item: len(item.url or ""), default=None).key if matches else None

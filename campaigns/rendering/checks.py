"""Checks before a template goes into a marketing send.

Errors block a marketing send: no unsubscribe link, no postal address. Warnings do not:
images without alt text, links that are not https, an email Gmail will clip (over 102 KB),
no preheader.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

GMAIL_CLIP_BYTES = 102 * 1024
UNSUBSCRIBE_TAG = re.compile(r"\{\{-?\s*unsubscribe_url\b")
ADDRESS_TAG = re.compile(r"\{\{-?\s*brand\.postal_address\b")


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class LinkAndImageScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images_without_alt = 0
        self.plain_http_links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and not (values.get("alt") or "").strip():
            self.images_without_alt += 1
        href = (values.get("href") or "").strip()
        if tag == "a" and href.lower().startswith("http://"):
            self.plain_http_links.append(href)


def check_email(
    *,
    html_source: str,
    rendered_html: str,
    preheader: str,
    postal_address: str,
    marketing: bool,
) -> CheckReport:
    """`html_source` is the compiled HTML with its Liquid; `rendered_html` is that HTML
    personalised for a sample contact (its size is what lands in an inbox)."""
    report = CheckReport()
    if marketing:
        if not UNSUBSCRIBE_TAG.search(html_source):
            report.errors.append(
                "Add an unsubscribe link: a link to {{ unsubscribe_url }} (the footer block "
                "has one). Marketing email without one breaks the law in most countries."
            )
        address = postal_address.strip()
        has_address = ADDRESS_TAG.search(html_source) or (
            address and html.escape(address.splitlines()[0].strip(), quote=False) in rendered_html
        )
        if not has_address:
            report.errors.append(
                "Add your postal address: set it in the brand kit and keep the footer, or "
                "write {{ brand.postal_address }} in your own footer."
            )
    scan = LinkAndImageScan()
    scan.feed(rendered_html)
    if scan.images_without_alt:
        report.warnings.append(
            f"{scan.images_without_alt} image(s) have no alt text; readers who block images "
            "and screen-reader users will see nothing."
        )
    for href in scan.plain_http_links[:5]:
        report.warnings.append(f"Link is not https: {href}")
    size = len(rendered_html.encode())
    if size > GMAIL_CLIP_BYTES:
        report.warnings.append(
            f"The email is {size / 1024:.0f} KB; Gmail clips messages over 102 KB, hiding "
            "the rest (often the unsubscribe link)."
        )
    if not preheader.strip():
        report.warnings.append(
            "No preheader: inboxes will show the first text of the email next to the subject."
        )
    return report

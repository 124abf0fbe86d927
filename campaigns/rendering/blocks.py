"""Blocks: the body format of the block editor, checked and turned into MJML.

A body is a JSON list of blocks, each a dict with a "type" and that type's fields:

    heading       text, level (1-3), align
    text          html (paragraphs, bold, italic, links, lists), align
    button        label, url, align
    image         src, alt, href, width (px, 40-600)
    divider       -
    spacer        height (px, 4-120)
    columns       columns: 2 or 3 lists of heading/text/button/image blocks
    product_list  items (a Liquid path to a list, e.g. event.properties.products), title,
                  button_label, currency; each item may have name, price, quantity,
                  image_url and url (Segment's e-commerce product fields)
    social        the brand kit's social links
    footer        the brand kit's footer: address, footer text, unsubscribe link

Every text field may hold Liquid. `align` is left, center or right.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from .brand import Brand
from .sanitize import clean_fragment
from .shield import LiquidShield

ALIGNS = ("left", "center", "right")
INNER_TYPES = ("heading", "text", "button", "image")
LIQUID_PATH = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+|\[\d+\])*$")
SAFE_URL = re.compile(r"^(https?://|mailto:|tel:|#|\{\{)", re.IGNORECASE)
HEADING_SIZES = {1: "28px", 2: "22px", 3: "18px"}
MAX_BLOCKS = 200


@dataclass(frozen=True)
class BlockProblem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def block_label(path: str, block: dict) -> str:
    kind = block.get("type", "?") if isinstance(block, dict) else "?"
    return f"Block {path} ({kind})"


def _text(block: dict, key: str, required: bool, problems: list, where: str, limit=5000) -> None:
    value = block.get(key, "")
    if not isinstance(value, str):
        problems.append(BlockProblem(where, f"{key} must be text"))
    elif required and not value.strip():
        problems.append(BlockProblem(where, f"{key} is required"))
    elif len(value) > limit:
        problems.append(BlockProblem(where, f"{key} is longer than {limit:,} characters"))


def _url(block: dict, key: str, required: bool, problems: list, where: str) -> None:
    value = block.get(key, "")
    _text(block, key, required, problems, where, limit=2000)
    if isinstance(value, str) and value.strip() and not SAFE_URL.match(value.strip()):
        problems.append(
            BlockProblem(where, f"{key} must start with https://, http://, mailto: or tel:")
        )


def _number(block: dict, key: str, low: int, high: int, problems: list, where: str) -> None:
    value = block.get(key)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        problems.append(BlockProblem(where, f"{key} must be a whole number from {low} to {high}"))


def _check_one(block: object, path: str, inner: bool, problems: list[BlockProblem]) -> None:
    if not isinstance(block, dict):
        problems.append(BlockProblem(f"Block {path}", "must be an object with a type"))
        return
    where = block_label(path, block)
    kind = block.get("type")
    allowed = INNER_TYPES if inner else BLOCK_CHECKS
    if kind not in allowed:
        choices = ", ".join(allowed)
        problems.append(BlockProblem(where, f"unknown block type; use one of {choices}"))
        return
    if block.get("align", "left") not in ALIGNS:
        problems.append(BlockProblem(where, "align must be left, center or right"))
    BLOCK_CHECKS[kind](block, path, where, problems)


def _check_heading(block, path, where, problems):
    _text(block, "text", True, problems, where, limit=500)
    if block.get("level", 1) not in (1, 2, 3):
        problems.append(BlockProblem(where, "level must be 1, 2 or 3"))


def _check_text(block, path, where, problems):
    _text(block, "html", True, problems, where, limit=20_000)


def _check_button(block, path, where, problems):
    _text(block, "label", True, problems, where, limit=200)
    _url(block, "url", True, problems, where)


def _check_image(block, path, where, problems):
    _url(block, "src", True, problems, where)
    _url(block, "href", False, problems, where)
    _text(block, "alt", False, problems, where, limit=300)
    _number(block, "width", 40, 600, problems, where)


def _check_spacer(block, path, where, problems):
    _number(block, "height", 4, 120, problems, where)


def _check_columns(block, path, where, problems):
    columns = block.get("columns")
    if not isinstance(columns, list) or not 2 <= len(columns) <= 3:
        problems.append(BlockProblem(where, "columns must be a list of 2 or 3 columns"))
        return
    for c, column in enumerate(columns, start=1):
        if not isinstance(column, list):
            problems.append(BlockProblem(where, f"column {c} must be a list of blocks"))
            continue
        for i, inner in enumerate(column, start=1):
            _check_one(inner, f"{path}.{c}.{i}", True, problems)


def _check_product_list(block, path, where, problems):
    items = block.get("items", "")
    if not isinstance(items, str) or not LIQUID_PATH.match(items.strip()):
        problems.append(
            BlockProblem(where, "items must be a variable path such as event.properties.products")
        )
    _text(block, "title", False, problems, where, limit=200)
    _text(block, "button_label", False, problems, where, limit=100)
    currency = block.get("currency", "USD")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        problems.append(BlockProblem(where, "currency must be a three-letter code such as USD"))


def _check_nothing(block, path, where, problems):
    return None


BLOCK_CHECKS = {
    "heading": _check_heading,
    "text": _check_text,
    "button": _check_button,
    "image": _check_image,
    "divider": _check_nothing,
    "spacer": _check_spacer,
    "columns": _check_columns,
    "product_list": _check_product_list,
    "social": _check_nothing,
    "footer": _check_nothing,
}


def check_blocks(blocks: object) -> list[BlockProblem]:
    if not isinstance(blocks, list):
        return [BlockProblem("Body", "blocks must be a list")]
    if len(blocks) > MAX_BLOCKS:
        return [BlockProblem("Body", f"a template holds at most {MAX_BLOCKS} blocks")]
    problems: list[BlockProblem] = []
    for index, block in enumerate(blocks, start=1):
        _check_one(block, str(index), False, problems)
    return problems


def liquid_fields(blocks: list, prefix: str = "") -> list[tuple[str, str]]:
    """(where, text) for every text field of every block, to check its Liquid alone."""
    found = []
    for index, block in enumerate(blocks, start=1):
        path = f"{prefix}{index}"
        for key in ("text", "html", "label", "url", "src", "href", "alt", "title", "button_label"):
            value = block.get(key)
            if isinstance(value, str) and ("{{" in value or "{%" in value):  # even unclosed
                found.append((f"{block_label(path, block)} {key}", value))
        if block.get("type") == "columns":
            for c, column in enumerate(block.get("columns", []), start=1):
                found.extend(liquid_fields(column, f"{path}.{c}."))
    return found


def escape_text(value: str) -> str:
    return html.escape(value, quote=False)


class MjmlWriter:
    """Writes blocks as MJML sections styled by the brand; Liquid goes through the shield."""

    def __init__(self, brand: Brand, shield: LiquidShield) -> None:
        self.brand = brand
        self.shield = shield

    def text(self, value: str) -> str:
        return self.shield.protect(value or "", escape=escape_text)

    def attr(self, value: str) -> str:
        return self.shield.protect(str(value or ""), escape=html.escape)

    def body(self, blocks: list[dict]) -> str:
        sections, run = [], []
        for block in blocks:
            if block["type"] in SECTION_TYPES:
                if run:
                    sections.append(self.section("".join(run)))
                    run = []
                sections.append(self.element(block))
            else:
                run.append(self.element(block))
        if run:
            sections.append(self.section("".join(run)))
        return "\n".join(sections)

    def section(self, inner: str, columns: int = 1) -> str:
        if columns == 1:
            inner = f"<mj-column>{inner}</mj-column>"
        return f'<mj-section padding="8px 0">{inner}</mj-section>'

    def element(self, block: dict) -> str:
        method = "rich_text" if block["type"] == "text" else block["type"]
        return getattr(self, method)(block)

    def heading(self, block: dict) -> str:
        level = block.get("level", 1)
        return (
            f'<mj-text align="{block.get("align", "left")}" font-size="{HEADING_SIZES[level]}" '
            f'font-weight="bold" line-height="1.25" '
            f'font-family="{html.escape(self.brand.heading_font_stack)}">'
            f'<h{level} style="margin:0;font-size:inherit">{self.text(block["text"])}</h{level}>'
            f"</mj-text>"
        )

    def rich_text(self, block: dict) -> str:
        safe = clean_fragment(self.shield.protect(block.get("html", "")), rich_text_only=True)
        return f'<mj-text align="{block.get("align", "left")}">{safe}</mj-text>'

    def button(self, block: dict) -> str:
        return (
            f'<mj-button align="{block.get("align", "left")}" href="{self.attr(block["url"])}">'
            f"{self.text(block['label'])}</mj-button>"
        )

    def image(self, block: dict) -> str:
        href = f' href="{self.attr(block["href"])}"' if block.get("href") else ""
        width = f' width="{block["width"]}px"' if block.get("width") else ""
        return (
            f'<mj-image src="{self.attr(block["src"])}" alt="{self.attr(block.get("alt", ""))}"'
            f'{href}{width} align="{block.get("align", "center")}" />'
        )

    def divider(self, block: dict) -> str:
        return f'<mj-divider border-width="1px" border-color="{self.brand.text_color}33" />'

    def spacer(self, block: dict) -> str:
        return f'<mj-spacer height="{block.get("height", 24)}px" />'

    def columns(self, block: dict) -> str:
        columns = "".join(
            "<mj-column>" + "".join(self.element(inner) for inner in column) + "</mj-column>"
            for column in block["columns"]
        )
        return self.section(columns, columns=len(block["columns"]))

    def product_list(self, block: dict) -> str:
        items = block["items"].strip()
        currency = block.get("currency", "USD").upper()
        label = block.get("button_label", "")
        title = f'<mj-text><h2 style="margin:0">{self.text(block.get("title", ""))}</h2></mj-text>'
        link = (
            f'{{% if item.url %}}<br><a href="{{{{ item.url }}}}" '
            f'style="color:{self.brand.primary_color}">{html.escape(label)}</a>{{% endif %}}'
            if label
            else ""
        )
        item = (
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr>'
            '<td style="padding:8px 12px 8px 0;width:88px;vertical-align:top">'
            "{% if item.image_url %}"
            '<img src="{{ item.image_url }}" alt="{{ item.name }}" width="80" '
            'style="display:block;width:80px;border-radius:4px">{% endif %}</td>'
            '<td style="padding:8px 0;vertical-align:top"><strong>{{ item.name }}</strong>'
            "{% if item.quantity %} &times; {{ item.quantity }}{% endif %}" + link + "</td>"
            '<td style="padding:8px 0;text-align:right;vertical-align:top;white-space:nowrap">'
            '{% if item.price %}{{ item.price | money: "' + currency + '" }}{% endif %}</td>'
            "</tr></table>"
        )
        row = "<tr><td>{% for item in " + items + " limit: 50 %}" + item + "{% endfor %}</td></tr>"
        table = f'<mj-table padding="8px 25px">{self.shield.protect(row)}</mj-table>'
        return self.section((title if block.get("title") else "") + table)

    def social(self, block: dict) -> str:
        if not self.brand.social_links:
            return ""
        elements = "".join(
            f'<mj-social-element name="{SOCIAL_ICONS.get(network, "web")}" '
            f'alt="{html.escape(SOCIAL_LABELS.get(network, network.title()))}" '
            f'href="{html.escape(url)}">{html.escape(SOCIAL_LABELS.get(network, network.title()))}'
            "</mj-social-element>"
            for network, url in self.brand.social_links
        )
        return self.section(
            f'<mj-social mode="horizontal" icon-size="24px" font-size="13px" '
            f'color="{self.brand.text_color}">{elements}</mj-social>'
        )

    def footer(self, block: dict) -> str:
        brand = self.brand
        lines = [html.escape(brand.name)]
        if brand.postal_address:
            lines.append(html.escape(brand.postal_address).replace("\n", ", "))
        if brand.footer_text:
            lines.append(self.text(brand.footer_text))
        links = self.shield.protect(
            f'<a href="{{{{ unsubscribe_url }}}}" style="color:{brand.text_color}">Unsubscribe</a>'
            f' &middot; <a href="{{{{ preferences_url }}}}" style="color:{brand.text_color}">'
            "Email preferences</a>"
        )
        return (
            f'<mj-section padding="16px 0"><mj-column>'
            f'<mj-text align="center" font-size="12px" color="{brand.text_color}">'
            f"{'<br>'.join(lines)}<br>{links}</mj-text></mj-column></mj-section>"
        )


SECTION_TYPES = ("columns", "product_list", "social", "footer")
# MJML's icon names for the brand kit's networks.
SOCIAL_ICONS = {
    "facebook": "facebook",
    "instagram": "instagram",
    "x": "twitter",
    "linkedin": "linkedin",
    "youtube": "youtube",
    "pinterest": "pinterest",
}
SOCIAL_LABELS = {"x": "X", "linkedin": "LinkedIn", "youtube": "YouTube", "tiktok": "TikTok"}

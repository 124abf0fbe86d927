"""Strip from tenant HTML what an email can never need: scripts, event handlers,
javascript: links, forms, frames, remote stylesheets. Everything that styles an email
(tables, inline styles, classes, widths) is kept."""

from __future__ import annotations

import re

import nh3

RICH_TEXT_TAGS = {"p", "br", "strong", "b", "em", "i", "u", "s", "a", "ul", "ol", "li", "span"}
EMAIL_TAGS = RICH_TEXT_TAGS | {
    "h1", "h2", "h3", "h4", "h5", "h6", "div", "table", "thead", "tbody", "tfoot", "tr",
    "td", "th", "img", "hr", "center", "font", "small", "sup", "sub", "blockquote", "pre",
    "code", "section", "header", "footer", "article", "caption", "col", "colgroup",
}  # fmt: skip
EMAIL_ATTRIBUTES = {
    "*": {
        "style", "class", "align", "valign", "width", "height", "bgcolor", "dir", "lang",
        "title", "role", "id",
    },
    "a": {"href", "target", "name"},
    "img": {"src", "alt", "border"},
    "table": {"border", "cellpadding", "cellspacing"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "font": {"color", "face", "size"},
}  # fmt: skip
RICH_TEXT_ATTRIBUTES = {"*": {"style"}, "a": {"href", "target"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>", re.IGNORECASE | re.DOTALL)
BODY = re.compile(r"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)
FULL_DOCUMENT = re.compile(r"^\s*(<!doctype[^>]*>\s*)?<html", re.IGNORECASE)
DANGEROUS_CSS = re.compile(
    r"@import[^;]*;?|expression\s*\(|javascript:|behavior\s*:|-moz-binding", re.IGNORECASE
)


def clean_fragment(markup: str, rich_text_only: bool = False) -> str:
    return nh3.clean(
        markup,
        tags=RICH_TEXT_TAGS if rich_text_only else EMAIL_TAGS,
        attributes=RICH_TEXT_ATTRIBUTES if rich_text_only else EMAIL_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=False,  # Liquid tags travel as comments (see shield.py)
    )


def clean_css(css: str) -> str:
    return DANGEROUS_CSS.sub("", css).replace("</", "")


def is_full_document(markup: str) -> bool:
    return bool(FULL_DOCUMENT.match(markup))


def clean_document(markup: str) -> tuple[str, str]:
    """(css, body) of a whole HTML document, both cleaned."""
    css = "\n".join(clean_css(block) for block in STYLE_BLOCK.findall(markup))
    body = BODY.search(markup)
    inner = body[1] if body else STYLE_BLOCK.sub("", markup)
    return css, clean_fragment(inner)

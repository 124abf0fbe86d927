"""Strip from tenant HTML what an email can never need: scripts, event handlers,
javascript: links, forms, frames, remote stylesheets. Everything that styles an email
(tables, inline styles, classes, widths) is kept."""

from __future__ import annotations

import re

import nh3

from .shield import LiquidShield

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
HEAD = re.compile(r"<head[^>]*>(.*?)</head>", re.IGNORECASE | re.DOTALL)
BODY_BACKGROUND = re.compile(
    r"<body[^>]*?background-color:\s*(#[0-9a-fA-F]{3,8}|[a-zA-Z]+)", re.IGNORECASE
)
STYLE_CONTENT = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.IGNORECASE | re.DOTALL)
HEAD_TAGS = {"title", "meta", "style"}
HEAD_ATTRIBUTES = {"meta": {"name", "content", "charset"}, "style": {"type", "media"}}
HEAD_ATTRIBUTE_VALUES = {"meta": {"http-equiv": {"X-UA-Compatible", "Content-Type"}}}
MJML_ATTRIBUTES = {
    **EMAIL_ATTRIBUTES,
    "*": EMAIL_ATTRIBUTES["*"] | {"aria-label", "aria-roledescription", "aria-hidden"},
    "td": EMAIL_ATTRIBUTES["td"] | {"vertical-align"},
}
DOCUMENT_START = (
    '<!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml" '
    'xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">'
)
URL_ATTRIBUTE = re.compile(
    r"""(\s(?:href|src|background|action)\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE
)
FIXED_SCHEME = re.compile(r"^\s*(?:[a-z][a-z0-9+.\-]*:|[/#?])", re.IGNORECASE)
OUTPUT_TAG = re.compile(r"^\{\{(-?)(.*?)(-?)\}\}$", re.DOTALL)


def clean_fragment(markup: str, rich_text_only: bool = False) -> str:
    return nh3.clean(
        markup,
        tags=RICH_TEXT_TAGS if rich_text_only else EMAIL_TAGS,
        attributes=RICH_TEXT_ATTRIBUTES if rich_text_only else EMAIL_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=False,  # Liquid tags travel as comments (see shield.py)
        attribute_filter=clean_style_attribute,
    )


def clean_css(css: str) -> str:
    return DANGEROUS_CSS.sub("", css).replace("</", "")


def clean_style_attribute(tag: str, attribute: str, value: str) -> str:
    """nh3 keeps style attributes as they are; they get the stylesheet's cleaning."""
    return clean_css(value) if attribute == "style" else value


def is_full_document(markup: str) -> bool:
    return bool(FULL_DOCUMENT.match(markup))


def clean_document(markup: str) -> tuple[str, str]:
    """(css, body) of a whole HTML document, both cleaned."""
    css = "\n".join(clean_css(block) for block in STYLE_BLOCK.findall(markup))
    body = BODY.search(markup)
    inner = body[1] if body else STYLE_BLOCK.sub("", markup)
    return css, clean_fragment(inner)


def clean_mjml_output(document: str) -> str:
    """MJML's HTML, cleaned like tenant HTML. MJML passes markup through untouched: mj-raw,
    an attribute value that closes its own quotes, a comment that splits an mj-text."""
    head, body = HEAD.search(document), BODY.search(document)
    head_html = nh3.clean(
        head[1] if head else "",
        tags=HEAD_TAGS,
        clean_content_tags={"script"},
        attributes=HEAD_ATTRIBUTES,
        tag_attribute_values=HEAD_ATTRIBUTE_VALUES,
        link_rel=None,
        strip_comments=False,  # Outlook's conditional comments
    )
    head_html = STYLE_CONTENT.sub(lambda m: m[1] + clean_css(m[2]) + m[3], head_html)
    body_html = nh3.clean(
        body[1] if body else document,
        tags=EMAIL_TAGS,
        attributes=MJML_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=False,
        attribute_filter=clean_style_attribute,
    )
    background = BODY_BACKGROUND.search(document)
    style = f' style="word-spacing:normal;background-color:{background[1]}"' if background else ""
    return f"{DOCUMENT_START}<head>{head_html}</head><body{style}>{body_html}</body></html>"


def guard_liquid_urls(html: str, shield: LiquidShield) -> str:
    """Send every link or image address whose scheme Liquid decides (`href="{{ x }}"`)
    through the safe_url filter, so a recipient's data cannot make it a javascript: link.
    `html` still has its Liquid shielded (see shield.py)."""

    def guard(match: re.Match[str]) -> str:
        quote = '"' if match[2] is not None else "'"
        value = match[2] if match[2] is not None else match[3]
        tags = list(shield.token_pattern.finditer(value))
        if not tags or FIXED_SCHEME.match(value[: tags[0].start()]):
            return match[0]
        number = int(tags[0][1])
        output = OUTPUT_TAG.match(shield.originals[number])
        if len(tags) == 1 and tags[0].span() == (0, len(value)) and output:  # the usual case
            shield.originals[number] = f"{{{{{output[1]}{output[2]} | safe_url {output[3]}}}}}"
            return match[0]
        guarded = f"{{% capture mp_url %}}{value}{{% endcapture %}}{{{{ mp_url | safe_url }}}}"
        return f"{match[1]}{quote}{guarded}{quote}"

    return URL_ATTRIBUTE.sub(guard, html)

"""The brand layout every template body is wrapped in: head styles from the brand kit, the
logo on top and the footer (address, unsubscribe) at the bottom."""

from __future__ import annotations

import html

from .blocks import MjmlWriter

RESPONSIVE_CSS = """
@media only screen and (max-width: 480px) {
  .mp-body { padding: 0 !important; }
  h1 { font-size: 24px !important; }
}
"""


def mjml_head(writer: MjmlWriter, preheader: str) -> str:
    brand = writer.brand
    preview = f"<mj-preview>{writer.text(preheader)}</mj-preview>" if preheader else ""
    return (
        "<mj-head>"
        f"<mj-title>{html.escape(brand.name)}</mj-title>{preview}"
        "<mj-attributes>"
        f'<mj-all font-family="{html.escape(brand.font_stack)}" />'
        f'<mj-text color="{brand.text_color}" font-size="16px" line-height="1.6" />'
        f'<mj-button background-color="{brand.button_color}" color="{brand.button_text_color}" '
        'font-size="16px" font-weight="bold" border-radius="6px" inner-padding="12px 24px" />'
        f'<mj-section background-color="{brand.content_background_color}" />'
        "</mj-attributes>"
        f"<mj-style>a {{ color: {brand.primary_color}; }} {RESPONSIVE_CSS}</mj-style>"
        "</mj-head>"
    )


def mjml_header(writer: MjmlWriter) -> str:
    brand = writer.brand
    if brand.logo_url:
        inner = (
            f'<mj-image src="{html.escape(brand.logo_url)}" width="{brand.logo_width}px" '
            f'alt="{html.escape(brand.logo_alt or brand.name)}" align="center" />'
        )
    else:
        inner = (
            f'<mj-text align="center" font-size="22px" font-weight="bold" '
            f'color="{brand.primary_color}" '
            f'font-family="{html.escape(brand.heading_font_stack)}">'
            f"{html.escape(brand.name)}</mj-text>"
        )
    return f'<mj-section padding="20px 0 12px">{inner_column(inner)}</mj-section>'


def inner_column(inner: str) -> str:
    return f"<mj-column>{inner}</mj-column>"


def wrap_in_layout(writer: MjmlWriter, body_mjml: str, preheader: str, has_footer: bool) -> str:
    footer = "" if has_footer else writer.footer({})
    return (
        f"<mjml>{mjml_head(writer, preheader)}"
        f'<mj-body background-color="{writer.brand.background_color}" width="600px" '
        f'css-class="mp-body">{mjml_header(writer)}{body_mjml}{footer}</mj-body></mjml>'
    )


def add_preview(mjml: str, writer: MjmlWriter, preheader: str) -> str:
    """Give a whole MJML document the template's preheader, unless it has its own."""
    if not preheader or "<mj-preview" in mjml:
        return mjml
    preview = f"<mj-preview>{writer.text(preheader)}</mj-preview>"
    if "<mj-head>" in mjml:
        return mjml.replace("<mj-head>", f"<mj-head>{preview}", 1)
    return mjml.replace("<mjml>", f"<mjml><mj-head>{preview}</mj-head>", 1)


def html_document(css: str, body: str, preheader: str, writer: MjmlWriter) -> str:
    hidden = (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
        f"{writer.text(preheader)}</div>"
        if preheader
        else ""
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(writer.brand.name)}</title><style>{css}</style></head>"
        f"<body>{hidden}{body}</body></html>"
    )

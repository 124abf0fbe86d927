"""The rendering pipeline as a reader of the email sees it: every kind of body (blocks, MJML,
raw HTML; fragment or whole document) comes out responsive, with its CSS inlined, a
readable plain-text part and the brand kit applied; Liquid survives MJML, the sanitiser and
the inliner; and compiling never touches the network."""

from __future__ import annotations

import http.server
import re
import threading
from dataclasses import replace

import pytest

from campaigns.rendering.brand import Brand
from campaigns.rendering.compile import TemplateContent, TemplateInvalid, compile_email
from campaigns.rendering.context import SAMPLE_CONTACT, SAMPLE_EVENT, render_context

BRAND = Brand(
    name="Acme Outdoor",
    logo_url="https://app.example.com/brand/acme/logo?v=1",
    logo_alt="Acme Outdoor logo",
    primary_color="#aa0011",
    text_color="#112233",
    background_color="#fafafa",
    content_background_color="#fffff0",
    button_color="#00aa55",
    button_text_color="#fefefe",
    font_stack="Georgia, Times, 'Times New Roman', serif",
    heading_font_stack="Verdana, Geneva, sans-serif",
    footer_text="You joined our list at acme.example.com.",
    postal_address="12 Harbour Road\nBristol BS1 4AA",
    social_links=(("instagram", "https://instagram.com/acme"),),
)
UNSUBSCRIBE = "https://app.example.com/u/tok-123"
LINK = '<a href="https://acme.example.com/more">Read more</a>'
INTRO = f"<p>Hello {{{{ contact.first_name }}}}, spring is here. {LINK}</p>"

BLOCKS = [
    {"type": "heading", "text": "Spring sale"},
    {"type": "text", "html": INTRO},
    {"type": "button", "label": "Shop now", "url": "https://acme.example.com/shop"},
    {"type": "footer"},
]
MJML_FRAGMENT = (
    f"<mj-section><mj-column><mj-text>{INTRO}</mj-text>"
    '<mj-button href="https://acme.example.com/shop">Shop now</mj-button>'
    "</mj-column></mj-section>"
)
MJML_DOCUMENT = (
    "<mjml><mj-head><mj-style>.lead { color: #445566; }"
    " @media only screen and (max-width: 480px) { .lead { font-size: 20px !important; } }"
    "</mj-style></mj-head><mj-body><mj-section><mj-column>"
    f'<mj-text><p class="lead">Hello {{{{ contact.first_name }}}}, spring is here. {LINK}</p>'
    "<p>Unsubscribe: {{ unsubscribe_url }}</p></mj-text>"
    "</mj-column></mj-section></mj-body></mjml>"
)
HTML_FRAGMENT = INTRO + "<p><strong>Shop now</strong></p>"
HTML_DOCUMENT = (
    "<!doctype html><html><head><style>.lead { color: #445566; }"
    " @media only screen and (max-width: 480px) { .lead { font-size: 20px !important; } }"
    "</style></head><body>"
    f'<p class="lead">Hello {{{{ contact.first_name }}}}, spring is here. {LINK}</p>'
    "</body></html>"
)


def body(**fields: object) -> TemplateContent:
    return TemplateContent(**{"subject": "Spring", "preheader": "Ten days only", **fields})


BODIES = {
    "blocks": body(kind="blocks", blocks=BLOCKS),
    "mjml-fragment": body(kind="mjml", source=MJML_FRAGMENT),
    "mjml-document": body(kind="mjml", source=MJML_DOCUMENT),
    "html-fragment": body(kind="html", source=HTML_FRAGMENT),
    "html-document": body(kind="html", source=HTML_DOCUMENT),
}
WRAPPED_IN_LAYOUT = ("blocks", "mjml-fragment", "html-fragment")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<!--")


def context(brand: Brand = BRAND, contact: dict | None = None, event: dict | None = None) -> dict:
    return render_context(
        contact=contact if contact is not None else dict(SAMPLE_CONTACT),
        brand=brand,
        workspace={"name": "Acme Outdoor", "timezone": "UTC"},
        event=event if event is not None else SAMPLE_EVENT,
        links={"unsubscribe_url": UNSUBSCRIBE, "preferences_url": "https://app.example.com/p"},
    )


def render(content: TemplateContent, brand: Brand = BRAND, **kwargs):  # type: ignore[no-untyped-def]
    return compile_email(content, brand).personalise(context(brand, **kwargs))


def style_blocks(html: str) -> str:
    return "\n".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL))


@pytest.mark.parametrize("name", BODIES)
def test_every_kind_of_body_renders_a_responsive_email_with_inlined_css(name):
    email = render(BODIES[name])

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in email.html
    assert "@media only screen and (max-width:" in style_blocks(email.html)
    link = re.search(r'<a href="https://acme.example.com/more"[^>]*>', email.html)[0]
    if name.endswith("document"):  # the document's own stylesheet, inlined
        lead = re.search(r'<p class="lead"[^>]*>', email.html)[0]
        assert "color: #445566" in lead
        assert ".lead { font-size: 20px !important; }" in style_blocks(email.html)
    else:  # the brand layout's stylesheet, inlined into the tenant's link
        assert "color: #aa0011" in link
    assert "Hello Jamie, spring is here." in email.html


@pytest.mark.parametrize("name", BODIES)
def test_the_plain_text_part_has_no_tags_and_shows_links_with_their_address(name):
    email = render(BODIES[name])

    assert not HTML_TAG.search(email.text), email.text
    assert "Hello Jamie, spring is here. Read more (https://acme.example.com/more)" in email.text
    assert "{{" not in email.text and "{%" not in email.text
    assert "\n\n\n" not in email.text


@pytest.mark.parametrize("name", WRAPPED_IN_LAYOUT)
def test_the_brand_layout_dresses_every_fragment(name):
    email = render(BODIES[name])
    html = email.html

    logo = re.search(r'<img [^>]*src="https://app.example.com/brand/acme/logo\?v=1"[^>]*>', html)
    assert logo and 'alt="Acme Outdoor logo"' in logo[0]
    assert "background-color:#fafafa" in html.replace(" ", "")
    assert "Georgia, Times, 'Times New Roman', serif" in html
    assert "12 Harbour Road, Bristol BS1 4AA" in html
    assert "You joined our list at acme.example.com." in html
    assert f'<a href="{UNSUBSCRIBE}"' in html
    assert f"Unsubscribe ({UNSUBSCRIBE})" in email.text
    assert "12 Harbour Road, Bristol BS1 4AA" in email.text
    # the preheader: first thing in the body, hidden from view
    hidden = re.search(r"<body[^>]*>.*?<div[^>]*display:\s*none[^>]*>([^<]*)</div>", html, re.S)
    assert hidden and hidden[1].strip() == "Ten days only"


def test_blocks_take_the_button_heading_and_content_colours_and_fonts_from_the_brand():
    html = render(BODIES["blocks"]).html

    button = re.search(r'<a href="https://acme.example.com/shop"[^>]*>', html)[0]
    assert "background:#00aa55" in button.replace(" ", "")
    assert "color:#fefefe" in button.replace(" ", "")
    assert "Verdana, Geneva, sans-serif" in html  # headings
    assert "#fffff0" in html  # content background
    assert "#112233" in html  # text colour


def test_changing_the_brand_changes_the_email():
    other = replace(
        BRAND,
        name="Bloom Florists",
        logo_url="",
        primary_color="#0000ee",
        background_color="#e0e0e0",
        button_color="#123456",
        font_stack="'Courier New', Courier, monospace",
        postal_address="1 Rose Lane\nLeeds LS1 1AA",
        footer_text="",
    )
    before, after = render(BODIES["blocks"]), render(BODIES["blocks"], brand=other)

    assert "#aa0011" in before.html and "#aa0011" not in after.html
    assert "#0000ee" in after.html and "#123456" in after.html and "#e0e0e0" in after.html
    assert "brand/acme/logo" not in after.html and "Bloom Florists" in after.html
    assert "'Courier New', Courier, monospace" in after.html and "Georgia" not in after.html
    assert "1 Rose Lane, Leeds LS1 1AA" in after.text and "Harbour Road" not in after.text


def test_whole_documents_are_the_tenants_own_and_get_no_brand_layout():
    for name in ("mjml-document", "html-document"):
        html = render(BODIES[name]).html
        assert "brand/acme/logo" not in html and "Harbour Road" not in html, name
        assert "Ten days only" in html, name  # but they still get the preheader


PRODUCT_BLOCKS = [
    {"type": "heading", "text": "You left these behind"},
    {
        "type": "product_list",
        "items": "event.properties.products",
        "title": "Your cart",
        "button_label": "View product",
        "currency": "EUR",
    },
    {"type": "footer"},
]


def test_a_product_list_loops_over_the_cart_in_order_in_both_parts():
    email = render(TemplateContent(kind="blocks", subject="Your cart", blocks=PRODUCT_BLOCKS))

    text = email.text
    shoes, socks = text.index("Trail running shoes"), text.index("Merino socks (2 pack)")
    assert shoes < socks
    assert "View product (https://example.com/products/shoes)" in text[shoes:socks]
    assert "€89.50" in text[shoes:socks] and "€22.50" in text[socks:]
    assert "\N{MULTIPLICATION SIGN} 2" in text[socks:]
    html = email.html
    assert html.index("Trail running shoes") < html.index("Merino socks (2 pack)")
    assert '<a href="https://example.com/products/socks"' in html
    assert html.count('<img src="https://placehold.co/160x160/png"') == 2


def test_a_product_list_with_an_empty_cart_renders_no_rows():
    event = {"name": "Cart Updated", "occurred_at": "", "properties": {"products": []}}
    email = render(
        TemplateContent(kind="blocks", subject="Your cart", blocks=PRODUCT_BLOCKS), event=event
    )
    assert "You left these behind" in email.text and "View product" not in email.text


CONTACT = {**SAMPLE_CONTACT, "email": "jo+spring@example.com", "first_name": "Jo"}
ENCODED = "https://x.test/?e=jo%2Bspring%40example.com"


def test_liquid_in_an_href_survives_mjml_and_inlining():
    source = (
        "<mj-section><mj-column><mj-text>"
        '<a href="https://x.test/?e={{ contact.email | url_encode }}">Your account</a>'
        "</mj-text>"
        '<mj-button href="https://x.test/b?e={{ contact.email | url_encode }}&amp;n={{ '
        'contact.first_name }}">Go</mj-button>'
        "</mj-column></mj-section>"
    )
    email = render(TemplateContent(kind="mjml", subject="Hi", source=source), contact=CONTACT)

    assert f'<a href="{ENCODED}"' in email.html
    assert '<a href="https://x.test/b?e=jo%2Bspring%40example.com&amp;n=Jo"' in email.html
    assert f"Your account ({ENCODED})" in email.text
    assert "Go (https://x.test/b?e=jo%2Bspring%40example.com&n=Jo)" in email.text


@pytest.mark.parametrize("kind", ["html", "blocks"])
def test_liquid_in_an_href_survives_the_sanitiser(kind):
    link = '<p><a href="https://x.test/?e={{ contact.email | url_encode }}">Your account</a></p>'
    content = TemplateContent(
        kind=kind,
        subject="Hi",
        source=link,
        blocks=[
            {"type": "text", "html": link},
            {"type": "button", "label": "Go", "url": "https://x.test/b?e={{ contact.email }}"},
        ],
    )
    email = render(content, contact=CONTACT)
    assert f'<a href="{ENCODED}"' in email.html
    if kind == "blocks":
        assert 'href="https://x.test/b?e=jo+spring@example.com"' in email.html


def test_liquid_branches_inside_an_href_choose_the_link():
    source = (
        "<p><a href=\"{% if contact.plan == 'pro' %}https://x.test/pro"
        '{% else %}https://x.test/free{% endif %}">Your plan</a></p>'
    )
    content = TemplateContent(kind="html", subject="Hi", source=source)
    pro = render(content, contact={**CONTACT, "plan": "pro"})
    free = render(content, contact=CONTACT)
    assert (
        '<a href="https://x.test/pro"' in pro.html and "Your plan (https://x.test/pro)" in pro.text
    )
    assert '<a href="https://x.test/free"' in free.html


ROWS = (
    "<table><tr><th>Item</th><th>Price</th></tr>"
    "{% for item in event.properties.products %}"
    "<tr><td>{{ item.name }}</td><td>{{ item.price | money }}</td></tr>"
    "{% endfor %}"
    "<tr><td>Total</td><td>{{ event.properties.total | money }}</td></tr></table>"
)


@pytest.mark.parametrize(
    "source", [ROWS, f"<!DOCTYPE html><html><body>{ROWS}</body></html>"], ids=["fragment", "doc"]
)
def test_a_for_loop_between_table_rows_stays_in_the_table(source):
    email = render(TemplateContent(kind="html", subject="Order", source=source))

    table = re.search(
        r"<table[^>]*>(?:(?!</table>).)*Item(?:(?!</table>).)*</table>", email.html, re.S
    )
    assert table, email.html
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table[0])
    assert cells == [
        "Trail running shoes", "$89.50", "Merino socks (2 pack)", "$22.50", "Total", "$134.50",
    ]  # fmt: skip
    text = email.text
    assert text.index("Trail running shoes") < text.index("Merino socks") < text.index("Total")


def test_liquid_in_a_style_attribute_survives_inlining():
    source = (
        "<!DOCTYPE html><html><head><style>p { margin: 0; }</style></head><body>"
        '<p style="color: {{ brand.primary_color }}">Hi</p></body></html>'
    )
    html = render(TemplateContent(kind="html", subject="Hi", source=source)).html
    assert re.search(r'<p style="[^"]*color: #aa0011[^"]*">Hi</p>', html), html


class CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        CountingHandler.requests.append(self.path)
        body = b"p { color: red }"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server():
    CountingHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_counting_server_counts(local_server):
    # the server the next tests rely on does answer and count
    import urllib.request

    with urllib.request.urlopen(f"{local_server}/probe.css") as response:
        assert response.status == 200
    assert CountingHandler.requests == ["/probe.css"]


def test_compiling_html_fetches_no_stylesheet(local_server):
    source = (
        f'<!DOCTYPE html><html><head><link rel="stylesheet" href="{local_server}/x.css">'
        f"<style>@import url({local_server}/y.css); p {{ margin: 0; }}</style></head>"
        f'<body><link rel="stylesheet" href="{local_server}/z.css">'
        f'<p style="background: url({local_server}/bg.png)">Hi</p></body></html>'
    )
    email = render(TemplateContent(kind="html", subject="Hi", source=source))
    fragment = render(
        TemplateContent(
            kind="html",
            subject="Hi",
            source=f'<link rel="stylesheet" href="{local_server}/f.css">'
            f"<style>@import url({local_server}/g.css);</style><p>Hi</p>",
        )
    )

    assert CountingHandler.requests == []
    for html in (email.html, fragment.html):
        assert "<link" not in html and "@import" not in html
        assert "fonts.googleapis.com" not in html


def test_compiling_mjml_fetches_no_font_and_no_include(local_server):
    document = (
        "<mjml><mj-head>"
        f'<mj-font name="Raleway" href="{local_server}/font.css" />'
        '<mj-font name="Roboto" href="https://fonts.googleapis.com/css?family=Roboto" />'
        '<mj-attributes><mj-all font-family="Raleway, Roboto, Ubuntu, Arial" /></mj-attributes>'
        "</mj-head><mj-body><mj-section><mj-column>"
        '<mj-text font-family="Ubuntu, Helvetica">Hi {{ unsubscribe_url }}</mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    email = render(TemplateContent(kind="mjml", subject="Hi", source=document))
    assert "fonts.googleapis.com" not in email.html and "<link" not in email.html

    include = document.replace(
        "<mj-section>", f'<mj-include path="{local_server}/part.mjml" /><mj-section>'
    )
    with pytest.raises(TemplateInvalid) as invalid:
        compile_email(TemplateContent(kind="mjml", subject="Hi", source=include), BRAND)
    assert "mj-include" in str(invalid.value)
    for path in ("/etc/passwd", "../config/settings.py"):
        local = document.replace("<mj-section>", f'<mj-include path="{path}" /><mj-section>')
        with pytest.raises(TemplateInvalid):
            compile_email(TemplateContent(kind="mjml", subject="Hi", source=local), BRAND)
    assert CountingHandler.requests == []


def test_invalid_mjml_is_refused_with_a_hint():
    with pytest.raises(TemplateInvalid) as invalid:
        compile_email(
            TemplateContent(kind="mjml", subject="Hi", source="<mj-section><mj-column>"), BRAND
        )
    assert invalid.value.problems[0].where == "MJML"
    assert "check that every tag is closed" in invalid.value.problems[0].message

"""The injection corpus: every payload of tests/campaigns/injection_payloads.py, placed in
the subject, a text block, a button URL, MJML and raw HTML, saved through the services and
previewed as a contact whose own fields carry payloads too. Each save is either refused
with a clear TemplateInvalid, or renders an email with no script that can run, no Python
object, no setting, within the time limit; or, for the runaway ones, fails that one render
with a reason."""

from __future__ import annotations

import html as htmlmod
import json
import re
import time
from html.parser import HTMLParser

import pytest
from django.conf import settings

from campaigns import services
from campaigns.rendering.brand import Brand
from campaigns.rendering.compile import TemplateContent, TemplateInvalid, compile_email
from campaigns.rendering.context import SAMPLE_CONTACT, render_context
from tests.campaigns.injection_payloads import PAYLOADS
from tests.factories import ContactFactory, EventFactory

FOOTER = {"type": "footer"}
CART = {"type": "product_list", "items": "event.properties.products", "button_label": "View"}
PLACEMENTS = {
    "subject": lambda p: {"subject": f"Hi {p}", "blocks": [{"type": "text", "html": "x"}, FOOTER]},
    "text block": lambda p: {"blocks": [{"type": "text", "html": p}, CART, FOOTER]},
    "heading": lambda p: {"blocks": [{"type": "heading", "text": p}, FOOTER]},
    "button url": lambda p: {"blocks": [{"type": "button", "label": "Go", "url": p}, FOOTER]},
    "button url query": lambda p: {
        "blocks": [{"type": "button", "label": "Go", "url": f"https://shop.test/?q={p}"}, FOOTER]
    },
    "mjml text": lambda p: {
        "kind": "mjml",
        "source": f"<mj-section><mj-column><mj-text>{p}</mj-text></mj-column></mj-section>",
    },
    "mjml raw": lambda p: {
        "kind": "mjml",
        "source": f"<mjml><mj-body><mj-raw>{p}</mj-raw><mj-section><mj-column><mj-text>"
        "{{ unsubscribe_url }}</mj-text></mj-column></mj-section></mj-body></mjml>",
    },
    "html fragment": lambda p: {"kind": "html", "source": f"<p>Hello</p>{p}"},
    "html document": lambda p: {
        "kind": "html",
        "source": f"<!DOCTYPE html><html><head><style>p {{ margin: 0 }}</style></head>"
        f"<body><p>Hello</p>{p}</body></html>",
    },
}
CONTACT_PAYLOADS = {
    "first_name": "<script>alert(1)</script>",
    "last_name": '"><img src=x onerror=alert(1)>',
    "phone": "{{ settings.SECRET_KEY }}",
    "attributes": {
        "website": "javascript:alert(1)",
        "avatar": " JaVa\tScRiPt:alert(2)",
        "plan": "{% debug %}",
        "bio": "<svg onload=alert(1)>",
        "__class__": "a key that looks like a dunder",
    },
}
EVENT_PAYLOAD = {
    "products": [
        {
            "name": "<script>alert(1)</script>",
            "url": "javascript:alert(1)",
            "image_url": "data:text/html,<script>alert(1)</script>",
            "price": "<b>1</b>",
            "quantity": "{{ settings.SECRET_KEY }}",
        }
    ]
}
FORBIDDEN_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "button", "textarea", "select", "base", "link", "svg", "math", "body",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "background", "xlink:href", "data"}
SAFE_SCHEMES = {"http", "https", "mailto", "tel"}
SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
QUOTED_VALUE = re.compile(r"""=\s*(?:"[^"]*"|'[^']*')""")
STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL)
PYTHON_REPRS = (
    "<class", "&lt;class", "object at 0x", "__", "<bound", "&lt;bound", "<function",
    "&lt;function", "<module", "&lt;module", "traceback", "<django", "&lt;django",
)  # fmt: skip


def compact(value: str) -> str:
    """A URL as a browser reads its scheme: entities decoded, blanks and controls gone."""
    return "".join(ch for ch in htmlmod.unescape(value) if ch > " ").lower()


class ScriptScan(HTMLParser):
    """What in an HTML document could run script or load a page (comments are inert)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_TAGS - {"body"} or (tag == "body" and self.in_body):
            self.found.append(f"<{tag}>")
        self.in_body = self.in_body or tag == "body"
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name in URL_ATTRIBUTES:
                scheme = SCHEME.match(compact(value))
                if scheme and scheme[1] not in SAFE_SCHEMES:
                    self.found.append(f"{tag} {name}={value!r}")
            if name == "style" and re.search(r"expression\(|javascript:|behavior:", compact(value)):
                self.found.append(f"{tag} style={value!r}")
            if tag == "meta" and name == "http-equiv" and value.lower() == "refresh":
                self.found.append("meta refresh")

    handle_startendtag = handle_starttag


def scripts_in(html: str) -> list[str]:
    scan = ScriptScan()
    scan.feed(html)
    scan.close()
    # belt and braces: no script tag anywhere but in a comment or inside a quoted attribute
    # value (href="...?q=<script>" is a string, not a tag)
    markup = QUOTED_VALUE.sub('=""', COMMENT.sub("", html)).lower()
    if "<script" in markup:
        scan.found.append("<script")
    for css in STYLE_BLOCK.findall(markup):
        scan.found += [
            n for n in ("@import", "expression(", "javascript:", "behavior:") if n in css
        ]
    return scan.found


def secrets() -> list[str]:
    database = settings.DATABASES["default"]
    values = [settings.SECRET_KEY, database["NAME"], database.get("PASSWORD") or ""]
    return [value for value in values if len(str(value)) >= 4]


@pytest.fixture
def victim(workspace_a):
    workspace_a.postal_address = "12 Harbour Road"
    workspace_a.save()
    contact = ContactFactory(workspace=workspace_a, **CONTACT_PAYLOADS)
    EventFactory(workspace=workspace_a, contact=contact, name="Cart", properties=EVENT_PAYLOAD)
    return contact


def assert_harmless(subject: str, html: str, text: str, payload: str) -> None:
    found = scripts_in(html)
    assert not found, found
    for part in (subject, html, text):
        lowered = part.lower()
        assert not [r for r in PYTHON_REPRS if r in lowered], part[:2000]
        assert not [s for s in secrets() if s in part]
    if "7*7" in payload:
        assert "49" not in subject and "49" not in text


@pytest.mark.parametrize(
    ("kind", "payload"), PAYLOADS, ids=[f"{i:03d}-{k}" for i, (k, _p) in enumerate(PAYLOADS)]
)
def test_a_payload_anywhere_is_refused_or_rendered_harmless(workspace_a, victim, kind, payload):
    outcomes = []
    for index, (where, place) in enumerate(PLACEMENTS.items()):
        fields = {"subject": "Hello {{ contact.first_name }}", "preheader": "P", **place(payload)}
        started = time.monotonic()
        try:
            template = services.create_template(workspace_a, name=f"T{index}", **fields)
        except TemplateInvalid as invalid:
            assert invalid.problems and all(p.message for p in invalid.problems), where
            outcomes.append((where, "refused"))
            continue
        result = services.template_preview(template, contact=victim)
        assert time.monotonic() - started < 2, where
        if result.email is None:  # this one render failed, with its reason; nothing half-sent
            assert result.render_error.startswith("Liquid: ") or "rendered empty" in (
                result.render_error
            ), (where, result.render_error)
            outcomes.append((where, "render failed"))
            continue
        email = result.email
        try:
            assert_harmless(email.subject, email.html, email.text, payload)
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from None
        outcomes.append((where, "rendered"))
    if kind == "exhaustion":
        assert "rendered" not in dict(outcomes).values(), outcomes


def test_a_liquid_probe_cannot_read_python_attributes():
    probes = (
        "[{{ contact.email.__class__ }}{{ contact.__class__ }}{{ contact['__dict__'] }}"
        "{{ contact.attributes.__class__.__mro__ }}{{ event.properties.products.__len__ }}"
        "{{ brand.name.upper }}{{ contact.tags.append }}{{ workspace.keys }}]"
    )
    compiled = compile_email(
        TemplateContent(kind="html", subject=probes, source=f"<p>{probes}</p>"), Brand()
    )
    context = render_context(
        contact=dict(SAMPLE_CONTACT), brand=Brand(), workspace={"name": "W", "timezone": "UTC"}
    )
    email = compiled.personalise(context)
    assert email.subject == "[]"
    assert "\n[]\n" in email.text and re.search(r"<p[^>]*>\[\]</p>", email.html)


def test_the_render_context_is_plain_data(workspace_a, victim):
    context = services.preview_context(workspace_a, victim, services.latest_event_for(victim))

    def walk(value: object) -> None:
        assert type(value) in (dict, list, str, int, float, bool, type(None)), type(value)
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(context)
    assert json.loads(json.dumps(context)) == context
    assert context["contact"]["website"] == "javascript:alert(1)"  # data, printed safely


def test_a_contacts_javascript_link_is_neutralised_but_real_links_are_kept(workspace_a, victim):
    source = (
        '<p><a href="{{ contact.website }}">site</a> <a href="{{ contact.avatar }}">a</a> '
        "<a href=\"{{ item_url | default: 'https://ok.test/x?a=1&b=2' }}\">ok</a> "
        '<a href="mailto:{{ contact.email }}">mail</a> '
        '<a href="{% if contact.plan %}{{ contact.website }}{% endif %}">plan</a></p>'
    )
    template = services.create_template(
        workspace_a, name="Links", subject="Hi", kind="html", source=source
    )
    html = services.template_preview(template, contact=victim).email.html

    hrefs = re.findall(r'<a href="([^"]*)"', html)
    assert hrefs[:5] == [
        "#",
        "#",
        "https://ok.test/x?a=1&amp;b=2",
        f"mailto:{victim.email}",
        "#",
    ]
    assert "javascript" not in html.lower()


def test_mjml_cannot_smuggle_markup_past_the_sanitiser():
    source = (
        "<mjml><mj-head><mj-title>T</mj-title>"
        "<mj-style>p { color: red } @import url(https://evil.test/x.css);</mj-style></mj-head>"
        "<mj-body background-color='#fff\" onload=\"alert(1)'><mj-raw><script>alert(2)</script>"
        '<iframe src="https://evil.test"></iframe></mj-raw><mj-section><mj-column>'
        "<mj-text css-class='x\" onmouseover=\"alert(3)'>hi"
        '<img src="x" onerror="alert(4)" /></mj-text>'
        '<mj-button href="javascript:alert(5)">Go</mj-button>'
        "<mj-image src='https://x.test/i.png\" onerror=\"alert(6)' alt='i' />"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    compiled = compile_email(TemplateContent(kind="mjml", subject="Hi", source=source), Brand())
    email = compiled.personalise({})
    assert scripts_in(email.html) == []
    assert "alert" not in email.html
    assert "p { color: red }" in email.html  # the tenant's own CSS stays
    assert '<meta name="viewport"' in email.html


def test_the_scan_would_catch_what_it_looks_for():
    # the checks above are only worth something if the scanner sees these
    assert scripts_in("<p>x</p><script>alert(1)</script>")
    assert scripts_in("<style>p { color: red } @import url(x.css);</style>")
    assert not scripts_in('<a href="https://x.test/?q=<script>">x</a><p>@import</p>')
    assert scripts_in('<img src=x onerror="alert(1)">')
    assert scripts_in('<a href="&#106;ava\tscript:alert(1)">x</a>')
    assert scripts_in('<p style="width: expression(alert(1))">x</p>')
    assert scripts_in('<meta http-equiv="refresh" content="0;url=x">')
    assert scripts_in("<html><body><p>x</p><body onload=alert(1)></body></html>")
    assert not scripts_in('<!--[if mso]><script>x</script><![endif]--><a href="https://x">x</a>')

"""Personalisation with Liquid: what a template can read, the filters, escaping, where an
error is reported, and the limits that stop a runaway render."""

from __future__ import annotations

import time
from datetime import date
from types import SimpleNamespace

import pytest

from campaigns.rendering import liquid_env
from campaigns.rendering.brand import Brand
from campaigns.rendering.compile import (
    RenderFailed,
    TemplateContent,
    TemplateInvalid,
    check_content,
    compile_email,
)
from campaigns.rendering.context import SAMPLE_CONTACT, SAMPLE_EVENT, contact_data, render_context
from campaigns.rendering.liquid_env import money

BRAND = Brand(name="Acme Outdoor", primary_color="#2f5d3a", postal_address="12 Harbour Road")


def context(contact: dict | None = None, event: dict | None = None, **extra: object) -> dict:
    data = render_context(
        contact={**SAMPLE_CONTACT, **(contact or {})},
        brand=BRAND,
        workspace={"name": "Acme Outdoor", "timezone": "Europe/London"},
        event=event if event is not None else SAMPLE_EVENT,
    )
    return {**data, **extra}


def compiled(body: str, subject: str = "Hello", preheader: str = "", kind: str = "html"):  # type: ignore[no-untyped-def]
    content = TemplateContent(
        kind=kind,
        subject=subject,
        preheader=preheader,
        source=body if kind != "blocks" else "",
        blocks=[{"type": "text", "html": body}] if kind == "blocks" else [],
    )
    return compile_email(content, BRAND)


def text_of(body: str, **ctx: object) -> str:
    """The paragraph `body` in the plain-text part of a raw HTML email, personalised."""
    text = compiled(f"<p>[{body}]</p>").personalise(context(**ctx)).text
    return text[text.index("[") + 1 : text.rindex("]")]


def subject_of(subject: str, **ctx: object) -> str:
    return compiled("<p>x</p>", subject=subject).personalise(context(**ctx)).subject


# --- what a template reads --------------------------------------------------------------


def test_contact_fields_and_custom_attributes_both_ways():
    contact = contact_data(
        SimpleNamespace(
            email="jo@example.com",
            first_name="Jo",
            last_name="Baker",
            phone="",
            timezone="Europe/Paris",
            locale="fr",
            status="subscribed",
            birthday=date(1990, 5, 17),
            lifecycle_stage=SimpleNamespace(name="Customer"),
            persona=None,
            attributes={"plan": "pro", "email": "spoof@evil.test", "seats": 3},
        ),
        tags=["vip"],
    )
    ctx = context()
    ctx["contact"] = contact
    email = compiled(
        "<p>{{ contact.full_name }} {{ contact.email }} {{ contact.attributes.plan }} "
        "{{ contact.plan }} {{ contact.seats | plus: 1 }} {{ contact.lifecycle_stage }} "
        "{{ contact.birthday }} {{ contact.tags | join: ',' }} "
        "{{ contact.attributes.email }}</p>"
    ).personalise(ctx)
    assert (
        "Jo Baker jo@example.com pro pro 4 Customer 1990-05-17 vip spoof@evil.test" in email.text
    )  # an attribute never shadows a field: contact.email is the real address


def test_workspace_and_brand_values():
    assert text_of("{{ workspace.name }} / {{ workspace.timezone }}") == (
        "Acme Outdoor / Europe/London"
    )
    assert subject_of("{{ brand.name }} {{ brand.primary_color }} {{ brand.postal_address }}") == (
        "Acme Outdoor #2f5d3a 12 Harbour Road"
    )


def test_an_abandoned_cart_loops_over_the_event_properties():
    body = (
        "{% for p in event.properties.products %}{{ forloop.index }}. {{ p.name }} "
        "x{{ p.quantity }} {{ p.price | money }}; {% endfor %}total {{ event.properties.total"
        " | money: event.properties.currency }} ({{ event.name }})"
    )
    assert text_of(body) == (
        "1. Trail running shoes x1 $89.50; 2. Merino socks (2 pack) x2 $22.50; "
        "total $134.50 (Cart Updated)"
    )


def test_default_is_the_fallback_for_missing_and_empty_values():
    subject = 'Hi {{ contact.first_name | default: "there" }}{{ contact.nope | default: "!" }}'
    assert subject_of(subject, contact={"first_name": ""}) == "Hi there!"
    assert subject_of(subject, contact={"first_name": "Sam"}) == "Hi Sam!"


def test_dates_are_formatted():
    assert subject_of('{{ event.occurred_at | date: "%B %-d, %Y at %H:%M" }}') == (
        "January 15, 2026 at 10:30"
    )
    assert subject_of('Born {{ contact.birthday | date: "%d/%m" }}') == "Born 17/05"


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (12.5, "USD", "$12.50"),
        ("1234.5", "EUR", "€1,234.50"),
        (1234.5, "JPY", "¥1,235"),
        (1234.4, "jpy", "¥1,234"),
        (-12.5, "USD", "-$12.50"),
        (-0.001, "USD", "$0.00"),
        (0.125, "GBP", "£0.13"),
        (12.5, "SEK", "12.50 SEK"),
        ("abc", "USD", "abc"),
        (None, "USD", ""),
        ("NaN", "USD", "NaN"),
        ("Infinity", "EUR", "Infinity"),
        ("1e999999", "USD", "1e999999"),
    ],
)
def test_money(value, currency, expected):
    assert money(value, currency) == expected


def test_money_in_a_template_uses_usd_by_default():
    assert subject_of('{{ 12.5 | money }} {{ 1200 | money: "EUR" }} {{ "n/a" | money }}') == (
        "$12.50 €1,200.00 n/a"
    )


# --- escaping ---------------------------------------------------------------------------

NASTY = '<b>Jo & "Al"</b>'


def test_contact_values_are_escaped_in_the_html_part_but_not_in_the_text_or_subject():
    email = compiled(
        "<p>Hi {{ contact.first_name }}</p>", subject="Hi {{ contact.first_name }}"
    ).personalise(context(contact={"first_name": NASTY}))

    assert "Hi &lt;b&gt;Jo &amp; &#34;Al&#34;&lt;/b&gt;" in email.html
    assert "<b>Jo" not in email.html
    assert f"Hi {NASTY}" in email.text
    assert email.subject == f"Hi {NASTY}"


def test_string_literals_are_escaped_in_html_too():
    email = compiled(
        '<p>{{ "<b>" }} {{ "<scr" | append: "ipt>alert(1)</script>" }}</p>'
    ).personalise(context())
    assert "&lt;b&gt; &lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<script" not in email.html and "<b>" not in email.html


def test_safe_is_not_available_in_html():
    email = compiled("<p>{{ contact.first_name }}</p>")
    with pytest.raises(RenderFailed, match="safe"):
        compiled("<p>{{ contact.first_name | safe }}</p>").personalise(
            context(contact={"first_name": "<script>alert(1)</script>"})
        )
    assert (
        "&lt;script&gt;"
        in email.personalise(context(contact={"first_name": "<script>alert(1)</script>"})).html
    )


def test_subjects_are_one_line_whatever_the_data():
    assert subject_of("Hi {{ contact.first_name }}", contact={"first_name": "Jo\r\nBcc: x@y"}) == (
        "Hi Jo Bcc: x@y"
    )


# --- where errors are reported ------------------------------------------------------------


def problems_of(content: TemplateContent) -> list[tuple[str, int | None, int | None, str]]:
    found = [(p.where, p.line, p.column, p.message) for p in check_content(content)]
    with pytest.raises(TemplateInvalid) as invalid:
        compile_email(content, BRAND)
    assert [(p.where, p.line, p.column, p.message) for p in invalid.value.problems] == found
    return found


def test_a_broken_tag_in_the_subject_is_located():
    content = TemplateContent(kind="html", subject="Hi {{ contact.first_name", source="<p>x</p>")
    assert problems_of(content) == [("Subject", 1, 4, "expected '}}', found end of file")]


def test_a_broken_tag_in_the_preheader_is_located():
    content = TemplateContent(
        kind="html", subject="Hi", preheader="Only {% if x %}today", source="<p>x</p>"
    )
    assert problems_of(content) == [
        ("Preheader", 1, 6, "expected tag endif, found end of expression")
    ]


def test_a_broken_tag_in_a_block_is_located_in_that_block():
    blocks = [
        {"type": "heading", "text": "Hello"},
        {"type": "text", "html": "<p>Hi</p>\n<p>{{ contact.first_name | }}</p>"},
        {"type": "button", "label": "Go", "url": "https://x.test/?a={{ contact.email"},
    ]
    content = TemplateContent(kind="blocks", subject="Hi", blocks=blocks)
    assert problems_of(content) == [
        ("Block 2 (text) html", 2, 4, "expected word, found end of expression"),
        ("Block 3 (button) url", 1, 19, "expected '}}', found end of file"),
    ]


def test_a_broken_tag_in_a_column_is_located_in_that_column():
    blocks = [
        {
            "type": "columns",
            "columns": [
                [{"type": "text", "html": "<p>left</p>"}],
                [{"type": "heading", "text": "{% for x in %}"}],
            ],
        }
    ]
    content = TemplateContent(kind="blocks", subject="Hi", blocks=blocks)
    [(where, line, column, _message)] = problems_of(content)
    assert (where, line, column) == ("Block 1.2.1 (heading) text", 1, 1)


@pytest.mark.parametrize("kind", ["mjml", "html"])
def test_a_broken_tag_in_the_source_is_located(kind):
    source = "<p>one</p>\n<p>two</p>\n<p>Hi {{ contact.first_name | }}</p>"
    content = TemplateContent(kind=kind, subject="Hi", source=source)
    [(where, line, column, message)] = problems_of(content)
    assert (where, line, column) == (kind.upper(), 3, 7)
    assert message


def test_an_unknown_tag_and_an_unclosed_block_are_located():
    source = "<p>a</p>\n  {% if contact.plan %}\n<p>b</p>\n{% endfor %}"
    content = TemplateContent(kind="html", subject="Hi", source=source)
    assert problems_of(content) == [("HTML", 4, 4, "unexpected tag 'endfor'")]  # at its name


def test_several_problems_are_all_reported():
    content = TemplateContent(kind="html", subject="  ", preheader="{{ x", source="   ")
    wheres = [where for where, *_ in problems_of(content)]
    assert wheres == ["Subject", "HTML", "Preheader"]


# --- limits -----------------------------------------------------------------------------


def render_body(body: str, **ctx: object):  # type: ignore[no-untyped-def]
    template = compiled(f"<p>{body}</p>")
    started = time.monotonic()
    try:
        return template.personalise(context(**ctx))
    finally:
        assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "body",
    [
        "{% for i in (1..1000000) %}x{% endfor %}",
        "{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}",
        "{% for i in (1..100) %}{% for j in (1..100) %}{% for k in (1..100) %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "{% tablerow i in (1..1000000) %}{{ i }}{% endtablerow %}",
        '{{ (1..100000000) | join: "," | size }}',
        "{% assign r = (1..100000000) %}{{ r | reverse | first }}",
    ],
    ids=["range", "nested", "triple", "tablerow", "range-join", "range-reverse"],
)
def test_runaway_loops_stop_at_the_loop_limit(body):
    with pytest.raises(RenderFailed, match="loop"):
        render_body(body)


def test_a_loop_within_the_limit_runs():
    assert render_body("{% for i in (1..10000) %}{% endfor %}{{ (1..3) | join: '-' }}").text


def test_huge_output_stops_at_the_output_limit():
    with pytest.raises(RenderFailed, match="1,000,000 characters"):
        render_body("{% for i in (1..9000) %}{{ big }}{% endfor %}", big="x" * 200)


def test_doubling_a_string_stops_at_the_memory_limit():
    body = '{% assign s = "xxxxxxxxxx" %}{% for i in (1..60) %}{% assign s = s | append: s %}'
    with pytest.raises(RenderFailed, match="namespace limit"):
        render_body(body + "{% endfor %}{{ s | size }}")
    body = "{% for i in (1..60) %}{% capture s %}{{ s }}{{ s }}x{% endcapture %}{% endfor %}"
    with pytest.raises(RenderFailed, match="namespace limit"):
        render_body(body)


SLOW = [
    # work that never reaches the output: an empty-bodied loop, a capture, an assign
    "{% for i in (1..9999) %}" + "{%if i%}{%endif%}" * 1000 + "{% endfor %}",
    '{% for i in (1..9000) %}{% capture t %}{{ (1..10000) | join: "," }}{% endcapture %}'
    "{% endfor %}",
    '{% for i in (1..9999) %}{% assign t = (1..9999) | join: "," %}{% endfor %}',
    # work that does
    '{% for i in (1..9999) %}{{ (1..5000) | join: "" | size }}{% endfor %}',
]


@pytest.mark.parametrize("body", SLOW, ids=["ifs", "capture", "assign", "output"])
def test_a_slow_render_stops_at_the_time_limit(body, monkeypatch):
    monkeypatch.setattr(liquid_env, "RENDER_SECONDS", 0.05)
    started = time.monotonic()
    with pytest.raises(RenderFailed, match=r"took longer than 0\.05 s"):
        compiled(f"<p>{body}</p>").personalise(context())
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("body", SLOW[:3], ids=["ifs", "capture", "assign"])
def test_the_default_time_limit_holds(body):
    started = time.monotonic()
    with pytest.raises(RenderFailed, match="took longer than"):
        compiled(f"<p>{body}</p>").personalise(context())
    assert time.monotonic() - started < 1.5


def test_deep_nesting_is_refused_at_save():
    body = "{% if true %}" * 30 + "x" + "{% endif %}" * 30
    with pytest.raises(TemplateInvalid, match="nesting limit"):
        compiled(body)
    assert compiled("{% if true %}" * 10 + "ok" + "{% endif %}" * 10).personalise(context())


@pytest.mark.parametrize(
    "tag", ["{% include 'footer' %}", "{% include '/etc/passwd' %}", "{% render 'x' %}"]
)
def test_include_and_render_are_refused(tag):
    with pytest.raises(TemplateInvalid) as invalid:
        compiled(f"<p>{tag}</p>")
    assert "unexpected tag" in invalid.value.problems[0].message


# --- failures ---------------------------------------------------------------------------


def test_an_empty_subject_after_rendering_fails_the_message():
    template = compiled("<p>Hello</p>", subject="{{ contact.first_name }}")
    with pytest.raises(RenderFailed, match="subject rendered empty"):
        template.personalise(context(contact={"first_name": ""}))
    assert template.personalise(context(contact={"first_name": "Jo"})).subject == "Jo"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ 1 | divided_by: 0 }}", "divide by 0"),
        ("{{ -99999999999999 | date: '%Y' }}", "out of range"),
        ("{{ contact.first_name | no_such_filter }}", "unknown filter"),
        ("{{ '1' | base64_decode }}", "base64"),
    ],
)
def test_a_failing_filter_fails_the_message_with_its_reason(body, reason):
    template = compiled(f"<p>Before</p><p>{body}</p><p>After</p>")
    with pytest.raises(RenderFailed, match=reason) as failed:
        template.personalise(context())
    assert str(failed.value).startswith("Liquid: ")


def test_a_render_that_fails_for_one_recipient_does_not_break_the_next():
    template = compiled("<p>{{ 100 | divided_by: contact.seats }}</p>")
    with pytest.raises(RenderFailed):
        template.personalise(context(contact={"seats": 0}))
    assert "25" in template.personalise(context(contact={"seats": 4})).text


def test_a_template_that_compiles_once_personalises_each_recipient():
    template = compiled("<p>Hi {{ contact.first_name }}</p>", subject="For {{ contact.email }}")
    emails = [
        template.personalise(context(contact={"first_name": name, "email": f"{name}@x.test"}))
        for name in ("Ann", "Bob", "Cy")
    ]
    assert [e.subject for e in emails] == ["For Ann@x.test", "For Bob@x.test", "For Cy@x.test"]
    assert all(f"Hi {n}" in e.html for n, e in zip(("Ann", "Bob", "Cy"), emails, strict=True))

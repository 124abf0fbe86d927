"""The gallery: every starter compiles on a brand, personalises, passes the send checks and
compiles fast; creating a template from one gives a numbered, branded template."""

from __future__ import annotations

import copy
import re
import statistics
import time

import pytest
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.gallery import STAGES, STARTERS, create_from_starter, get_starter
from campaigns.models import EmailTemplate, TemplateRevision
from campaigns.rendering.brand import Brand
from campaigns.rendering.checks import check_email
from campaigns.rendering.compile import compile_email
from campaigns.rendering.context import SAMPLE_CONTACT, SAMPLE_EVENT, render_context

BRAND = Brand(
    name="Acme Outdoor",
    logo_url="https://app.example.com/brand/logo.png",
    logo_alt="Acme Outdoor",
    primary_color="#2f5d3a",
    button_color="#e8772e",
    postal_address="12 Harbour Road, Bristol BS1 4AA",
    footer_text="You joined our list at acme-outdoor.example.com.",
    social_links=(("instagram", "https://instagram.com/acme"),),
)
BY_KEY = pytest.mark.parametrize("starter", STARTERS, ids=lambda s: s.key)
LIQUID_LEFT = re.compile(r"\{\{|\{%|\}\}|%\}")


def personalise(starter, contact=None, event=None):  # type: ignore[no-untyped-def]
    compiled = compile_email(starter.content(), BRAND)
    context = render_context(
        contact=contact if contact is not None else dict(SAMPLE_CONTACT),
        brand=BRAND,
        workspace={"name": "Acme Outdoor", "timezone": "UTC"},
        event=event if event is not None else SAMPLE_EVENT,
        links={"unsubscribe_url": "https://app.example.com/u/tok", "preferences_url": "#p"},
    )
    return compiled, compiled.personalise(context)


def test_the_gallery_covers_every_stage_in_journey_order_with_the_promised_starters():
    keys = [starter.key for starter in STARTERS]
    assert len(keys) == len(set(keys)) == 12
    assert {"welcome", "abandoned_cart", "order_confirmation", "reconfirm"} <= set(keys)
    stages = [STAGES.index(starter.stage) for starter in STARTERS]
    assert stages == sorted(stages) and set(stages) == set(range(len(STAGES)))
    transactional = {s.key for s in STARTERS if s.purpose == "transactional"}
    assert transactional == {"order_confirmation", "shipping_notice"}
    assert {s.purpose for s in STARTERS} == {"marketing", "transactional"}


def test_get_starter_refuses_an_unknown_key():
    assert get_starter("birthday").name == "Birthday"
    with pytest.raises(KeyError):
        get_starter("no-such-starter")


@BY_KEY
def test_each_starter_compiles_personalises_and_passes_the_send_checks(starter):
    compiled, email = personalise(starter)
    assert email.subject and not LIQUID_LEFT.search(email.subject)
    assert "Jamie" in email.html + email.subject
    for part in (email.html, email.text):
        assert not LIQUID_LEFT.search(part), part
    assert "Acme Outdoor" in email.text
    report = check_email(
        html_source=compiled.html_source,
        rendered_html=email.html,
        preheader=starter.preheader,
        postal_address=BRAND.postal_address,
        marketing=starter.purpose == "marketing",
    )
    assert report.errors == []
    assert not [w for w in report.warnings if "not https" in w or "preheader" in w]
    assert starter.preheader in email.html
    links = re.findall(r'href="([^"]+)"', email.html)
    assert all(link.startswith(("https://", "#")) for link in links), links


@BY_KEY
def test_each_marketing_starter_ends_with_the_footer(starter):
    if starter.purpose == "marketing":
        assert starter.blocks[-1] == {"type": "footer"}
        assert starter.preheader.strip()


@BY_KEY
def test_each_starter_reads_well_without_a_name_or_event_data(starter):
    contact = {"email": "sam@example.com", "first_name": ""}
    _compiled, email = personalise(starter, contact=contact, event={})
    assert email.subject and email.text.strip()
    assert not re.search(r",\s*[!?.]|\$0\.00|Hi ,", email.text), email.text


@BY_KEY
def test_a_full_compile_of_each_starter_is_fast(starter):
    content = starter.content()
    compile_email(content, BRAND)  # warm up
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        compile_email(content, BRAND)
        timings.append(time.perf_counter() - start)
    # The target is 50 ms (bench/render_templates.py reports it); the margin keeps a busy
    # CI machine from failing the test.
    assert statistics.median(timings) < 0.2


def test_abandoned_cart_lists_each_item_with_its_price_in_html_and_text():
    _compiled, email = personalise(get_starter("abandoned_cart"))
    for part in (email.html, email.text):
        for name, price in (("Trail running shoes", "$89.50"), ("Merino socks (2 pack)", "$22.50")):
            assert name in part
            assert price in part
        assert "$134.50" in part  # the cart total
    assert 'href="https://example.com/products/shoes"' in email.html
    assert "Return to your cart" in email.text


def test_abandoned_cart_links_back_to_the_cart_from_the_event():
    event = {**SAMPLE_EVENT, "properties": {**SAMPLE_EVENT["properties"]}}
    event["properties"]["cart_url"] = "https://shop.example.com/cart/abc"
    _compiled, email = personalise(get_starter("abandoned_cart"), event=event)
    assert 'href="https://shop.example.com/cart/abc"' in email.html


def test_order_confirmation_shows_number_date_and_total_in_the_events_currency():
    event = {
        "name": "Order Completed",
        "occurred_at": "2026-03-04T09:00:00",
        "properties": {
            "order_id": "A-981",
            "total": 1250,
            "currency": "EUR",
            "products": [{"name": "Tent", "price": 1250, "quantity": 1}],
        },
    }
    _compiled, email = personalise(get_starter("order_confirmation"), event=event)
    assert email.subject == "Thanks for your order #A-981"
    for part in (email.html, email.text):
        assert "#A-981" in part
        assert "March 4, 2026" in part
        assert "Total: €1,250.00" in part
        assert "Tent" in part


def test_shipping_notice_uses_tracking_link_carrier_and_delivery_date():
    event = {
        "name": "Order Shipped",
        "occurred_at": "2026-03-05T09:00:00",
        "properties": {
            "order_id": "A-981",
            "carrier": "Royal Mail",
            "tracking_url": "https://track.example.com/RM123",
            "estimated_delivery": "2026-03-07",
        },
    }
    _compiled, email = personalise(get_starter("shipping_notice"), event=event)
    assert email.subject == "Your order #A-981 is on its way"
    assert 'href="https://track.example.com/RM123"' in email.html
    assert "Carrier: Royal Mail" in email.text
    assert "Expected delivery: Saturday, March 7" in email.text


def test_birthday_greets_the_contact_by_first_name():
    contact = {**SAMPLE_CONTACT, "first_name": "Priya", "birthday": "1991-08-02"}
    _compiled, email = personalise(get_starter("birthday"), contact=contact)
    assert email.subject.startswith("Happy birthday, Priya!")
    assert "Happy birthday, Priya!" in email.html
    assert "any time in August" in email.text
    _compiled, anonymous = personalise(get_starter("birthday"), contact={"first_name": ""})
    assert "Happy birthday, friend!" in anonymous.html


def test_reconfirm_offers_to_stay_and_to_leave():
    _compiled, email = personalise(get_starter("reconfirm"))
    assert "Yes, keep me subscribed" in email.text
    assert email.html.count('href="https://app.example.com/u/tok"') >= 2  # body and footer


@pytest.mark.django_db
def test_create_from_starter_makes_a_first_revision_with_a_free_name(workspace_a, owner):
    first = create_from_starter(workspace_a, "welcome", user=owner)
    second = create_from_starter(workspace_a, "welcome")
    third = create_from_starter(workspace_a, "welcome")
    assert [first.name, second.name, third.name] == ["Welcome", "Welcome 2", "Welcome 3"]
    assert first.revision_number == 1 and first.starter == "welcome"
    assert first.purpose == "marketing" and first.kind == "blocks"
    assert first.blocks == get_starter("welcome").blocks
    revision = TemplateRevision.objects.for_workspace(workspace_a).get(template=first)
    assert revision.number == 1 and revision.created_by == owner
    confirmation = create_from_starter(workspace_a, "order_confirmation", name="Receipt")
    assert confirmation.name == "Receipt" and confirmation.purpose == "transactional"


@pytest.mark.django_db
def test_create_from_starter_refuses_a_taken_name_or_unknown_key(workspace_a):
    create_from_starter(workspace_a, "welcome")
    with pytest.raises(ValidationError):
        create_from_starter(workspace_a, "birthday", name="welcome")
    with pytest.raises(KeyError):
        create_from_starter(workspace_a, "nope")
    assert EmailTemplate.objects.for_workspace(workspace_a).count() == 1


@pytest.mark.django_db
def test_names_are_free_per_workspace(workspace_a, workspace_b):
    create_from_starter(workspace_a, "birthday")
    assert create_from_starter(workspace_b, "birthday").name == "Birthday"


@pytest.mark.django_db
def test_editing_a_created_template_leaves_the_starter_alone(workspace_a):
    pristine = copy.deepcopy(get_starter("welcome").blocks)
    template = create_from_starter(workspace_a, "welcome")
    template.blocks[0]["text"] = "Changed"
    services.update_template(template, blocks=template.blocks)
    assert get_starter("welcome").blocks == pristine


@pytest.mark.django_db
def test_a_brand_kit_change_restyles_a_template_made_from_a_starter(workspace_a):
    template = create_from_starter(workspace_a, "abandoned_cart")
    before = services.template_preview(template).email.html
    assert "#c2410c" not in before.lower()
    services.update_brand_kit(workspace_a, button_color="#c2410c", primary_color="#14532d")
    after = services.template_preview(template).email.html.lower()
    assert "#c2410c" in after and "#14532d" in after
    assert template.revision_number == 1  # the template itself did not change

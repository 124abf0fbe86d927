"""seed_demo's brand kits and templates: each demo workspace looks like itself, its
templates come from the gallery and pass the send checks, and seeding twice adds nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from PIL import Image

from campaigns import services
from campaigns.demo import DEMO_STARTERS, seed_brand_and_templates, seed_demo_templates
from campaigns.models import EmailTemplate, TemplateRevision
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setattr("contacts.demo.CONTACTS_PER_WORKSPACE", 20)
    call_command("seed_demo")
    return Workspace.objects.get(slug="acme-outdoor"), Workspace.objects.get(slug="bloom-bakery")


def test_each_demo_workspace_gets_its_own_brand(demo):
    acme, bloom = demo
    acme_kit, bloom_kit = services.brand_kit_for(acme), services.brand_kit_for(bloom)
    assert (acme_kit.primary_color, acme_kit.button_color) == ("#2f6b3f", "#c65a11")
    assert (bloom_kit.primary_color, bloom_kit.text_color) == ("#c23a6b", "#4e342e")
    for kit in (acme_kit, bloom_kit):
        assert kit.footer_text
        assert kit.social_links and all(
            link["url"].startswith("https://") for link in kit.social_links
        )
        assert kit.logo_content_type == "image/png"
        with Image.open(io.BytesIO(bytes(kit.logo))) as logo:
            assert logo.format == "PNG" and logo.size == (480, 120)
        assert kit.logo_height == 50  # shown at 200 px wide
    assert bytes(acme_kit.logo) != bytes(bloom_kit.logo)


def test_each_demo_workspace_gets_gallery_templates_that_can_be_sent(demo):
    for workspace in demo:
        templates = EmailTemplate.objects.for_workspace(workspace)
        assert sorted(templates.values_list("starter", flat=True)) == sorted(DEMO_STARTERS)
        for template in templates:
            report = services.ensure_sendable(template)  # raises if a check fails
            assert not [w for w in report.warnings if "not https" in w]
    acme, _bloom = demo
    welcome = EmailTemplate.objects.for_workspace(acme).get(starter="welcome")
    html = services.template_preview(welcome).email.html
    assert "#2f6b3f" in html and "/brand/" in html and "Acme Outdoor" in html
    assert "12 Harbour Road" in html


def test_prices_in_the_demo_carts_use_the_shops_currency(demo):
    acme, bloom = demo
    acme_cart = EmailTemplate.objects.for_workspace(acme).get(starter="abandoned_cart")
    bloom_cart = EmailTemplate.objects.for_workspace(bloom).get(starter="abandoned_cart")
    assert "£89.50" in services.template_preview(acme_cart).email.text
    assert "$89.50" in services.template_preview(bloom_cart).email.text


def test_seeding_again_adds_nothing(demo):
    acme, bloom = demo
    before = EmailTemplate.all_workspaces.count(), TemplateRevision.all_workspaces.count()
    call_command("seed_demo")
    seed_demo_templates(sender=Workspace, workspaces=[acme, bloom])
    after = EmailTemplate.all_workspaces.count(), TemplateRevision.all_workspaces.count()
    assert after == before == (10, 11)  # Acme's cart has a second revision: prices in GBP


def test_a_deleted_demo_template_comes_back_and_the_others_stay(demo):
    acme, _bloom = demo
    templates = EmailTemplate.objects.for_workspace(acme)
    templates.filter(starter="birthday").delete()
    templates.filter(starter="welcome").update(name="Our hello")
    created = seed_brand_and_templates(acme)
    assert [t.starter for t in created] == ["birthday"]
    assert templates.count() == len(DEMO_STARTERS)
    assert templates.filter(name="Our hello").exists()

"""Demo brand kits and templates for `manage.py seed_demo`: each demo workspace gets its
own colours, fonts, footer, social links and a logo drawn here, and a handful of templates
from the gallery. Safe to run again: it sets the same brand and adds only what is missing."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from django.db import transaction

from workspaces.models import Workspace

from . import services
from .gallery import create_from_starter
from .models import EmailTemplate

DEMO_STARTERS = ("welcome", "abandoned_cart", "review_request", "win_back", "birthday")
LOGO_SIZE = (480, 120)  # drawn at twice the width it is shown at, for sharp screens
SUPERSAMPLE = 4  # Pillow draws shapes without anti-aliasing; draw big, then shrink


@dataclass(frozen=True)
class DemoBrand:
    kit: dict
    mark: str  # which logo mark to draw
    currency: str = "USD"
    logo_alt: str = ""
    colours: dict = field(default_factory=dict)


DEMO_BRANDS = {
    "acme-outdoor": DemoBrand(
        kit={
            "primary_color": "#2f6b3f",
            "text_color": "#1f2a22",
            "background_color": "#edf2ec",
            "content_background_color": "#ffffff",
            "button_color": "#c65a11",
            "button_text_color": "#ffffff",
            "font": "helvetica",
            "heading_font": "trebuchet",
            "logo_width": 200,
            "footer_text": "You're getting this because you joined Acme Outdoor online or in "
            "one of our shops. See you on the trail!",
            "social_links": [
                {"network": "instagram", "url": "https://www.instagram.com/acmeoutdoor"},
                {"network": "youtube", "url": "https://www.youtube.com/@acmeoutdoor"},
                {"network": "web", "url": "https://acme-outdoor.example.com"},
            ],
        },
        mark="mountain",
        currency="GBP",  # a Bristol shop
        logo_alt="Acme Outdoor",
        colours={"mark": "#2f6b3f", "accent": "#e8772e", "text": "#2f6b3f"},
    ),
    "bloom-bakery": DemoBrand(
        kit={
            "primary_color": "#c23a6b",
            "text_color": "#4e342e",
            "background_color": "#fbeff2",
            "content_background_color": "#fffdfb",
            "button_color": "#c23a6b",
            "button_text_color": "#ffffff",
            "font": "georgia",
            "heading_font": "georgia",
            "logo_width": 200,
            "footer_text": "Baked fresh every morning in Portland, Maine. You're getting this "
            "because you signed up at bloom-bakery.example.com.",
            "social_links": [
                {"network": "instagram", "url": "https://www.instagram.com/bloombakery"},
                {"network": "facebook", "url": "https://www.facebook.com/bloombakery"},
                {"network": "pinterest", "url": "https://www.pinterest.com/bloombakery"},
            ],
        },
        mark="flower",
        currency="USD",
        logo_alt="Bloom Bakery",
        colours={"mark": "#e0679a", "accent": "#7a4a2e", "text": "#7a4a2e"},
    ),
}


def seed_demo_templates(sender, workspaces: list[Workspace], **kwargs) -> None:  # type: ignore[no-untyped-def]
    for workspace in workspaces:
        seed_brand_and_templates(workspace)


@transaction.atomic
def seed_brand_and_templates(workspace: Workspace) -> list[EmailTemplate]:
    """Brand one demo workspace and add the gallery templates it does not have yet."""
    demo = DEMO_BRANDS.get(workspace.slug, DEMO_BRANDS["acme-outdoor"])
    services.update_brand_kit(workspace, **demo.kit)
    services.set_logo(workspace, draw_logo(workspace.name, demo), alt=demo.logo_alt)
    have = set(
        EmailTemplate.objects.for_workspace(workspace)
        .filter(starter__in=DEMO_STARTERS)
        .values_list("starter", flat=True)
    )
    created = []
    for key in DEMO_STARTERS:
        if key in have:
            continue
        template = create_from_starter(workspace, key)
        if demo.currency != "USD" and any(b["type"] == "product_list" for b in template.blocks):
            blocks = [
                {**b, "currency": demo.currency} if b["type"] == "product_list" else b
                for b in template.blocks
            ]
            services.update_template(template, blocks=blocks, note=f"Prices in {demo.currency}")
        created.append(template)
    return created


def draw_logo(name: str, demo: DemoBrand) -> bytes:
    """A PNG logo: a simple mark and the workspace's name, on a transparent background."""
    from PIL import Image, ImageDraw, ImageFont

    scale = SUPERSAMPLE
    width, height = LOGO_SIZE[0] * scale, LOGO_SIZE[1] * scale
    image = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    box = (8 * scale, 8 * scale, 112 * scale, 112 * scale)
    MARKS[demo.mark](draw, box, demo.colours)
    font = ImageFont.load_default(size=46 * scale)
    top, bottom = font.getbbox(name)[1], font.getbbox(name)[3]
    y = (height - (bottom - top)) // 2 - top
    draw.text((128 * scale, y), name, font=font, fill=demo.colours["text"])
    image = image.resize(LOGO_SIZE, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _mountain(draw, box, colours) -> None:  # type: ignore[no-untyped-def]
    left, top, right, _bottom = box
    size = right - left
    draw.rounded_rectangle(box, radius=size // 5, fill=colours["mark"])
    unit = size / 20
    sun = (left + 12.5 * unit, top + 3.5 * unit, left + 16.5 * unit, top + 7.5 * unit)
    draw.ellipse(sun, fill=colours["accent"])
    far = [(left + 8 * unit, top + 16 * unit), (left + 13 * unit, top + 8 * unit),
           (left + 18 * unit, top + 16 * unit)]  # fmt: skip
    near = [(left + 2 * unit, top + 16 * unit), (left + 7.5 * unit, top + 6 * unit),
            (left + 13 * unit, top + 16 * unit)]  # fmt: skip
    draw.polygon(far, fill="#cfe3d3")
    draw.polygon(near, fill="#ffffff")


def _flower(draw, box, colours) -> None:  # type: ignore[no-untyped-def]
    import math

    left, top, right, bottom = box
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    radius = (right - left) / 2
    petal = radius * 0.42
    for index in range(6):
        angle = math.tau * index / 6
        x = centre_x + math.cos(angle) * (radius - petal)
        y = centre_y + math.sin(angle) * (radius - petal)
        draw.ellipse((x - petal, y - petal, x + petal, y + petal), fill=colours["mark"])
    core = radius * 0.3
    draw.ellipse(
        (centre_x - core, centre_y - core, centre_x + core, centre_y + core),
        fill=colours["accent"],
    )


MARKS = {"mountain": _mountain, "flower": _flower}

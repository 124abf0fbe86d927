"""What a template can read, as plain data only (dicts, lists, strings, numbers): never a
model instance, so a template cannot reach an attribute, a method or a setting.

    contact.*      email, first_name, last_name, full_name, phone, timezone, locale,
                   birthday, status, lifecycle_stage, persona, tags, attributes, and each
                   custom attribute by its key (contact.plan) unless it shadows a field
    workspace.*    name, timezone
    brand.*        the brand kit: colours, fonts, footer_text, postal_address, logo_url,
                   social_links, from_name, from_email
    event.*        the event that triggered the email: name, occurred_at, properties.*
    unsubscribe_url, preferences_url, now
"""

from __future__ import annotations

import json
from datetime import date, datetime

from .brand import Brand

CONTACT_FIELDS = (
    "email", "first_name", "last_name", "phone", "timezone", "locale", "status",
)  # fmt: skip
PREVIEW_LINK = "#preview-link"


def plain(value: object) -> object:
    """JSON-shaped copy of `value` (dates as ISO text), dropping anything exotic."""
    return json.loads(json.dumps(value, default=_jsonable))


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def contact_data(contact: object, tags: list[str] | None = None) -> dict:
    """A Contact (or any object with its fields) as the `contact` variable."""
    data = {field: str(getattr(contact, field, "") or "") for field in CONTACT_FIELDS}
    attributes = plain(getattr(contact, "attributes", None) or {})
    stage = getattr(contact, "lifecycle_stage", None)
    persona = getattr(contact, "persona", None)
    birthday = getattr(contact, "birthday", None)
    data.update(
        full_name=" ".join(p for p in (data["first_name"], data["last_name"]) if p),
        birthday=birthday.isoformat() if birthday else "",
        lifecycle_stage=stage.name if stage else "",
        persona=persona.name if persona else "",
        tags=list(tags or []),
        attributes=attributes,
    )
    for key, value in attributes.items():
        data.setdefault(key, value)
    return data


def event_data(name: str, properties: dict, occurred_at: datetime | None) -> dict:
    return {
        "name": name,
        "properties": plain(properties or {}),
        "occurred_at": occurred_at.isoformat() if occurred_at else "",
    }


def render_context(
    *,
    contact: dict,
    brand: Brand,
    workspace: dict,
    event: dict | None = None,
    links: dict | None = None,
    now: datetime | None = None,
) -> dict:
    links = links or {}
    return {
        "contact": contact,
        "brand": brand.as_context(),
        "workspace": workspace,
        "event": event or {"name": "", "properties": {}, "occurred_at": ""},
        "unsubscribe_url": links.get("unsubscribe_url", PREVIEW_LINK),
        "preferences_url": links.get("preferences_url", PREVIEW_LINK),
        "now": (now or datetime.now()).isoformat(),
    }


SAMPLE_CONTACT = {
    "email": "jamie@example.com",
    "first_name": "Jamie",
    "last_name": "Rivera",
    "full_name": "Jamie Rivera",
    "phone": "",
    "timezone": "UTC",
    "locale": "en",
    "status": "subscribed",
    "birthday": "1990-05-17",
    "lifecycle_stage": "Consideration",
    "persona": "",
    "tags": ["newsletter"],
    "attributes": {},
}

SAMPLE_EVENT = {
    "name": "Cart Updated",
    "occurred_at": "2026-01-15T10:30:00",
    "properties": {
        "order_id": "1042",
        "total": 134.5,
        "currency": "USD",
        "coupon": "WELCOME10",
        "products": [
            {
                "name": "Trail running shoes",
                "price": 89.5,
                "quantity": 1,
                "url": "https://example.com/products/shoes",
                "image_url": "https://placehold.co/160x160/png",
            },
            {
                "name": "Merino socks (2 pack)",
                "price": 22.5,
                "quantity": 2,
                "url": "https://example.com/products/socks",
                "image_url": "https://placehold.co/160x160/png",
            },
        ],
    },
}

"""Turning a CSV row into a contact row as `upsert_contacts` takes it (standard fields,
attributes, tags, and the opt-out or bounce the file records), and naming the column
behind each problem in a rejection reason."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import ImportJob, SubscriptionStatus
from .mapping import ATTRIBUTE_PREFIX, IGNORE, normalise_header

NEGATIVE_STATUSES = {
    "unsubscribed": SubscriptionStatus.UNSUBSCRIBED,
    "unsubscribe": SubscriptionStatus.UNSUBSCRIBED,
    "blocklisted": SubscriptionStatus.UNSUBSCRIBED,
    "blacklisted": SubscriptionStatus.UNSUBSCRIBED,
    "opted_out": SubscriptionStatus.UNSUBSCRIBED,
    "opt_out": SubscriptionStatus.UNSUBSCRIBED,
    "do_not_contact": SubscriptionStatus.UNSUBSCRIBED,
    "dnc": SubscriptionStatus.UNSUBSCRIBED,
    "cleaned": SubscriptionStatus.BOUNCED,
    "bounced": SubscriptionStatus.BOUNCED,
    "complained": SubscriptionStatus.COMPLAINED,
}


class RowRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RowPlan:
    """How the job's columns become contact fields."""

    headers: list[str]
    mapping: dict[str, str]

    @classmethod
    def for_job(cls, job: ImportJob) -> RowPlan:
        return cls(list(job.headers), dict(job.mapping))

    @functools.cached_property
    def columns(self) -> list[tuple[int, str, str]]:
        return [
            (i, h, self.mapping.get(h, IGNORE))
            for i, h in enumerate(self.headers)
            if self.mapping.get(h)
        ]

    def convert(self, cells: Sequence[str]) -> dict[str, Any]:
        """The row as `upsert_contacts` takes it: fields, attributes, tags, status."""
        if len(cells) != len(self.headers):
            raise RowRejected(
                f"row: has {len(cells)} cells but the header row has {len(self.headers)} "
                "columns (check for a missing or extra delimiter)."
            )
        data: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        tags: list[str] = []
        status: str | None = None
        full_name = ""
        for index, header, target in self.columns:
            value = _unescape_formula(cells[index].strip())
            if target == "email":
                data["email"] = value
            elif not value:
                continue  # an empty cell leaves what we know unchanged
            elif target.startswith(ATTRIBUTE_PREFIX):
                attributes[target.removeprefix(ATTRIBUTE_PREFIX)] = value
            elif target == "full_name":
                full_name = value
            elif target == "tags":
                tags.extend(split_tags(value))
            elif target == "status":
                status = NEGATIVE_STATUSES.get(normalise_header(value)) or status
            elif target == "unsubscribed_when_set":
                status = status or SubscriptionStatus.UNSUBSCRIBED
            elif target == "bounced_when_set":
                status = SubscriptionStatus.BOUNCED
            elif target == "attributes_json":
                attributes = {**_json_object(value, header), **attributes}
            else:
                data[target] = value
        if full_name:
            first, _, last = full_name.partition(" ")
            data.setdefault("first_name", first)
            if last.strip():
                data.setdefault("last_name", last.strip())
        if attributes:
            data["attributes"] = attributes
        if tags:
            data["tags"] = tags
        if status:
            data["status"] = status
        return data

    def describe(self, errors: Mapping[str, Sequence[str]]) -> str:
        """A rejection reason that names the field and the column it came from."""
        columns = {t.removeprefix(ATTRIBUTE_PREFIX): h for _, h, t in self.columns}
        columns.update({t: h for _, h, t in self.columns})
        if "full_name" in columns:
            columns.setdefault("first_name", columns["full_name"])
            columns.setdefault("last_name", columns["full_name"])
        parts = []
        for key, messages in errors.items():
            name = "row" if key == "__all__" else key.removeprefix("attributes.")
            column = columns.get(name)
            label = f"{name} (column “{column}”)" if column and column != name else name
            parts.append(f"{label}: {' '.join(messages)}")
        return "; ".join(parts) or "row: not imported."


def _unescape_formula(value: str) -> str:
    """Undo the apostrophe an export puts before a cell that would read as a formula."""
    if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@"):
        return value[1:]
    return value


def split_tags(value: str) -> list[str]:
    """`"Customer","VIP"` (Mailchimp), `customer, vip` or `customer|vip`."""
    names = (part.strip().strip('"').strip() for part in re.split(r"[,;|]", value))
    return [name[:80] for name in names if name]


def _json_object(value: str, header: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise RowRejected(
            f"attributes (column “{header}”): not valid JSON ({exc.msg} at character {exc.pos})."
        ) from exc
    if not isinstance(parsed, dict):
        raise RowRejected(f"attributes (column “{header}”): must be a JSON object {{…}}.")
    return parsed

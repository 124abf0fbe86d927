"""Forms of the template pages, and the block editor's form codec.

The block editor keeps no state in the browser: every block card is a handful of named
fields (`b2:text`, `b3.c1.0:label` for the first block of column 1 of block 3), and the
server rebuilds the block list from whatever the form posts, then applies the button that
was pressed (op / at). So an add, move or delete never loses unsaved edits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.templatetags.static import static

from .models import TemplateKind, TemplatePurpose
from .rendering.blocks import ALIGNS, INNER_TYPES, MAX_BLOCKS

# --- page forms ------------------------------------------------------------------------


class TemplateForm(forms.Form):
    """The editor's fields besides the body (blocks come from the block cards)."""

    name = forms.CharField(max_length=120)
    subject = forms.CharField(
        max_length=255,
        required=False,
        help_text='Liquid works here too: {{ contact.first_name | default: "there" }}.',
    )
    preheader = forms.CharField(
        max_length=255,
        required=False,
        help_text="The line inboxes show after the subject.",
    )
    purpose = forms.ChoiceField(choices=TemplatePurpose.choices)
    source = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "source"}),
    )
    note = forms.CharField(
        max_length=200,
        required=False,
        label="Revision note",
        help_text="Optional: what changed, shown in the history.",
    )

    def __init__(self, *args: Any, kind: str = TemplateKind.BLOCKS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kind == TemplateKind.BLOCKS:
            del self.fields["source"]
        else:
            self.fields["source"].label = "MJML source" if kind == "mjml" else "HTML source"


class BlankTemplateForm(forms.Form):
    kind = forms.ChoiceField(choices=TemplateKind.choices)
    name = forms.CharField(max_length=120, required=False)


class ArchiveForm(forms.Form):
    archived = forms.BooleanField(required=False)


# --- blank templates ------------------------------------------------------------------

BLANK_SUBJECT = "A note from {{ workspace.name }}"
BLANK_MJML = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text font-size="24px" font-weight="bold">
          Hello {{ contact.first_name | default: "there" }}
        </mj-text>
        <mj-text>Write your message here.</mj-text>
        <mj-button href="https://example.com">Call to action</mj-button>
      </mj-column>
    </mj-section>
    <mj-section>
      <mj-column>
        <mj-text align="center" font-size="12px">{{ brand.postal_address }}<br>
          <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""
BLANK_HTML = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <style>
    body { font-family: Helvetica, Arial, sans-serif; color: #1f2937; }
    .wrap { max-width: 600px; margin: 0 auto; padding: 24px; }
  </style>
</head>
<body>
  <div class="wrap">
    <h1>Hello {{ contact.first_name | default: "there" }}</h1>
    <p>Write your message here.</p>
    <p style="font-size:12px">{{ brand.postal_address }}<br>
      <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
  </div>
</body>
</html>
"""


def blank_content(kind: str) -> dict[str, Any]:
    """What "Start blank" begins with: a body that compiles and passes the checks."""
    if kind == TemplateKind.MJML:
        return {"kind": kind, "subject": BLANK_SUBJECT, "source": BLANK_MJML}
    if kind == TemplateKind.HTML:
        return {"kind": kind, "subject": BLANK_SUBJECT, "source": BLANK_HTML}
    return {
        "kind": TemplateKind.BLOCKS,
        "subject": BLANK_SUBJECT,
        "blocks": [
            {"type": "heading", "text": 'Hello {{ contact.first_name | default: "there" }}'},
            {"type": "text", "html": "<p>Write your message here.</p>"},
            {"type": "footer"},
        ],
    }


# --- the block editor's codec ---------------------------------------------------------

BLOCK_TYPES = [
    ("heading", "Heading"),
    ("text", "Text"),
    ("button", "Button"),
    ("image", "Image"),
    ("divider", "Divider"),
    ("spacer", "Spacer"),
    ("columns", "Columns"),
    ("product_list", "Product list"),
    ("social", "Social links"),
    ("footer", "Footer"),
]
INNER_BLOCK_TYPES = [(value, label) for value, label in BLOCK_TYPES if value in INNER_TYPES]
BLOCK_LABELS = dict(BLOCK_TYPES)
# The fields each block card edits; anything else a block holds rides along in `_extra`.
BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "heading": ("text", "level", "align"),
    "text": ("html", "align"),
    "button": ("label", "url", "align"),
    "image": ("src", "alt", "href", "width", "align"),
    "divider": (),
    "spacer": ("height",),
    "columns": ("column_count",),
    "product_list": ("items", "title", "button_label", "currency"),
    "social": (),
    "footer": (),
}
NUMBER_FIELDS = ("level", "width", "height")
FIELD_NAME = re.compile(r"^b(\d{1,3})(?:\.c([1-3])\.(\d{1,3}))?:(\w+)$")
BLOCK_PATH = re.compile(r"^(\d{1,3})(?:\.([1-3])(?:\.(\d{1,3}))?)?$")
MAX_INNER = 20
OPS = ("add", "up", "down", "delete", "add_inner")
CLOSING_TYPES = ("social", "footer")


def new_block(kind: str) -> dict[str, Any]:
    """A block of this type with content that shows what it is for."""
    image = f"{settings.SITE_URL}{static('img/sample-product.png')}"
    defaults: dict[str, dict[str, Any]] = {
        "heading": {"text": "A new heading", "level": 2},
        "text": {"html": "<p>Write something here.</p>"},
        "button": {"label": "Find out more", "url": "https://example.com"},
        "image": {"src": image, "alt": "Describe the picture", "width": 300},
        "spacer": {"height": 24},
        "columns": {
            "columns": [
                [{"type": "text", "html": "<p>Left column.</p>"}],
                [{"type": "text", "html": "<p>Right column.</p>"}],
            ]
        },
        "product_list": {
            "items": "event.properties.products",
            "title": "Your items",
            "button_label": "View",
            "currency": "USD",
        },
    }
    return {"type": kind, **defaults.get(kind, {})}


def _value(raw: str, key: str) -> Any:
    raw = raw.replace("\r\n", "\n")
    if key in NUMBER_FIELDS:
        raw = raw.strip()
        return int(raw) if raw.isdigit() and len(raw) < 6 else raw
    return raw


def _block_from(fields: dict[str, str]) -> dict[str, Any]:
    kind = fields.get("type", "")
    block: dict[str, Any] = {}
    try:
        extra = json.loads(fields.get("_extra") or "{}")
    except ValueError:
        extra = {}
    if isinstance(extra, dict):
        block.update({k: v for k, v in extra.items() if k != "type"})
    block["type"] = kind
    for key in BLOCK_FIELDS.get(kind, ()):
        if key == "column_count" or key not in fields:
            continue
        value = _value(fields[key], key)
        if value == "" and (key in NUMBER_FIELDS or key in ("align", "href", "alt")):
            block.pop(key, None)
        else:
            block[key] = value
    return block


def blocks_from_post(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The block list the block cards describe, in the order of their numbers."""
    top: dict[int, dict[str, str]] = {}
    inner: dict[int, dict[int, dict[int, dict[str, str]]]] = {}
    for name in data:
        match = FIELD_NAME.match(name)
        if not match:
            continue
        index, column, position, key = match.groups()
        value = data.get(name, "")
        value = value if isinstance(value, str) else str(value)
        if column is None:
            top.setdefault(int(index), {})[key] = value
        else:
            slot = inner.setdefault(int(index), {}).setdefault(int(column), {})
            slot.setdefault(int(position), {})[key] = value
    blocks = []
    for index in sorted(top)[: MAX_BLOCKS + 1]:
        block = _block_from(top[index])
        if block["type"] == "columns":
            count = top[index].get("column_count", "")
            columns = inner.get(index, {})
            count = int(count) if count in ("2", "3") else max(2, min(3, len(columns) or 2))
            block["columns"] = [
                [_block_from(columns.get(c, {})[p]) for p in sorted(columns.get(c, {}))]
                for c in range(1, count + 1)
            ]
        blocks.append(block)
    return blocks


def _end_of_body(blocks: list[dict[str, Any]], kind: str) -> int:
    """Where a new block goes: last, but above the social links and footer that close
    the email (unless it is one of those itself)."""
    index = len(blocks)
    if kind in CLOSING_TYPES:
        return index
    while (
        index
        and isinstance(blocks[index - 1], dict)
        and blocks[index - 1].get("type") in (CLOSING_TYPES)
    ):
        index -= 1
    return index


def apply_block_op(blocks: list[dict[str, Any]], data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Apply the pressed button: add a block, add one to a column, move or delete one.
    An op that names no block (a stale page) changes nothing."""
    op, at = data.get("op", ""), str(data.get("at", ""))
    if op == "add":
        kind = data.get("new_type", "")
        if kind in BLOCK_LABELS and len(blocks) < MAX_BLOCKS:
            blocks.insert(_end_of_body(blocks, kind), new_block(kind))
        return blocks
    match = BLOCK_PATH.match(at)
    if op not in OPS or not match:
        return blocks
    index, column, position = (int(g) if g is not None else None for g in match.groups())
    if index is None or index >= len(blocks):
        return blocks
    siblings = blocks
    target = index
    if column is not None:
        columns = blocks[index].get("columns")
        if not isinstance(columns, list) or column > len(columns):
            return blocks
        siblings = columns[column - 1]
        if op == "add_inner":
            kind = data.get(f"inner_type:{at}", "")
            if kind in INNER_TYPES and len(siblings) < MAX_INNER:
                siblings.append(new_block(kind))
            return blocks
        if position is None or position >= len(siblings):
            return blocks
        target = position
    if op == "delete":
        del siblings[target]
    elif op == "up" and target > 0:
        siblings[target - 1], siblings[target] = siblings[target], siblings[target - 1]
    elif op == "down" and target < len(siblings) - 1:
        siblings[target + 1], siblings[target] = siblings[target], siblings[target + 1]
    return blocks


# --- what the templates render --------------------------------------------------------


@dataclass
class BlockCard:
    """One block card: its field prefix, its data, its problems and, for columns, the
    cards of each column."""

    prefix: str  # "b2" or "b2.c1.0"
    path: str  # "2" or "2.1.0", what the op buttons post as `at`
    number: str  # "3" or "3.1.1", as people count
    block: dict[str, Any]
    first: bool
    last: bool
    problems: list[str] = field(default_factory=list)
    columns: list[ColumnView] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.block.get("type", ""))

    @property
    def label(self) -> str:
        return BLOCK_LABELS.get(self.kind, self.kind or "Unknown")

    @property
    def extra_json(self) -> str:
        known = set(BLOCK_FIELDS.get(self.kind, ())) | {"type", "columns"}
        extra = {k: v for k, v in self.block.items() if k not in known}
        return json.dumps(extra) if extra else ""

    @property
    def values(self) -> dict[str, Any]:
        """Every field the card edits, with the renderer's defaults filled in."""
        defaults = {"level": 1, "align": "center" if self.kind == "image" else "left"}
        values = {}
        for key in BLOCK_FIELDS.get(self.kind, ()):
            value = self.block.get(key, defaults.get(key, ""))
            values[key] = "" if value is None else str(value)
        return values


@dataclass
class ColumnView:
    number: int
    path: str  # "2.1", what "add to this column" posts as `at`
    cards: list[BlockCard]


BLOCK_WHERE = re.compile(r"^Block ([\d.]+)\b")


def block_cards(blocks: list[Any], problems: list[Any] | None = None) -> list[BlockCard]:
    """Cards for the block editor; each problem that names a block is shown on its card."""
    by_block: dict[str, list[str]] = {}
    for problem in problems or []:
        match = BLOCK_WHERE.match(str(problem.where))
        if match:
            by_block.setdefault(match[1], []).append(str(problem))
    cards = []
    for i, block in enumerate(blocks):
        block = block if isinstance(block, dict) else {"type": ""}
        card = BlockCard(
            prefix=f"b{i}",
            path=str(i),
            number=str(i + 1),
            block=block,
            first=i == 0,
            last=i == len(blocks) - 1,
            problems=by_block.get(str(i + 1), []),
        )
        if card.kind == "columns":
            columns = block.get("columns") if isinstance(block.get("columns"), list) else []
            for c, column in enumerate(columns, start=1):
                column = column if isinstance(column, list) else []
                inner = [
                    BlockCard(
                        prefix=f"b{i}.c{c}.{j}",
                        path=f"{i}.{c}.{j}",
                        number=f"{i + 1}.{c}.{j + 1}",
                        block=b if isinstance(b, dict) else {"type": ""},
                        first=j == 0,
                        last=j == len(column) - 1,
                        problems=by_block.get(f"{i + 1}.{c}.{j + 1}", []),
                    )
                    for j, b in enumerate(column)
                ]
                card.columns.append(ColumnView(number=c, path=f"{i}.{c}", cards=inner))
        cards.append(card)
    return cards


ALIGN_CHOICES = [(a, a.capitalize()) for a in ALIGNS]

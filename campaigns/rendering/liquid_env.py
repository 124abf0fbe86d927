"""The Liquid dialect templates are written in: python-liquid with limits, no file access
and a few filters for email (money, fallbacks, dates).

Two environments share one configuration: the HTML one escapes every value it prints, the
text one (subject, plain-text part) prints values as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from io import StringIO

from liquid import BoundTemplate, Environment
from liquid.builtin.expressions.primitive import StringLiteral
from liquid.exceptions import LiquidError, OutputStreamLimitError

RENDER_SECONDS = 0.5
OUTPUT_CHARS = 1_000_000
LOOP_ITERATIONS = 10_000
# Tags that read other templates: a tenant's template has no files to include.
REMOVED_TAGS = ("include", "render")

CURRENCY_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CAD": "CA$",
    "AUD": "A$",
    "CHF": "CHF ",
    "INR": "₹",
}
ZERO_DECIMAL = {"JPY", "KRW"}


def _plain_string_literal(self: StringLiteral, context: object) -> str:
    return self.value


# python-liquid treats string literals in a template as trusted HTML when autoescaping.
# A tenant could then print markup (`{{ "<scr" | append: "ipt>" }}`) that the HTML
# sanitiser never saw; escaping literals like any other value closes that door.
StringLiteral.evaluate = _plain_string_literal  # type: ignore[method-assign]


class RenderTimeout(LiquidError):
    """The render ran past its time budget."""


class GuardedBuffer(StringIO):
    """Output buffer that stops a render that writes too much or for too long."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0
        self.deadline = time.monotonic() + RENDER_SECONDS

    def write(self, text: str) -> int:
        self.size += len(text)
        if self.size > OUTPUT_CHARS:
            raise OutputStreamLimitError("the email grew past 1,000,000 characters", token=None)
        if time.monotonic() > self.deadline:
            raise RenderTimeout(f"rendering took longer than {RENDER_SECONDS} s", token=None)
        return super().write(text)


class GuardedTemplate(BoundTemplate):
    def _get_buffer(self) -> StringIO:
        return GuardedBuffer()


def money(value: object, currency: str = "USD") -> str:
    """`{{ 12.5 | money }}` -> $12.50, `{{ 1200 | money: "EUR" }}` -> €1,200.00."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value) if value is not None else ""
    code = str(currency or "USD").upper()[:3]
    places = Decimal(1) if code in ZERO_DECIMAL else Decimal("0.01")
    amount = amount.quantize(places, rounding=ROUND_HALF_UP)
    digits = f"{abs(amount):,.{0 if code in ZERO_DECIMAL else 2}f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {code}"


class MailEnvironment(Environment):
    template_class = GuardedTemplate
    loop_iteration_limit = LOOP_ITERATIONS
    local_namespace_limit = 200_000
    context_depth_limit = 20
    block_nesting_limit = 20

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        for tag in REMOVED_TAGS:
            self.tags.pop(tag, None)
        self.filters["money"] = money
        if self.autoescape:
            self.filters.pop("safe", None)


HTML_ENV = MailEnvironment(autoescape=True)
TEXT_ENV = MailEnvironment(autoescape=False)


@dataclass(frozen=True)
class LiquidProblem:
    """A Liquid error located in the text the user wrote."""

    where: str
    message: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.where}, line {self.line}, column {self.column}: {self.message}"


def locate(error: LiquidError, source: str) -> tuple[int, int]:
    token = getattr(error, "token", None)
    index = getattr(token, "start_index", None)
    if index is None:
        return 1, 1
    before = source[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def error_message(error: LiquidError) -> str:
    return getattr(error, "message", None) or str(error).split("\n", 1)[0]


def check_liquid(source: str, where: str) -> LiquidProblem | None:
    """Parse `source` alone so an error points at the user's own line and column."""
    try:
        TEXT_ENV.from_string(source)
    except LiquidError as error:
        line, column = locate(error, source)
        return LiquidProblem(where, error_message(error), line, column)
    return None

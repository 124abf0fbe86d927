"""The Liquid dialect templates are written in: python-liquid with limits, no file access
and a few filters for email (money, fallbacks, dates).

Two environments share one configuration: the HTML one escapes every value it prints, the
text one (subject, plain-text part) prints values as they are.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from io import StringIO
from typing import Any

from liquid import BoundTemplate, Environment, RenderContext
from liquid.builtin.expressions.primitive import RangeLiteral, StringLiteral
from liquid.exceptions import LiquidError, LoopIterationLimitError, OutputStreamLimitError

from .shield import LIQUID_MARKUP

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
LINK_SCHEMES = {"http", "https", "mailto", "tel"}
URL_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
PLAIN_LINK = re.compile(r"(?:https?://|mailto:|tel:|#)", re.IGNORECASE)


def _plain_string_literal(self: StringLiteral, context: object) -> str:
    return self.value


# python-liquid treats string literals in a template as trusted HTML when autoescaping.
# A tenant could then print markup (`{{ "<scr" | append: "ipt>" }}`) that the HTML
# sanitiser never saw; escaping literals like any other value closes that door.
StringLiteral.evaluate = _plain_string_literal  # type: ignore[method-assign]

_make_range = RangeLiteral._make_range


def _bounded_range(self: RangeLiteral, start: object, stop: object) -> range:
    numbers = _make_range(self, start, stop)
    if len(numbers) > LOOP_ITERATIONS:
        message = f"loop limit: a range holds at most {LOOP_ITERATIONS:,} numbers"
        raise LoopIterationLimitError(message, token=self.token)
    return numbers


# A range is lazy but filters are not: `(1..100000000) | join` would build a 900 MB string
# in one call that no deadline can interrupt.
RangeLiteral._make_range = _bounded_range  # type: ignore[method-assign]


class RenderTimeout(LiquidError):
    """The render ran past its time budget."""


class GuardedBuffer(StringIO):
    """Output buffer that stops a render that writes too much or for too long. The clock
    is read every 32nd write: a render writes thousands of small pieces, and work that
    writes nothing is held to the same deadline by GuardedContext."""

    def __init__(self, deadline: float | None = None) -> None:
        super().__init__()
        self.size = 0
        self.writes = 0
        self.deadline = deadline or time.monotonic() + RENDER_SECONDS

    def write(self, text: str) -> int:
        self.size += len(text)
        self.writes += 1
        if self.size > OUTPUT_CHARS:
            raise OutputStreamLimitError("the email grew past 1,000,000 characters", token=None)
        if not self.writes & 31 and time.monotonic() > self.deadline:
            raise RenderTimeout(f"rendering took longer than {RENDER_SECONDS} s", token=None)
        return super().write(text)


class GuardedContext(RenderContext):
    """Holds a render to its deadline where work piles up without reaching the output: in
    a capture, in a chain of filters, in a loop whose body writes nothing."""

    __slots__ = ("deadline",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parent = kwargs.get("parent_context")
        self.deadline = (
            parent.deadline
            if isinstance(parent, GuardedContext)
            else time.monotonic() + RENDER_SECONDS
        )

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderTimeout(f"rendering took longer than {RENDER_SECONDS} s", token=None)

    def filter(self, name: str, token: Any) -> Any:
        self.check_deadline()
        return RenderContext.filter(self, name, token)

    def get_buffer(self, buf: Any = None) -> StringIO:
        return GuardedBuffer(self.deadline)

    @contextmanager
    def loop(self, namespace: Any, forloop: Any) -> Iterator[RenderContext]:
        self.check_deadline()
        if forloop.length > 64:  # a cart's few items need no clock on every one
            forloop.it = self._until_deadline(forloop.it)
        with super().loop(namespace, forloop) as context:
            yield context

    def _until_deadline(self, items: Iterator[object]) -> Iterator[object]:
        for item in items:
            self.check_deadline()
            yield item


class GuardedTemplate(BoundTemplate):
    context_class = GuardedContext

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
    try:  # NaN, Infinity and 1e999999 are numbers to Decimal but not amounts of money
        amount = amount.quantize(places, rounding=ROUND_HALF_UP)
        sign = "-" if amount < 0 else ""
    except InvalidOperation:
        return str(value)
    digits = f"{abs(amount):,.{0 if code in ZERO_DECIMAL else 2}f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {code}"


def safe_url(value: object) -> object:
    """`value`, unless it is an address with a scheme email has no use for (javascript:,
    data:, vbscript:), which becomes "#". Browsers ignore blanks and control characters
    inside a scheme, and entities are decoded, so both are undone before looking."""
    text = str(value)
    if PLAIN_LINK.match(text):
        return value
    compact = "".join(ch for ch in html.unescape(text) if ch > " ").lower()
    scheme = URL_SCHEME.match(compact)
    return "#" if scheme and scheme[1] not in LINK_SCHEMES else value


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
        self.filters["safe_url"] = safe_url
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
    if index is not None and index < 0:  # "found end of expression" comes without a place
        index = first_failing_markup(error_message(error), source)
    if index is None:
        return 1, 1
    before = source[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def first_failing_markup(message: str, source: str) -> int | None:
    """Where the first tag that fails alone with `message` starts."""
    for match in LIQUID_MARKUP.finditer(source):
        try:
            TEXT_ENV.from_string(match[0])
        except LiquidError as error:
            if error_message(error) == message:
                return match.start()
    return None


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

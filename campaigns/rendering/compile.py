"""Compile a template once (blocks -> MJML -> HTML, sanitise, inline CSS, plain text, parse
Liquid), then personalise it per recipient, which only runs the Liquid substitution.

    compiled = compile_email(content, brand)      # TemplateInvalid on bad input
    email = compiled.personalise(context)         # RenderFailed: this one message fails
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import css_inline
import mrml
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from liquid import BoundTemplate
from liquid.exceptions import LiquidError

from .blocks import MjmlWriter, check_blocks, liquid_fields
from .brand import Brand
from .layout import add_preview, html_document, wrap_in_layout
from .liquid_env import HTML_ENV, TEXT_ENV, check_liquid, error_message
from .sanitize import (
    clean_css,
    clean_document,
    clean_fragment,
    clean_mjml_output,
    guard_liquid_urls,
    is_full_document,
)
from .shield import LiquidShield

MAX_SOURCE_CHARS = 500_000
MAX_LINE_CHARS = 255  # subject and preheader, as stored
# No network: remote stylesheets stay unfetched, and MJML gets no web-font links.
INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True)
MJML_OPTIONS = mrml.RenderOptions(fonts={})
TEXT_CONFIG = ParserConfig(display_links=True)
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
TABLE_TAG = re.compile(r"<(/?)(?:table|tbody|thead|tfoot|tr|td|th)\b[^>]*>", re.IGNORECASE)
BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@dataclass(frozen=True)
class TemplateContent:
    kind: str
    subject: str
    preheader: str = ""
    blocks: list = field(default_factory=list)
    source: str = ""

    @classmethod
    def of(cls, obj: object) -> TemplateContent:
        return cls(**{name: getattr(obj, name) for name in ("kind", "subject", "preheader")},
                   blocks=obj.blocks or [], source=obj.source or "")  # fmt: skip


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.where}: {self.message}"
        return f"{self.where}, line {self.line}, column {self.column}: {self.message}"


class TemplateInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class RenderFailed(Exception):
    """Personalising for one recipient failed; the reason is recorded on that message."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass
class CompiledEmail:
    subject: BoundTemplate
    html: BoundTemplate
    text: BoundTemplate
    html_source: str
    text_source: str
    liquid_tags: list[str]

    def personalise(self, context: dict) -> RenderedEmail:
        try:
            subject = self.subject.render(context).strip()
            html = self.html.render(context)
            text = self.text.render(context)
        except LiquidError as error:
            raise RenderFailed(f"Liquid: {error_message(error)}") from error
        except RecursionError as error:
            raise RenderFailed("Liquid: the template nests too deeply") from error
        except (ArithmeticError, LookupError, TypeError, ValueError) as error:
            # a filter given a value it cannot take, e.g. a date in the year -3,000,000
            raise RenderFailed(f"Liquid: {error}") from error
        if not subject:
            raise RenderFailed("the subject rendered empty")
        if not text.strip():
            raise RenderFailed("the body rendered empty")
        text = BLANK_LINES.sub("\n\n", text)
        return RenderedEmail(subject=" ".join(subject.split()), html=html, text=text)


def check_content(content: TemplateContent) -> list[Problem]:
    """Everything wrong with what the user wrote, each pointing at where they wrote it."""
    problems: list[Problem] = []
    if not content.subject.strip():
        problems.append(Problem("Subject", "a subject is required"))
    for where, line in (("Subject", content.subject), ("Preheader", content.preheader)):
        if len(line) > MAX_LINE_CHARS:
            problems.append(Problem(where, f"keep it to {MAX_LINE_CHARS} characters"))
    sources = [("Subject", content.subject), ("Preheader", content.preheader)]
    if content.kind == "blocks":
        problems += [Problem(p.where, p.message) for p in check_blocks(content.blocks)]
        if not problems:
            sources += liquid_fields(content.blocks)
    elif content.kind in ("mjml", "html"):
        label = "MJML" if content.kind == "mjml" else "HTML"
        if not content.source.strip():
            problems.append(Problem(label, "the source is empty"))
        elif len(content.source) > MAX_SOURCE_CHARS:
            problems.append(Problem(label, f"the source is over {MAX_SOURCE_CHARS:,} characters"))
        sources.append((label, content.source))
    else:
        problems.append(Problem("Kind", "must be blocks, mjml or html"))
    for where, text in sources:
        found = check_liquid(text, where)
        if found:
            problems.append(Problem(found.where, found.message, found.line, found.column))
    return problems


def compile_email(content: TemplateContent, brand: Brand) -> CompiledEmail:
    problems = check_content(content)
    if problems:
        raise TemplateInvalid(problems)
    shield = LiquidShield()
    writer = MjmlWriter(brand, shield)
    document = build_document(content, writer)
    html = INLINER.inline(document)
    text = html_to_text(shield.uncomment(html))
    html = guard_liquid_urls(html, shield)
    html, text = shield.restore(html), shield.restore(text)
    try:
        return CompiledEmail(
            subject=TEXT_ENV.from_string(content.subject),
            html=HTML_ENV.from_string(html),
            text=TEXT_ENV.from_string(text),
            html_source=html,
            text_source=text,
            liquid_tags=shield.tags(),
        )
    except LiquidError as error:  # tags that parse alone but not together, e.g. a split if
        raise TemplateInvalid([Problem("Body", error_message(error))]) from error


def build_document(content: TemplateContent, writer: MjmlWriter) -> str:
    if content.kind == "html":
        return html_body(content, writer)
    if content.kind == "blocks":
        has_footer = any(block.get("type") == "footer" for block in content.blocks)
        body = writer.body(content.blocks)
        return mjml_to_html(wrap_in_layout(writer, body, content.preheader, has_footer))
    source = writer.shield.protect(content.source)
    if "<mjml" in source:
        return mjml_to_html(add_preview(source, writer, content.preheader))
    return mjml_to_html(wrap_in_layout(writer, source, content.preheader, has_footer=False))


def html_body(content: TemplateContent, writer: MjmlWriter) -> str:
    source = writer.shield.protect(content.source)
    if is_full_document(source):
        css, body = clean_document(source)
        return html_document(clean_css(css), body, content.preheader, writer)
    fragment = (
        f"<mj-section><mj-column><mj-text>{clean_fragment(source)}</mj-text>"
        "</mj-column></mj-section>"
    )
    return mjml_to_html(wrap_in_layout(writer, fragment, content.preheader, has_footer=False))


def mjml_to_html(mjml: str) -> str:
    try:
        return clean_mjml_output(mrml.to_html(mjml, render_options=MJML_OPTIONS).content)
    except OSError as error:
        hint = "check that every tag is closed and that & and < are written &amp; and &lt;"
        if "included template" in str(error):
            hint = "mj-include cannot load files or URLs here; paste the MJML in its place"
        raise TemplateInvalid([Problem("MJML", f"{error} ({hint})")]) from error


def html_to_text(html: str) -> str:
    """The plain-text part. Layout tables are read as plain blocks, one cell after the
    other, so a Liquid loop written across table cells stays in order."""
    text = get_text(TABLE_TAG.sub(r"<\1div>", html), TEXT_CONFIG)
    text = MARKDOWN_LINK.sub(link_as_text, text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


def link_as_text(match: re.Match[str]) -> str:
    label, url = " ".join(match[1].split()), match[2]
    if not label:  # a linked image: its link is repeated in text elsewhere or not needed
        return ""
    return label if label == url or url.startswith("#") else f"{label} ({url})"

"""Keep Liquid tags intact through MJML, the HTML sanitiser, CSS inlining and the
plain-text conversion.

Each `{{ ... }}` is swapped for an opaque lowercase token before those steps run (so an
HTML parser never sees `"` or `>` inside a tag, even inside an href) and put back
afterwards. A `{% ... %}` token is also wrapped in an HTML comment: HTML parsers move stray
text out of tables, and a `{% for %}` between two table rows must stay where it is.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

LIQUID_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


class LiquidShield:
    def __init__(self) -> None:
        self.nonce = secrets.token_hex(4)
        self.originals: list[str] = []
        prefix = f"lq{self.nonce}n"
        self.token_pattern = re.compile(rf"(?:<!--|&lt;!--)?{prefix}(\d+)z(?:-->|--&gt;)?")
        self.comment_pattern = re.compile(rf"<!--({prefix}\d+z)-->")

    def protect(self, text: str, escape: Callable[[str], str] | None = None) -> str:
        """`text` with its Liquid stashed; `escape` applies to the text around the tags."""
        parts, position = [], 0
        for match in LIQUID_MARKUP.finditer(text):
            plain = text[position : match.start()]
            parts += [escape(plain) if escape else plain, self._stash(match[0])]
            position = match.end()
        tail = text[position:]
        parts.append(escape(tail) if escape else tail)
        return "".join(parts)

    def restore(self, text: str) -> str:
        return self.token_pattern.sub(lambda match: self.originals[int(match[1])], text)

    def uncomment(self, html: str) -> str:
        """Tag tokens as plain text, so a text converter that drops comments keeps them."""
        return self.comment_pattern.sub(r"\1", html)

    def _stash(self, markup: str) -> str:
        self.originals.append(markup)
        token = f"lq{self.nonce}n{len(self.originals) - 1}z"
        return f"<!--{token}-->" if markup.startswith("{%") else token

    def tags(self) -> list[str]:
        return list(self.originals)

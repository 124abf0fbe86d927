"""The brand kit as plain data, the only form the renderer sees it in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DEFAULT_FONT = "Helvetica, Arial, sans-serif"


@dataclass(frozen=True)
class Brand:
    name: str = "Your company"
    logo_url: str = ""
    logo_width: int = 160
    logo_alt: str = ""
    primary_color: str = "#1d4ed8"
    text_color: str = "#1f2937"
    background_color: str = "#f3f4f6"
    content_background_color: str = "#ffffff"
    button_color: str = "#1d4ed8"
    button_text_color: str = "#ffffff"
    font_stack: str = DEFAULT_FONT
    heading_font_stack: str = DEFAULT_FONT
    footer_text: str = ""
    postal_address: str = ""
    social_links: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    from_name: str = ""
    from_email: str = ""

    def as_context(self) -> dict:
        """What templates can read as `brand.*`."""
        data = asdict(self)
        data["social_links"] = [{"network": n, "url": u} for n, u in self.social_links]
        return data

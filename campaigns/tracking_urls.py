"""The links inside sent emails, mounted at the site root by config.urls (no login):
open pixel, click redirect, unsubscribe and preference centre. campaigns/sending/links.py
builds these paths by hand for speed; keep the two in step."""

from django.urls import path, register_converter

from . import tracking_views


class TokenConverter:
    """A message token: base64url text (campaigns.sending.links.read_token checks it)."""

    regex = r"[A-Za-z0-9_-]{38,59}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class SignatureConverter(TokenConverter):
    regex = r"[A-Za-z0-9_-]{12}"


register_converter(TokenConverter, "message_token")
register_converter(SignatureConverter, "click_signature")

urlpatterns = [
    path("o/<message_token:token>.gif", tracking_views.open_pixel, name="message_open_pixel"),
    path(
        "c/<message_token:token>/<click_signature:signature>",
        tracking_views.click,
        name="message_click",
    ),
    path("u/<message_token:token>", tracking_views.unsubscribe, name="message_unsubscribe"),
    path("p/<message_token:token>", tracking_views.preferences, name="message_preferences"),
]

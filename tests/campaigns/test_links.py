"""Per-message links without HTTP: tokens, click signatures, List-Unsubscribe headers, the
rewriting of an email's links and the machine/person verdicts."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.utils import timezone

from campaigns.models import Message, MessageSource, SendingPolicy
from campaigns.sending import links
from tests.factories import ContactFactory, EmailTemplateFactory, WorkspaceFactory

TRACKING = "https://links.example.com"


@pytest.fixture(autouse=True)
def _tracking_url(settings):
    settings.MAILPATH_TRACKING_URL = TRACKING
    settings.SITE_URL = "https://app.example.com"


def make_message(workspace, **fields) -> Message:
    contact = fields.pop("contact", None) or ContactFactory(workspace=workspace)
    defaults = {
        "to_email": contact.email,
        "source": MessageSource.CAMPAIGN,
        "source_id": "spring-sale",
        "idempotency_key": f"test:{uuid.uuid4()}",
        "subject": "Spring sale",
        "sent_at": timezone.now() - dt.timedelta(hours=1),
    }
    return Message.objects.create(workspace=workspace, contact=contact, **{**defaults, **fields})


def policy(**fields) -> SendingPolicy:
    return SendingPolicy(**{"track_opens": True, "track_clicks": True, **fields})


# --- tokens -------------------------------------------------------------------------------


def test_a_token_names_its_message_and_workspace(workspace_a):
    message = make_message(workspace_a)
    token = links.message_token(message)

    assert re.fullmatch(r"[A-Za-z0-9_-]{38,59}", token)
    assert links.read_token(token) == links.MessageRef(workspace_a.pk, message.public_id)
    assert links.message_from_token(token) == message


def test_any_changed_character_makes_the_token_invalid(workspace_a):
    token = links.message_token(make_message(workspace_a))
    alphabet = "AQgwBRhxz9_-"
    for position, char in enumerate(token):
        other = next(c for c in alphabet if c != char)
        changed = token[:position] + other + token[position + 1 :]
        assert links.read_token(changed) is None, f"position {position}"
    assert links.read_token(token[:-1]) is None
    assert links.read_token(token + "A") is None
    assert links.read_token("") is None
    assert links.read_token("é" * 42) is None


def test_tokens_signed_with_another_key_fail_but_fallback_keys_still_verify(workspace_a, settings):
    message = make_message(workspace_a)
    old_token = links.message_token(message)

    settings.SECRET_KEY = "a-completely-different-secret-key-0123456789"
    assert links.read_token(old_token) is None

    settings.SECRET_KEY_FALLBACKS = ["tests-only-secret-key-not-for-production"]
    assert links.read_token(old_token) is not None


def test_a_token_cannot_carry_a_message_into_another_workspace(workspace_a, workspace_b):
    message = make_message(workspace_a)
    # Validly signed, but naming workspace B: the lookup happens inside B and finds nothing.
    forged = SimpleNamespace(workspace_id=workspace_b.pk, public_id=message.public_id)
    token = links.message_token(forged)

    assert links.read_token(token) == links.MessageRef(workspace_b.pk, message.public_id)
    assert links.message_from_token(token) is None


def test_a_click_signature_covers_the_token_and_the_destination(workspace_a):
    token = links.message_token(make_message(workspace_a))
    other = links.message_token(make_message(workspace_a))
    url = "https://shop.example.com/sale?x=1"
    signature = links.click_signature(token, url)

    assert links.click_signature_ok(token, url, signature)
    assert not links.click_signature_ok(token, url + "&y=2", signature)
    assert not links.click_signature_ok(other, url, signature)
    assert not links.click_signature_ok(token, url, "A" + signature[1:])
    assert not links.click_signature_ok(token, url, "")


# --- headers --------------------------------------------------------------------------------


def test_list_unsubscribe_offers_https_and_mailto_and_one_click(workspace_a):
    workspace_a.default_from_email = "news@acme-outdoor.example"
    workspace_a.save()
    message = make_message(workspace_a)
    token = links.message_token(message)

    headers = links.list_unsubscribe_headers(message)

    assert headers == {
        "List-Unsubscribe": (
            f"<{TRACKING}/u/{token}>, <mailto:unsubscribe+{token}@acme-outdoor.example>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert links.unsubscribe_url(message) == f"{TRACKING}/u/{token}"
    assert links.preferences_url(message) == f"{TRACKING}/p/{token}"
    assert links.token_from_mail_address(f"unsubscribe+{token}@acme-outdoor.example") == token
    assert links.token_from_mail_address(f"unsubscribe+{token[:-1]}x@a.example") is None


def test_without_a_sender_address_the_mailto_uses_the_site_domain(workspace_a):
    workspace_a.default_from_email = ""
    workspace_a.save()
    message = make_message(workspace_a)
    assert "@app.example.com>" in links.list_unsubscribe_headers(message)["List-Unsubscribe"]


def test_transactional_mail_gets_no_list_unsubscribe(workspace_a):
    message = make_message(workspace_a, purpose="transactional", source="transactional")
    assert links.list_unsubscribe_headers(message) == {}


# --- track_html -------------------------------------------------------------------------------


def _html(message) -> str:
    return (
        "<html><body>"
        '<a href="https://shop.example.com/sale?a=1&amp;b=2" style="color:red">Shop</a>'
        "<a class='x' href='http://example.org/blog'>Blog</a>"
        '<a href="mailto:help@example.com">Mail us</a>'
        '<a href="tel:+15551234">Call</a>'
        '<a href="#top">Top</a>'
        f'<a href="{links.unsubscribe_url(message)}">Unsubscribe</a>'
        f'<a href="{links.preferences_url(message)}">Preferences</a>'
        '<a href="https://shop.example.com/?utm_source=own">Own UTM</a>'
        "</body></html>"
    )


def _hrefs(html: str) -> list[str]:
    return re.findall(r"""href=["']([^"']*)["']""", html)


def _destination(href: str, token: str) -> str:
    """Check a click link's shape and signature; return where it leads."""
    parts = urlsplit(href)
    assert f"{parts.scheme}://{parts.netloc}" == TRACKING
    _, kind, link_token, signature = parts.path.split("/")
    assert (kind, link_token) == ("c", token)
    url = parse_qs(parts.query)["u"][0]
    assert links.click_signature_ok(token, url, signature)
    return url


def test_track_html_wraps_web_links_and_leaves_the_rest(workspace_a):
    message = make_message(workspace_a)
    token = links.message_token(message)

    html = links.track_html(_html(message), message, policy())
    hrefs = _hrefs(html)

    assert _destination(hrefs[0], token) == "https://shop.example.com/sale?a=1&b=2"
    assert _destination(hrefs[1], token) == "http://example.org/blog"
    assert hrefs[2:7] == [
        "mailto:help@example.com",
        "tel:+15551234",
        "#top",
        links.unsubscribe_url(message),
        links.preferences_url(message),
    ]
    assert _destination(hrefs[7], token) == "https://shop.example.com/?utm_source=own"
    assert 'style="color:red">Shop</a>' in html
    assert "<a class='x' href='" in html


def test_the_open_pixel_goes_before_the_end_of_the_body(workspace_a):
    message = make_message(workspace_a)
    pixel_url = f"{TRACKING}/o/{links.message_token(message)}.gif"

    html = links.track_html(_html(message), message, policy())

    assert html.endswith(
        f'<img src="{pixel_url}" width="1" height="1" alt="" '
        'style="display:none;width:1px;height:1px;border:0"></body></html>'
    )
    assert pixel_url not in links.track_html(_html(message), message, policy(track_opens=False))


def test_nothing_is_rewritten_when_the_policy_tracks_nothing(workspace_a):
    message = make_message(workspace_a)
    original = _html(message)
    quiet = policy(track_opens=False, track_clicks=False, utm_enabled=False)
    assert links.track_html(original, message, quiet) == original


def test_utm_parameters_are_added_only_when_asked_and_only_where_missing(workspace_a):
    message = make_message(workspace_a, source_id="spring sale")
    token = links.message_token(message)
    with_utm = policy(utm_enabled=True, utm_source="acme", utm_medium="email")

    hrefs = _hrefs(links.track_html(_html(message), message, with_utm))

    assert _destination(hrefs[0], token) == (
        "https://shop.example.com/sale?a=1&b=2"
        "&utm_source=acme&utm_medium=email&utm_campaign=spring%20sale"
    )
    assert _destination(hrefs[1], token) == (
        "http://example.org/blog?utm_source=acme&utm_medium=email&utm_campaign=spring%20sale"
    )
    assert _destination(hrefs[7], token) == "https://shop.example.com/?utm_source=own"
    untagged = _hrefs(links.track_html(_html(message), message, policy()))
    assert "utm_" not in unquote(untagged[1])


def test_utm_without_click_tracking_edits_the_links_in_place(workspace_a):
    template = EmailTemplateFactory(workspace=workspace_a, name="Welcome")
    message = make_message(
        workspace_a, source=MessageSource.JOURNEY, source_id="", template=template
    )
    only_utm = policy(track_clicks=False, track_opens=False, utm_enabled=True)

    hrefs = _hrefs(links.track_html(_html(message), message, only_utm))

    assert hrefs[0] == (
        "https://shop.example.com/sale?a=1&amp;b=2"
        "&amp;utm_source=mailpath&amp;utm_medium=email&amp;utm_campaign=Welcome"
    )
    assert hrefs[2] == "mailto:help@example.com"


def test_tracking_twice_wraps_nothing_twice(workspace_a):
    message = make_message(workspace_a)
    once = links.track_html(_html(message), message, policy(utm_enabled=True))
    assert links.track_html(once, message, policy(utm_enabled=True)) == once
    assert once.count("/o/") == 1


# --- machines and people ----------------------------------------------------------------------

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


@pytest.mark.parametrize(
    ("hit", "seconds", "machine"),
    [
        (links.Hit(BROWSER), 5, False),
        (links.Hit("Mozilla/5.0 (Windows NT 5.1) GoogleImageProxy"), 5, False),
        (links.Hit("Mozilla/5.0"), 3600, True),  # Apple Mail Privacy Protection
        (links.Hit(""), 5, True),
        (links.Hit(""), 3600, False),
        (links.Hit("Barracuda Sentinel (EE)"), 3600, True),
        (links.Hit(BROWSER, method="HEAD"), 3600, True),
    ],
)
def test_machine_opens(hit, seconds, machine):
    assert bool(links.machine_open_reason(hit, seconds)) is machine


def test_opens_from_configured_proxy_networks_are_machine_opens(settings):
    settings.MAILPATH_MACHINE_OPEN_NETWORKS = ["17.58.0.0/16"]
    assert links.machine_open_reason(links.Hit(BROWSER, "17.58.3.4"), 3600)
    assert not links.machine_open_reason(links.Hit(BROWSER, "203.0.113.9"), 3600)


@pytest.mark.parametrize(
    ("hit", "seconds", "machine"),
    [
        (links.Hit(BROWSER), 3600, False),
        (links.Hit(BROWSER), None, False),
        (links.Hit(BROWSER), 4, True),  # within seconds of delivery
        (links.Hit("Mozilla/5.0 (compatible; Mimecast URL Protect)"), 3600, True),
        (links.Hit("python-requests/2.32"), 3600, True),
        (links.Hit(""), 3600, True),
        (links.Hit(BROWSER, method="HEAD"), 3600, True),
    ],
)
def test_scanner_clicks(hit, seconds, machine):
    assert bool(links.scanner_click_reason(hit, seconds)) is machine


def test_operators_can_name_more_machine_user_agents(settings):
    settings.MAILPATH_MACHINE_USER_AGENTS = ["AcmeGateway"]
    assert links.scanner_click_reason(links.Hit("acmegateway/1.0"), 3600)


def test_a_workspace_sender_domain_is_used_per_workspace(db):
    workspace = WorkspaceFactory(default_from_email="hi@bloom.example")
    message = make_message(workspace)
    assert "@bloom.example>" in links.list_unsubscribe_headers(message)["List-Unsubscribe"]

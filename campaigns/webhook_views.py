"""The ESP tracking webhooks at /anymail/<esp>/tracking/ (incoming: the ESP tells us what
happened to our mail; outgoing webhooks are campaigns.outgoing_views): Anymail's own views,
which parse each ESP's payload and send the `tracking` signal, made to authenticate a
*workspace*.

Every call needs HTTP basic auth (missing or wrong: 400, nothing written), either

- a workspace's: user = the workspace's public id, password = its webhook secret
  (EspConnection.webhook_secret; the Sending settings page shows the whole URL), or
- the installation's ANYMAIL["WEBHOOK_SECRET"] ("user:password"), for a platform-wide ESP
  account that every workspace without its own connection sends through;

and, where the ESP signs its webhooks, a good signature (the key is the workspace's, from
its stored credentials, or the installation's ANYMAIL setting for platform calls):

| ESP        | signature checked                                                       |
|------------|-------------------------------------------------------------------------|
| Amazon SES | always: the SNS message signature (campaigns/sending/sns.py; bad: 403)   |
| Mailgun    | always: HTTP webhook signing key (else the API key, as Anymail does)     |
| SendGrid   | when a Signed Event Webhook verification key is stored                  |
| Resend     | when a webhook signing secret (whsec_...) is stored                     |
| Postmark, Brevo, Mailjet, SparkPost | none offered: basic auth only                  |

The view hangs the authenticated caller on each event for campaigns.sending.webhooks,
which only touches that caller's messages. Anymail's other views (inbound mail, ESPs we do
not offer) are not mounted.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from typing import Any

from anymail.exceptions import AnymailNotSupportedWarning, AnymailWebhookValidationFailure
from anymail.utils import get_anymail_setting, get_request_basic_auth
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBaseWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.resend import ResendTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .sending import sns, webhooks
from .sending.webhooks import WebhookCaller

logger = logging.getLogger(__name__)

# Anymail's note that it no longer tests SendGrid would otherwise be logged on every call.
warnings.filterwarnings("ignore", category=AnymailNotSupportedWarning, message=".*SendGrid")


class WorkspaceWebhookAuth:
    """Put first in the bases of an Anymail tracking view. Anymail calls every
    `validate_request` of the class chain, this one first (it is first in the MRO);
    subclasses add ESP signature checks in `check_signature`, never in validate_request
    (which would then run before authentication)."""

    caller: WebhookCaller | None = None

    @property
    def warn_if_no_basic_auth(self) -> bool:
        """Anymail warns when ANYMAIL["WEBHOOK_SECRET"] is unset (and some views switch the
        warning on in __init__); these views always demand basic auth, so never."""
        return False

    @warn_if_no_basic_auth.setter
    def warn_if_no_basic_auth(self, value: bool) -> None:
        pass

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.take_over_basic_auth()

    def take_over_basic_auth(self) -> None:
        # Anymail's own check accepts only the installation's secrets; ours accepts those
        # and each workspace's, so Anymail's list is moved aside.
        self.platform_secrets: list[str] = list(self.basic_auth or [])  # type: ignore[has-type]
        self.basic_auth: list[str] = []

    def validate_request(self, request: HttpRequest) -> None:
        caller = webhooks.authenticate(get_request_basic_auth(request), self.platform_secrets)
        if caller is None:
            esp_name = getattr(self, "esp_name", "ESP")
            raise AnymailWebhookValidationFailure(
                f"Missing or invalid basic auth in a {esp_name} webhook."
            )
        self.caller = caller
        self.check_signature(request, caller)

    def check_signature(self, request: HttpRequest, caller: WebhookCaller) -> None:
        """Raise AnymailWebhookValidationFailure (400) or PermissionDenied (403)."""

    def parse_events(self, request: HttpRequest) -> list[Any]:
        events = super().parse_events(request)  # type: ignore[misc]
        for event in events:
            setattr(event, webhooks.CALLER_ATTRIBUTE, self.caller)
        return events


class PostmarkTracking(WorkspaceWebhookAuth, PostmarkTrackingWebhookView):
    pass


class BrevoTracking(WorkspaceWebhookAuth, BrevoTrackingWebhookView):
    pass


class MailjetTracking(WorkspaceWebhookAuth, MailjetTrackingWebhookView):
    pass


class SparkPostTracking(WorkspaceWebhookAuth, SparkPostTrackingWebhookView):
    pass


class MailgunTracking(WorkspaceWebhookAuth, MailgunTrackingWebhookView):
    """Mailgun signs every webhook: Anymail's check runs after ours, with the caller's key."""

    def __init__(self, **kwargs: Any) -> None:
        platform_key = get_anymail_setting(
            "webhook_signing_key", esp_name="Mailgun", default=None
        ) or get_anymail_setting("api_key", esp_name="Mailgun", allow_bare=True, default=None)
        kwargs["webhook_signing_key"] = platform_key or ""  # none set: not an error at start
        super().__init__(**kwargs)
        self.platform_signing_key: bytes = self.webhook_signing_key

    def check_signature(self, request: HttpRequest, caller: WebhookCaller) -> None:
        if caller.workspace is None:
            key = self.platform_signing_key
        else:
            text = caller.secret("webhook_signing_key", provider="mailgun") or caller.secret(
                "api_key", provider="mailgun"
            )
            key = text.encode()
        if not key:
            raise AnymailWebhookValidationFailure(
                "No Mailgun webhook signing key is set for this webhook's workspace."
            )
        self.webhook_signing_key = key


class SendGridTracking(WorkspaceWebhookAuth, SendGridTrackingWebhookView):
    """SendGrid's Signed Event Webhook, when a verification key is stored."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform_verification_key = self.webhook_verification_key

    def check_signature(self, request: HttpRequest, caller: WebhookCaller) -> None:
        if caller.workspace is None:
            self.webhook_verification_key = self.platform_verification_key
            return
        text = caller.secret("webhook_verification_key", provider="sendgrid").strip()
        self.webhook_verification_key = _sendgrid_key(text) if text else None


def _sendgrid_key(text: str) -> Any:
    body = text
    if "BEGIN PUBLIC KEY" not in body:
        body = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
    try:
        return serialization.load_pem_public_key(body.encode())
    except ValueError as error:
        raise AnymailWebhookValidationFailure(
            "The workspace's SendGrid verification key is not a public key."
        ) from error


class ResendTracking(WorkspaceWebhookAuth, ResendTrackingWebhookView):
    """Resend signs through Svix; we check it here (no svix package needed)."""

    def __init__(self, **kwargs: Any) -> None:
        self.platform_signing_secret = get_anymail_setting(
            "signing_secret", esp_name="Resend", default=None
        )
        kwargs["signing_secret"] = None  # keeps Anymail's svix-based check switched off
        super().__init__(**kwargs)

    def check_signature(self, request: HttpRequest, caller: WebhookCaller) -> None:
        if caller.workspace is None:
            secret = self.platform_signing_secret or ""
        else:
            secret = caller.secret("signing_secret", provider="resend")
        if secret and not webhooks.verify_svix(secret, request.headers, request.body, time.time()):
            raise AnymailWebhookValidationFailure("Resend webhook with a bad signature.")


class AmazonSesTracking(WorkspaceWebhookAuth, AmazonSESTrackingWebhookView):
    """SES events come through Amazon SNS. We verify SNS's signature (Anymail does not),
    and confirm SNS subscriptions over HTTPS, so boto3 is not needed here."""

    def __init__(self, **kwargs: Any) -> None:
        self.auto_confirm_enabled = get_anymail_setting(
            "auto_confirm_sns_subscriptions", esp_name=self.esp_name, kwargs=kwargs, default=True
        )
        self.session_params: dict[str, Any] = {}
        self.client_params: dict[str, Any] = {}
        # Skips AmazonSESBaseWebhookView.__init__, whose only other work is reading boto3
        # settings for the subscription confirmation done below without it.
        AnymailBaseWebhookView.__init__(self, **kwargs)
        self.take_over_basic_auth()

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.META.get("HTTP_AUTHORIZATION"):
            # SNS sends credentials only after a 401 challenge.
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = 'Basic realm="Mailpath webhooks"'
            return response
        return super().post(request, *args, **kwargs)

    def check_signature(self, request: HttpRequest, caller: WebhookCaller) -> None:
        try:
            message = json.loads(request.body.decode(request.encoding or "utf-8"))
        except (TypeError, ValueError, UnicodeDecodeError) as error:
            raise AnymailWebhookValidationFailure("The SNS message is not JSON.") from error
        if not isinstance(message, dict):
            raise AnymailWebhookValidationFailure("The SNS message is not a JSON object.")
        try:
            sns.verify(message)
        except sns.SnsSignatureInvalid as error:
            logger.warning("Refused an SNS message: %s", error)
            raise PermissionDenied("The Amazon SNS signature does not check out.") from error
        request._sns_message = message  # type: ignore[attr-defined]  # Anymail's cache

    def auto_confirm_sns_subscription(self, sns_message: dict[str, Any]) -> None:
        if not self.auto_confirm_enabled:
            logger.info(
                "SNS subscription to %s awaits confirmation in the AWS console.",
                sns_message.get("TopicArn"),
            )
            return
        sns.confirm_subscription(sns_message)

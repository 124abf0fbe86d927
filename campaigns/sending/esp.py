"""The ESPs a workspace can send through, and the factory that gives it an email connection.

Each provider names its Anymail backend (or Django's SMTP backend), the secrets and options
an admin enters on the Sending settings page, and what the delivery code needs to know:
`batch_limit` (distinct messages per API call: Postmark's /email/batch takes 500, the
others take one message per call through Anymail), `merge_batch_limit` (recipients of one
Anymail merge_data batch send, split by the caller: Anymail does not split) and
`idempotency` (the ESP drops a repeated request carrying the same idempotency key).

Secrets are stored encrypted (campaigns/sending/secrets.py) in EspConnection.credentials;
options in EspConnection.settings. `connection_for(workspace)` builds the connection at run
time through settings.MAILPATH_CONNECTION_FACTORY, which tests can swap.
"""

from __future__ import annotations

import ipaddress
import secrets as token_source
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from campaigns.models import ConnectionStatus, EspConnection, EspProvider
from workspaces.mail import workspace_metadata, workspace_sender
from workspaces.models import Workspace

from . import secrets

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
SMTP_TIMEOUT_SECONDS = 20
# Anymail's default HTTP timeout is 30 s; a test send or a worker should not hang that long.
HTTP_TIMEOUT_SECONDS = 20
MAX_ERROR_LENGTH = 2000
MAX_RATE_PER_SECOND = 5000
MASK = "••••"


@dataclass(frozen=True)
class Field:
    """One thing an admin enters. `kind` is text, int, url or choice (with `choices`).
    `to_backend` False: stored for another use (a webhook signing key), not passed to the
    email backend."""

    name: str
    label: str
    required: bool = False
    kind: str = "text"
    default: Any = ""
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    to_backend: bool = True


def _webhook_only(name: str, label: str, help: str) -> Field:
    return Field(name, label, help=help, to_backend=False)


@dataclass(frozen=True)
class Provider:
    key: str
    label: str
    backend: str
    secret_fields: tuple[Field, ...] = ()
    option_fields: tuple[Field, ...] = ()
    batch_limit: int = 1
    idempotency: bool = False
    docs_url: str = ""
    merge_batch_limit: int = 1
    webhook_esp: str | None = None  # the segment of Anymail's /anymail/<esp>/tracking/
    build_kwargs: Callable[[dict[str, Any]], dict[str, Any]] | None = field(
        default=None, repr=False
    )

    @property
    def fields(self) -> tuple[Field, ...]:
        return self.secret_fields + self.option_fields

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.secret_fields)

    def backend_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        """The backend's init keywords from the stored secrets and options."""
        if self.build_kwargs is not None:
            return self.build_kwargs(values)
        kwargs: dict[str, Any] = {}
        for f in self.fields:
            value = values.get(f.name, f.default)
            if f.to_backend and value not in ("", None):
                kwargs[f.name] = value
        if self.backend.startswith("anymail."):
            kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return kwargs


def _api_url(default: str, *others: tuple[str, str], help: str = "") -> Field:
    choices = ((default, f"{default} (default)"), *others)
    return Field("api_url", "API endpoint", kind="url", default=default, choices=choices, help=help)


def _ses_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    client_params = {
        "aws_access_key_id": values.get("access_key", ""),
        "aws_secret_access_key": values.get("secret_key", ""),
        "region_name": values.get("region") or "us-east-1",
    }
    if values.get("endpoint_url"):  # not on the page: for tests and operators
        client_params["endpoint_url"] = values["endpoint_url"]
    kwargs: dict[str, Any] = {"client_params": client_params}
    if values.get("configuration_set_name"):
        kwargs["configuration_set_name"] = values["configuration_set_name"]
    return kwargs


def _smtp_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    security = values.get("security") or "starttls"
    return {
        "host": values.get("host", ""),
        "port": int(values.get("port") or 587),
        "username": values.get("username") or "",
        "password": values.get("password") or "",
        "use_tls": security == "starttls",
        "use_ssl": security == "ssl",
        "timeout": SMTP_TIMEOUT_SECONDS,
    }


SES_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1",
    "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
    "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-northeast-1",
    "ap-northeast-2", "ap-northeast-3", "me-south-1", "me-central-1", "il-central-1",
    "af-south-1", "sa-east-1",
)  # fmt: skip

PROVIDERS: dict[str, Provider] = {
    p.key: p
    for p in (
        Provider(
            key=EspProvider.SANDBOX,
            label="Sandbox (no real email)",
            backend="workspaces.sandbox.SandboxEmailBackend",
            docs_url="",
        ),
        Provider(
            key=EspProvider.AMAZON_SES,
            label="Amazon SES",
            backend="anymail.backends.amazon_ses.EmailBackend",
            secret_fields=(
                Field("access_key", "Access key ID", required=True),
                Field("secret_key", "Secret access key", required=True),
            ),
            option_fields=(
                Field(
                    "region",
                    "Region",
                    required=True,
                    kind="choice",
                    default="us-east-1",
                    choices=tuple((r, r) for r in SES_REGIONS),
                    help="The AWS region where your SES identities are verified.",
                ),
                Field(
                    "configuration_set_name",
                    "Configuration set",
                    help="The SES configuration set that publishes events to your SNS "
                    "topic (needed for bounces, complaints, opens and clicks).",
                ),
            ),
            merge_batch_limit=50,
            docs_url="https://anymail.dev/en/stable/esps/amazon_ses/",
            webhook_esp="amazon_ses",
            build_kwargs=_ses_kwargs,
        ),
        Provider(
            key=EspProvider.MAILGUN,
            label="Mailgun",
            backend="anymail.backends.mailgun.EmailBackend",
            secret_fields=(
                Field("api_key", "API key", required=True),
                _webhook_only(
                    "webhook_signing_key",
                    "HTTP webhook signing key",
                    "From Mailgun's Webhooks page: lets Mailpath check that webhook "
                    "calls come from Mailgun.",
                ),
            ),
            option_fields=(
                Field(
                    "sender_domain",
                    "Sending domain",
                    help="Leave blank to use the domain of each message's From address.",
                ),
                _api_url(
                    "https://api.mailgun.net/v3",
                    ("https://api.eu.mailgun.net/v3", "https://api.eu.mailgun.net/v3 (EU)"),
                    help="Choose the EU endpoint if your Mailgun domain is in the EU region.",
                ),
            ),
            merge_batch_limit=1000,
            docs_url="https://anymail.dev/en/stable/esps/mailgun/",
            webhook_esp="mailgun",
        ),
        Provider(
            key=EspProvider.POSTMARK,
            label="Postmark",
            backend="anymail.backends.postmark.EmailBackend",
            secret_fields=(Field("server_token", "Server API token", required=True),),
            option_fields=(
                Field(
                    "message_stream",
                    "Message stream",
                    help="Postmark wants marketing mail on a broadcast stream, e.g. "
                    "“broadcast”. Blank: the server's default transactional stream.",
                ),
                _api_url("https://api.postmarkapp.com/"),
            ),
            batch_limit=500,
            merge_batch_limit=500,
            docs_url="https://anymail.dev/en/stable/esps/postmark/",
            webhook_esp="postmark",
        ),
        Provider(
            key=EspProvider.SENDGRID,
            label="SendGrid",
            backend="anymail.backends.sendgrid.EmailBackend",
            secret_fields=(
                Field("api_key", "API key", required=True),
                _webhook_only(
                    "webhook_verification_key",
                    "Signed Event Webhook verification key",
                    "Optional: the public key SendGrid shows when you turn on signed event "
                    "webhooks; lets Mailpath check their signatures.",
                ),
            ),
            option_fields=(
                _api_url(
                    "https://api.sendgrid.com/v3/",
                    ("https://api.eu.sendgrid.com/v3/", "https://api.eu.sendgrid.com/v3/ (EU)"),
                ),
            ),
            merge_batch_limit=1000,
            docs_url="https://anymail.dev/en/stable/esps/sendgrid/",
            webhook_esp="sendgrid",
        ),
        Provider(
            key=EspProvider.BREVO,
            label="Brevo",
            backend="anymail.backends.brevo.EmailBackend",
            secret_fields=(Field("api_key", "API key (v3)", required=True),),
            option_fields=(_api_url("https://api.brevo.com/v3/"),),
            merge_batch_limit=1000,
            docs_url="https://anymail.dev/en/stable/esps/brevo/",
            webhook_esp="brevo",
        ),
        Provider(
            key=EspProvider.SPARKPOST,
            label="SparkPost",
            backend="anymail.backends.sparkpost.EmailBackend",
            secret_fields=(Field("api_key", "API key", required=True),),
            option_fields=(
                Field("subaccount", "Subaccount ID", help="Only if you send as a subaccount."),
                _api_url(
                    "https://api.sparkpost.com/api/v1/",
                    (
                        "https://api.eu.sparkpost.com/api/v1/",
                        "https://api.eu.sparkpost.com/api/v1/ (EU)",
                    ),
                ),
            ),
            merge_batch_limit=1000,
            docs_url="https://anymail.dev/en/stable/esps/sparkpost/",
            webhook_esp="sparkpost",
        ),
        Provider(
            key=EspProvider.MAILJET,
            label="Mailjet",
            backend="anymail.backends.mailjet.EmailBackend",
            secret_fields=(
                Field("api_key", "API key", required=True),
                Field("secret_key", "Secret key", required=True),
            ),
            option_fields=(_api_url("https://api.mailjet.com/v3.1/"),),
            merge_batch_limit=50,
            docs_url="https://anymail.dev/en/stable/esps/mailjet/",
            webhook_esp="mailjet",
        ),
        Provider(
            key=EspProvider.RESEND,
            label="Resend",
            backend="anymail.backends.resend.EmailBackend",
            secret_fields=(
                Field("api_key", "API key", required=True),
                _webhook_only(
                    "signing_secret",
                    "Webhook signing secret",
                    "From Resend's webhook details (starts with whsec_): lets Mailpath "
                    "check that webhook calls come from Resend.",
                ),
            ),
            option_fields=(_api_url("https://api.resend.com/"),),
            idempotency=True,  # the Idempotency-Key HTTP header, kept for 24 hours
            merge_batch_limit=100,
            docs_url="https://anymail.dev/en/stable/esps/resend/",
            webhook_esp="resend",
        ),
        Provider(
            key=EspProvider.SMTP,
            label="SMTP server",
            backend=SMTP_BACKEND,
            secret_fields=(Field("password", "Password"),),
            option_fields=(
                Field("host", "Host", required=True, help="e.g. smtp.example.com"),
                Field("port", "Port", required=True, kind="int", default=587),
                Field("username", "Username"),
                Field(
                    "security",
                    "Security",
                    required=True,
                    kind="choice",
                    default="starttls",
                    choices=(
                        ("starttls", "STARTTLS (usually port 587)"),
                        ("ssl", "TLS on connect (usually port 465)"),
                        ("none", "None (not recommended)"),
                    ),
                ),
            ),
            docs_url="https://docs.djangoproject.com/en/5.2/topics/email/#smtp-backend",
            build_kwargs=_smtp_kwargs,
        ),
    )
}


# --- reading ------------------------------------------------------------------------------


def current_connection(workspace: Workspace) -> EspConnection:
    """The workspace's connection, or an unsaved sandbox one (reading never writes)."""
    found = EspConnection.objects.for_workspace(workspace).first()
    return found or EspConnection(workspace=workspace)


def connection_settings(workspace: Workspace) -> EspConnection:
    """The workspace's connection row, created (sandbox, with a webhook secret) if missing."""
    connection, _ = EspConnection.objects.for_workspace(workspace).get_or_create(
        workspace=workspace, defaults={"webhook_secret": new_webhook_secret()}
    )
    return connection


def provider_of(connection: EspConnection) -> Provider:
    return PROVIDERS.get(connection.provider, PROVIDERS[EspProvider.SANDBOX])


def credentials_of(connection: EspConnection) -> dict[str, Any]:
    """The decrypted secrets (raises secrets.CredentialsUnreadable if they cannot be)."""
    return secrets.decrypt(connection.credentials)


def stored_secret_names(connection: EspConnection) -> set[str]:
    """Which secrets are set, for "••••  set" on the page; unreadable ones count as unset."""
    try:
        return {name for name, value in credentials_of(connection).items() if value}
    except secrets.CredentialsUnreadable:
        return set()


def is_paused(workspace: Workspace) -> bool:
    return EspConnection.objects.for_workspace(workspace).filter(paused_at__isnull=False).exists()


def sending_hold(workspace: Workspace) -> str | None:
    """Why this workspace's mail must wait (paused by an admin, or the connection is
    failing), or None. The delivery code defers its messages with this reason."""
    connection = EspConnection.objects.for_workspace(workspace).first()
    if connection is None:
        return None
    if connection.paused_at:
        return "Sending is paused on the Sending settings page."
    if connection.status == ConnectionStatus.FAILING:
        label = provider_of(connection).label
        return f"The {label} connection is failing: {connection.last_error}"
    return None


# --- the connection factory ---------------------------------------------------------------


def connection_for(workspace: Workspace) -> tuple[BaseEmailBackend, str]:
    """An email connection (not opened yet) for the workspace and the provider key it
    sends through, from settings.MAILPATH_CONNECTION_FACTORY."""
    return _factory(settings.MAILPATH_CONNECTION_FACTORY)(workspace)


@lru_cache(maxsize=4)
def _factory(path: str) -> Callable[[Workspace], tuple[BaseEmailBackend, str]]:
    try:
        return import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"MAILPATH_CONNECTION_FACTORY={path!r} cannot be imported: {error}"
        ) from error


def build_connection(workspace: Workspace) -> tuple[BaseEmailBackend, str]:
    """The default factory: the workspace's ESP with its decrypted credentials, or the
    installation's EMAIL_BACKEND for the sandbox and workspaces without a connection.
    A paused or failing connection is returned all the same: the caller decides."""
    connection = EspConnection.objects.for_workspace(workspace).first()
    if connection is None or connection.provider == EspProvider.SANDBOX:
        return get_connection(), default_provider_key()
    provider = provider_of(connection)
    values = {**connection.settings, **credentials_of(connection)}
    return get_connection(provider.backend, **provider.backend_kwargs(values)), provider.key


def default_provider_key() -> str:
    """The provider behind settings.EMAIL_BACKEND (an installation-wide ESP), else sandbox."""
    for provider in PROVIDERS.values():
        if provider.key != EspProvider.SANDBOX and provider.backend == settings.EMAIL_BACKEND:
            return provider.key
    return EspProvider.SANDBOX


# --- writing ------------------------------------------------------------------------------


def new_webhook_secret() -> str:
    return token_source.token_urlsafe(32)


def save_connection(
    workspace: Workspace,
    *,
    provider: str,
    secrets_entered: dict[str, str],
    options: dict[str, Any],
    rate_per_second: int,
) -> EspConnection:
    """Store the workspace's ESP choice. A blank secret keeps the stored one (when the
    provider is unchanged); a required secret that is neither entered nor stored is a
    field error. Raises ValidationError (by field) and writes nothing then. Changing the
    provider, a secret or an option sets the status back to "not tested yet"."""
    if provider not in PROVIDERS:
        raise ValidationError({"provider": "Choose one of the listed providers."})
    chosen = PROVIDERS[provider]
    errors: dict[str, list[str]] = {}
    if not isinstance(rate_per_second, int) or not 1 <= rate_per_second <= MAX_RATE_PER_SECOND:
        errors["rate_per_second"] = [f"Enter a whole number from 1 to {MAX_RATE_PER_SECOND}."]

    with transaction.atomic():
        connection = connection_settings(workspace)
        connection = (
            EspConnection.objects.for_workspace(workspace).select_for_update().get(pk=connection.pk)
        )
        kept: dict[str, Any] = {}
        if connection.provider == provider:
            try:
                kept = credentials_of(connection)
            except secrets.CredentialsUnreadable:
                kept = {}
        new_secrets: dict[str, str] = {}
        for f in chosen.secret_fields:
            value = (secrets_entered.get(f.name) or "").strip()
            new_secrets[f.name] = value or kept.get(f.name, "")
            if f.required and not new_secrets[f.name]:
                errors.setdefault(f.name, []).append(f"Enter the {f.label.lower()}.")
        new_secrets = {name: value for name, value in new_secrets.items() if value}
        new_options = _clean_options(chosen, options, errors)
        if errors:
            raise ValidationError(errors)

        changed = (
            connection.provider != provider
            or new_secrets != kept
            or new_options != (connection.settings or {})
        )
        connection.provider = provider
        connection.credentials = secrets.encrypt(new_secrets) if new_secrets else ""
        connection.settings = new_options
        connection.rate_per_second = rate_per_second
        if not connection.webhook_secret:
            connection.webhook_secret = new_webhook_secret()
        if changed:
            connection.status = ConnectionStatus.UNTESTED
            connection.last_error = ""
            connection.checked_at = None
        connection.save()
    return connection


def _clean_options(
    provider: Provider, options: dict[str, Any], errors: dict[str, list[str]]
) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for f in provider.option_fields:
        raw = options.get(f.name, "")
        value = raw.strip() if isinstance(raw, str) else raw
        if value in ("", None):
            if f.required and f.default in ("", None):
                errors.setdefault(f.name, []).append(f"Enter the {f.label.lower()}.")
            elif f.default not in ("", None):
                cleaned[f.name] = f.default
            continue
        if f.kind == "int":
            try:
                value = int(value)
            except (TypeError, ValueError):
                errors.setdefault(f.name, []).append("Enter a whole number.")
                continue
            if not 1 <= value <= 65535:
                errors.setdefault(f.name, []).append("Enter a number from 1 to 65535.")
                continue
        elif f.kind == "url":
            parts = urlsplit(str(value))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.setdefault(f.name, []).append("Enter a full http(s) URL.")
                continue
        elif f.kind == "choice" and value not in dict(f.choices):
            errors.setdefault(f.name, []).append("Choose one of the listed values.")
            continue
        cleaned[f.name] = value
    # Options that are not on the page (an endpoint for tests or a private deployment)
    # are kept when an operator set them through this function.
    for name in ("endpoint_url",):
        if options.get(name):
            cleaned[name] = options[name]
    return cleaned


def is_public_host(host: str) -> bool:
    """False for names and addresses that reach this machine or a private network
    (localhost, 127.0.0.1, 10.x, 192.168.x, link-local, ...): a workspace admin must not
    point Mailpath's outgoing connections there."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host or host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return address.is_global


def pause_sending(workspace: Workspace) -> None:
    connection = connection_settings(workspace)
    EspConnection.objects.for_workspace(workspace).filter(
        pk=connection.pk, paused_at__isnull=True
    ).update(paused_at=timezone.now(), updated_at=timezone.now())


def resume_sending(workspace: Workspace) -> None:
    EspConnection.objects.for_workspace(workspace).update(paused_at=None, updated_at=timezone.now())


def mark_failing(workspace: Workspace, reason: str) -> None:
    """Record that the ESP refused the workspace's credentials or could not be reached.
    An update, not a save: it never overwrites settings being edited at the same time."""
    now = timezone.now()
    updated = EspConnection.objects.for_workspace(workspace).update(
        status=ConnectionStatus.FAILING,
        last_error=(reason or "Unknown error.")[:MAX_ERROR_LENGTH],
        checked_at=now,
        updated_at=now,
    )
    if not updated:
        connection_settings(workspace)
        mark_failing(workspace, reason)


def mark_ok(workspace: Workspace) -> None:
    now = timezone.now()
    updated = EspConnection.objects.for_workspace(workspace).update(
        status=ConnectionStatus.OK, last_error="", checked_at=now, updated_at=now
    )
    if not updated:
        connection_settings(workspace)
        mark_ok(workspace)


# --- test send ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SendCheck:
    ok: bool
    to: str
    provider: str
    error: str = ""


def send_test_email(workspace: Workspace, *, to: str) -> SendCheck:
    """Send a short email through the workspace's connection and record the outcome on it
    (working / failing with the ESP's reason). Never raises for an ESP problem."""
    connection_row = connection_settings(workspace)
    provider = provider_of(connection_row)
    if not to:
        return SendCheck(False, to, provider.key, "Your account has no email address.")
    try:
        connection, provider_key = connection_for(workspace)
        message = EmailMultiAlternatives(
            subject=f"Mailpath test: sending through {provider.label} works",
            body=(
                f"This is a test from Mailpath for the workspace {workspace.name}.\n\n"
                f"It was sent through {provider.label}. If you can read it, the connection "
                "works and the workspace can send email.\n"
            ),
            from_email=workspace_sender(workspace),
            to=[to],
            connection=connection,
        )
        message.metadata = workspace_metadata(workspace)  # type: ignore[attr-defined]
        if not connection.send_messages([message]):
            raise RuntimeError("The ESP accepted no message.")
    except Exception as error:  # any ESP failure is shown and recorded, never a 500
        reason = describe_error(error, connection_row)
        mark_failing(workspace, reason)
        return SendCheck(False, to, provider.key, reason)
    mark_ok(workspace)
    return SendCheck(True, to, provider_key)


def describe_error(error: BaseException, connection: EspConnection | None = None) -> str:
    """The ESP's message for a person to read (Anymail's text carries the API's answer),
    with any stored secret masked in case an ESP echoes one back."""
    if isinstance(error, (secrets.CredentialsUnreadable, AnymailError)):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if connection is not None:
        try:
            stored = credentials_of(connection)
        except secrets.CredentialsUnreadable:
            stored = {}
        for value in stored.values():
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, MASK)
    return text[:MAX_ERROR_LENGTH]


# --- webhooks -----------------------------------------------------------------------------


def webhook_basic_auth(workspace: Workspace, connection: EspConnection) -> tuple[str, str]:
    """The user and password the ESP puts in the webhook URL: the workspace's public id and
    its webhook secret."""
    return str(workspace.public_id), connection.webhook_secret


def webhook_url(workspace: Workspace, connection: EspConnection) -> str | None:
    """The tracking webhook URL to enter at the ESP, with the workspace's basic auth, or
    None for the sandbox and SMTP (no webhooks)."""
    provider = provider_of(connection)
    if not provider.webhook_esp or not connection.webhook_secret:
        return None
    site = urlsplit(settings.SITE_URL)
    user, password = webhook_basic_auth(workspace, connection)
    return (
        f"{site.scheme}://{user}:{password}@{site.netloc}"
        f"{site.path.rstrip('/')}/anymail/{provider.webhook_esp}/tracking/"
    )


# --- key rotation -------------------------------------------------------------------------


def reencrypt_credentials() -> tuple[int, int]:
    """Re-encrypt every workspace's credentials with the first MAILPATH_ENCRYPTION_KEY
    (run after putting a new key first; then the old key can go). Returns (done, unreadable);
    an unreadable row is left as it is and shows its error at the next send."""
    done = unreadable = 0
    rows = EspConnection.all_workspaces.exclude(credentials="").only("pk", "credentials")
    for row in rows.iterator():
        try:
            token = secrets.reencrypt(row.credentials)
        except secrets.CredentialsUnreadable:
            unreadable += 1
            continue
        EspConnection.all_workspaces.filter(pk=row.pk, credentials=row.credentials).update(
            credentials=token
        )
        done += 1
    return done, unreadable

"""Email templates and the brand kit they are dressed in.

A template's body is blocks (a JSON list, see campaigns/rendering/blocks.py), MJML source or
raw HTML. The fields on EmailTemplate are always the last good revision: a save that does
not compile is refused, and every accepted save adds a TemplateRevision.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from contacts.models import unique_name_per_workspace
from workspaces.models import WorkspaceOwned

FONT_STACKS = {
    "helvetica": ("Helvetica / Arial", "Helvetica, Arial, sans-serif"),
    "verdana": ("Verdana", "Verdana, Geneva, sans-serif"),
    "trebuchet": ("Trebuchet MS", "'Trebuchet MS', Helvetica, sans-serif"),
    "tahoma": ("Tahoma", "Tahoma, Verdana, Segoe, sans-serif"),
    "georgia": ("Georgia", "Georgia, Times, 'Times New Roman', serif"),
    "times": ("Times New Roman", "'Times New Roman', Times, serif"),
    "palatino": ("Palatino", "'Palatino Linotype', Palatino, 'Book Antiqua', serif"),
    "courier": ("Courier New", "'Courier New', Courier, monospace"),
    "system": ("System UI", "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"),
}
FONT_CHOICES = [(key, label) for key, (label, _stack) in FONT_STACKS.items()]

SOCIAL_NETWORKS = [
    ("facebook", "Facebook"),
    ("instagram", "Instagram"),
    ("x", "X (Twitter)"),
    ("linkedin", "LinkedIn"),
    ("youtube", "YouTube"),
    ("tiktok", "TikTok"),
    ("pinterest", "Pinterest"),
    ("web", "Website"),
]


class BrandKit(WorkspaceOwned):
    """One per workspace. Templates read it when they compile, so a change here changes
    every template. The sender and postal address live on the Workspace itself."""

    logo = models.BinaryField(null=True, blank=True, editable=False)
    logo_content_type = models.CharField(max_length=40, blank=True)
    logo_width = models.PositiveSmallIntegerField(default=160)
    logo_height = models.PositiveSmallIntegerField(default=0)
    logo_alt = models.CharField(max_length=120, blank=True)
    primary_color = models.CharField(max_length=7, default="#1d4ed8")
    text_color = models.CharField(max_length=7, default="#1f2937")
    background_color = models.CharField(max_length=7, default="#f3f4f6")
    content_background_color = models.CharField(max_length=7, default="#ffffff")
    button_color = models.CharField(max_length=7, default="#1d4ed8")
    button_text_color = models.CharField(max_length=7, default="#ffffff")
    font = models.CharField(max_length=20, choices=FONT_CHOICES, default="helvetica")
    heading_font = models.CharField(max_length=20, choices=FONT_CHOICES, default="helvetica")
    footer_text = models.TextField(blank=True)
    social_links = models.JSONField(default=list, blank=True)

    class Meta(WorkspaceOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="brandkit_one_per_workspace")
        ]

    def __str__(self) -> str:
        return f"Brand kit of workspace {self.workspace_id}"

    @property
    def font_stack(self) -> str:
        return FONT_STACKS.get(self.font, FONT_STACKS["helvetica"])[1]

    @property
    def heading_font_stack(self) -> str:
        return FONT_STACKS.get(self.heading_font, FONT_STACKS["helvetica"])[1]


class TemplateKind(models.TextChoices):
    BLOCKS = "blocks", "Blocks"
    MJML = "mjml", "MJML"
    HTML = "html", "HTML"


class TemplatePurpose(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class EmailTemplate(WorkspaceOwned):
    name = models.CharField(max_length=120)
    purpose = models.CharField(
        max_length=14, choices=TemplatePurpose.choices, default=TemplatePurpose.MARKETING
    )
    kind = models.CharField(max_length=8, choices=TemplateKind.choices, default=TemplateKind.BLOCKS)
    subject = models.CharField(max_length=255)
    preheader = models.CharField(max_length=255, blank=True)
    blocks = models.JSONField(default=list, blank=True)
    source = models.TextField(blank=True)
    starter = models.CharField(max_length=40, blank=True)
    revision_number = models.PositiveIntegerField(default=0)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["name"]
        constraints = [unique_name_per_workspace("emailtemplate")]

    def __str__(self) -> str:
        return self.name

    def content(self) -> dict:
        """The part of the template a revision keeps, as plain data."""
        return {field: getattr(self, field) for field in REVISION_FIELDS}


REVISION_FIELDS = ("kind", "subject", "preheader", "blocks", "source")


class TemplateRevision(WorkspaceOwned):
    template = models.ForeignKey(EmailTemplate, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=TemplateKind.choices)
    subject = models.CharField(max_length=255)
    preheader = models.CharField(max_length=255, blank=True)
    blocks = models.JSONField(default=list, blank=True)
    source = models.TextField(blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="revision_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.template_id} r{self.number}"

    def content(self) -> dict:
        return {field: getattr(self, field) for field in REVISION_FIELDS}


# --- sending ---------------------------------------------------------------------------


class EspProvider(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox (no real email)"
    AMAZON_SES = "amazon_ses", "Amazon SES"
    MAILGUN = "mailgun", "Mailgun"
    POSTMARK = "postmark", "Postmark"
    SENDGRID = "sendgrid", "SendGrid"
    BREVO = "brevo", "Brevo"
    SPARKPOST = "sparkpost", "SparkPost"
    MAILJET = "mailjet", "Mailjet"
    RESEND = "resend", "Resend"
    SMTP = "smtp", "SMTP server"


class ConnectionStatus(models.TextChoices):
    UNTESTED = "untested", "Not tested yet"
    OK = "ok", "Working"
    FAILING = "failing", "Failing"


class EspConnection(WorkspaceOwned):
    """How a workspace hands its email to an ESP. Secrets are stored encrypted
    (campaigns/sending/secrets.py); `settings` holds the non-secret options."""

    provider = models.CharField(
        max_length=12, choices=EspProvider.choices, default=EspProvider.SANDBOX
    )
    credentials = models.TextField(blank=True, help_text="Encrypted JSON of the secrets.")
    settings = models.JSONField(default=dict, blank=True)
    rate_per_second = models.PositiveIntegerField(default=50)
    status = models.CharField(
        max_length=8, choices=ConnectionStatus.choices, default=ConnectionStatus.UNTESTED
    )
    last_error = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    webhook_secret = models.CharField(max_length=64, blank=True)

    class Meta(WorkspaceOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="espconnection_one_per_workspace")
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} for workspace {self.workspace_id}"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    DEFERRED = "deferred", "Deferred"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"
    SKIPPED = "skipped", "Skipped by policy"


class MessageSource(models.TextChoices):
    CAMPAIGN = "campaign", "Campaign"
    JOURNEY = "journey", "Journey"
    TRANSACTIONAL = "transactional", "Transactional"
    TEST = "test", "Test send"


class Message(WorkspaceOwned):
    """The outbox: one email to one contact. `idempotency_key` is unique in the database,
    so enqueueing the same email twice is a no-op."""

    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_email = models.CharField(max_length=254)
    template = models.ForeignKey(
        EmailTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    purpose = models.CharField(
        max_length=14, choices=TemplatePurpose.choices, default=TemplatePurpose.MARKETING
    )
    source = models.CharField(max_length=14, choices=MessageSource.choices)
    source_id = models.CharField(
        max_length=80, blank=True, help_text="The campaign, or the journey version and node."
    )
    variant = models.CharField(max_length=40, blank=True)
    visit_id = models.CharField(max_length=80, blank=True, help_text="The journey visit.")
    idempotency_key = models.CharField(max_length=200, unique=True)
    context = models.JSONField(
        default=dict, blank=True, help_text="The triggering event, for personalisation."
    )
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    subject = models.CharField(max_length=255, blank=True)
    esp = models.CharField(max_length=12, blank=True)
    esp_message_id = models.CharField(max_length=200, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    class Meta(WorkspaceOwned.Meta):
        indexes = [
            models.Index(
                fields=["not_before", "id"],
                name="message_queued",
                condition=models.Q(status="queued"),
            ),
            models.Index(
                fields=["id"],
                name="message_queued_transactional",
                condition=models.Q(status="queued", purpose="transactional"),
            ),
            models.Index(
                fields=["claimed_at"],
                name="message_sending",
                condition=models.Q(status="sending"),
            ),
            models.Index(fields=["workspace", "contact", "-created_at"], name="message_contact"),
            models.Index(fields=["workspace", "source", "source_id"], name="message_source"),
            models.Index(fields=["esp_message_id"], name="message_esp_id"),
        ]

    def __str__(self) -> str:
        return f"{self.to_email}: {self.subject or self.idempotency_key}"


class MessageEventKind(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    DEFERRED = "deferred", "Deferred"
    BOUNCED = "bounced", "Bounced"
    SOFT_BOUNCED = "soft_bounced", "Soft bounce"
    COMPLAINED = "complained", "Marked as spam"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    PREFERENCES = "preferences", "Changed preferences"


class MessageEvent(WorkspaceOwned):
    """Something that happened to a message: from the ESP's webhooks or our own tracking.
    `machine` marks opens by privacy proxies and clicks by link scanners: kept, but left
    out of human metrics."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=14, choices=MessageEventKind.choices)
    occurred_at = models.DateTimeField()
    event_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    machine = models.BooleanField(default=False)
    url = models.TextField(blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta(WorkspaceOwned.Meta):
        indexes = [models.Index(fields=["message", "occurred_at"], name="messageevent_message")]

    def __str__(self) -> str:
        return f"{self.kind} of message {self.message_id}"


class SendingPolicy(WorkspaceOwned):
    """Rules every marketing send of the workspace follows, campaigns and journeys alike.
    Times are in the contact's timezone (the workspace's when the contact has none)."""

    daily_cap = models.PositiveSmallIntegerField(null=True, blank=True, default=1)
    weekly_cap = models.PositiveSmallIntegerField(null=True, blank=True, default=3)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    sunset_days = models.PositiveSmallIntegerField(null=True, blank=True)
    utm_enabled = models.BooleanField(default=False)
    utm_source = models.CharField(max_length=60, default="mailpath", blank=True)
    utm_medium = models.CharField(max_length=60, default="email", blank=True)
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)

    class Meta(WorkspaceOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="sendingpolicy_one_per_workspace")
        ]

    def __str__(self) -> str:
        return f"Sending policy of workspace {self.workspace_id}"


# --- outgoing webhooks -----------------------------------------------------------------

WEBHOOK_EVENTS = (
    "contact.subscribed",
    "contact.unsubscribed",
    "message.bounced",
    "message.complained",
    "message.opened",
    "message.clicked",
    "message.converted",
)


class WebhookEndpoint(WorkspaceOwned):
    """A URL of the workspace's own systems that hears about contact and message events,
    each request signed with HMAC-SHA256 of its body under `secret`."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event names it subscribes to.")
    secret = models.CharField(max_length=64)
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.TextField(blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"


class WebhookDelivery(WorkspaceOwned):
    """One event sent (or being sent) to one endpoint: the delivery log."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40)
    event_key = models.CharField(max_length=200, help_text="Makes repeats of an event one.")
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_key"], name="webhookdelivery_once_per_event"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhookdelivery_due",
                condition=models.Q(status__in=["pending", "retrying"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint_id}"

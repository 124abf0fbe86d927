"""The audience and what it did: contacts, their stages, personas, tags, custom fields,
consent and topics, the event stream, imports and signup forms."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Lower

from workspaces.models import WorkspaceOwned

DEFAULT_STAGES = ["Awareness", "Consideration", "Decision", "Retention", "Advocacy"]
# Sorts "never active" contacts last in the last-activity order; the keyset index uses it.
NEVER_ACTIVE = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


def activity_key() -> Coalesce:
    """The last-activity sort key. Must stay identical to the contact_activity_keyset index."""
    return Coalesce(F("last_activity_at"), Value(NEVER_ACTIVE), output_field=models.DateTimeField())


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_hash(email: str) -> str:
    """What a suppression keeps of an erased address: enough to recognise it, not to read it."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def unique_name_per_workspace(prefix: str) -> models.UniqueConstraint:
    """Names that a workspace cannot repeat, whatever their case."""
    return models.UniqueConstraint(
        "workspace", Lower("name"), name=f"{prefix}_unique_name_per_workspace"
    )


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", "Pending confirmation"
    SUBSCRIBED = "subscribed", "Subscribed"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"


class Source(models.TextChoices):
    API = "api", "API"
    IMPORT = "import", "Import"
    FORM = "form", "Signup form"
    MANUAL = "manual", "Added by hand"
    PREFERENCES = "preferences", "Preference centre"
    SYSTEM = "system", "Mailpath"


class LifecycleStage(WorkspaceOwned):
    """One step of the workspace's customer journey, in the workspace's own order."""

    name = models.CharField(max_length=60)
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=255, blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["position", "id"]
        constraints = [unique_name_per_workspace("stage")]

    def __str__(self) -> str:
        return self.name


class Persona(WorkspaceOwned):
    """A buyer persona: the fictional representative customer a journey is made for."""

    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    goals = models.TextField(blank=True)
    pain_points = models.TextField(blank=True)
    rule = models.JSONField(
        null=True, blank=True, help_text="Segment-style rule that assigns contacts (optional)."
    )

    class Meta(WorkspaceOwned.Meta):
        ordering = ["name"]
        constraints = [unique_name_per_workspace("persona")]

    def __str__(self) -> str:
        return self.name


class Tag(WorkspaceOwned):
    name = models.CharField(max_length=80)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["name"]
        constraints = [unique_name_per_workspace("tag")]

    def __str__(self) -> str:
        return self.name


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Yes / no"
    CHOICE = "choice", "Choice"


class CustomField(WorkspaceOwned):
    """A typed contact attribute; attributes with a definition are validated against it."""

    key = models.SlugField(max_length=64, help_text="Name in the API and in templates.")
    label = models.CharField(max_length=120)
    field_type = models.CharField(max_length=10, choices=FieldType.choices, default=FieldType.TEXT)
    choices = models.JSONField(default=list, blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="custom_field_unique_key")
        ]

    def __str__(self) -> str:
        return self.label


class Topic(WorkspaceOwned):
    """A subscription topic ("Newsletter", "Offers") a contact may opt in or out of."""

    name = models.CharField(max_length=80)
    description = models.CharField(max_length=255, blank=True)
    default_subscribed = models.BooleanField(default=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["name"]
        constraints = [unique_name_per_workspace("topic")]

    def __str__(self) -> str:
        return self.name


class Contact(WorkspaceOwned):
    email = models.CharField(max_length=254)
    # NULL, not "", so the unique constraint only binds contacts that have one.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    locale = models.CharField(max_length=20, blank=True)
    birthday = models.DateField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    status = models.CharField(
        max_length=12, choices=SubscriptionStatus.choices, default=SubscriptionStatus.SUBSCRIBED
    )
    lifecycle_stage = models.ForeignKey(
        LifecycleStage, null=True, blank=True, on_delete=models.PROTECT, related_name="contacts"
    )
    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    marketing_paused_until = models.DateTimeField(
        null=True, blank=True, help_text="The contact asked for no marketing email until then."
    )

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email"], name="contact_unique_email"),
            models.UniqueConstraint(
                fields=["workspace", "external_id"],
                condition=Q(external_id__isnull=False),
                name="contact_unique_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="contact_newest"),
            models.Index(fields=["workspace", "status"], name="contact_status"),
            models.Index(fields=["workspace", "lifecycle_stage"], name="contact_stage"),
            models.Index(
                F("workspace"),
                activity_key().desc(),
                F("id").desc(),
                name="contact_activity_keyset",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class StageChange(WorkspaceOwned):
    """Every move between lifecycle stages, with its time: the raw material of funnels."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(
        LifecycleStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_stage = models.ForeignKey(
        LifecycleStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The stage names at the time, so history survives a stage being renamed or deleted.
    from_name = models.CharField(max_length=60, blank=True)
    to_name = models.CharField(max_length=60, blank=True)
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["contact", "-changed_at"], name="stage_change_contact"),
            models.Index(fields=["workspace", "changed_at"], name="stage_change_time"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.from_stage_id} → {self.to_stage_id}"


class Event(WorkspaceOwned):
    """Something a contact (or a visitor not yet identified) did."""

    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    anonymous_id = models.CharField(max_length=255, blank=True)
    user_id = models.CharField(
        max_length=255, blank=True, help_text="The business's user id, kept until identified."
    )
    name = models.CharField(max_length=200)
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.API)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    message_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "message_id"],
                condition=Q(message_id__isnull=False),
                name="event_unique_message_id",
            )
        ]
        indexes = [
            models.Index(fields=["contact", "-occurred_at"], name="event_contact_time"),
            # INCLUDE contact_id: segment conditions count a contact's events of a name in a
            # window from the index alone (PostgreSQL; other databases ignore INCLUDE).
            models.Index(
                fields=["workspace", "name", "-occurred_at"],
                include=["contact_id"],
                name="event_name_time_contact",
            ),
            models.Index(
                fields=["workspace", "anonymous_id"],
                condition=Q(contact__isnull=True),
                name="event_anonymous",
            ),
            models.Index(
                fields=["workspace", "user_id"],
                condition=Q(contact__isnull=True),
                name="event_unknown_user",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AnonymousId(WorkspaceOwned):
    """A Segment anonymousId that has been tied to a contact by an identify call."""

    anonymous_id = models.CharField(max_length=255)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="anonymous_ids")

    class Meta(WorkspaceOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "anonymous_id"], name="anonymous_id_unique"
            )
        ]

    def __str__(self) -> str:
        return self.anonymous_id


class ConsentKind(models.TextChoices):
    OPT_IN = "opt_in", "Opted in"
    CONFIRMED = "confirmed", "Confirmed by email (double opt-in)"
    OPT_OUT = "opt_out", "Opted out"
    TOPIC_IN = "topic_in", "Opted in to a topic"
    TOPIC_OUT = "topic_out", "Opted out of a topic"


class ConsentRecord(WorkspaceOwned):
    """Proof of an opt-in or opt-out: when, how, from where, and the words shown."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=10, choices=ConsentKind.choices)
    method = models.CharField(max_length=12, choices=Source.choices)
    source = models.CharField(max_length=255, blank=True, help_text="Form, import or API key.")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    text_shown = models.TextField(blank=True)
    occurred_at = models.DateTimeField()

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["contact", "-occurred_at"], name="consent_contact_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.occurred_at:%Y-%m-%d}"


class TopicPreference(WorkspaceOwned):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="topic_preferences")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="preferences")
    subscribed = models.BooleanField()

    class Meta(WorkspaceOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["contact", "topic"], name="topic_preference_unique")
        ]

    def __str__(self) -> str:
        return f"{self.topic_id}: {'in' if self.subscribed else 'out'}"


class SuppressionReason(models.TextChoices):
    ERASED = "erased", "Erased on request"
    BOUNCED = "bounced", "Hard bounce"
    COMPLAINED = "complained", "Spam complaint"
    MANUAL = "manual", "Added by hand"


class Suppression(WorkspaceOwned):
    """An address that must not be added or mailed again, kept only as a hash."""

    email_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=12, choices=SuppressionReason.choices)

    class Meta(WorkspaceOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email_hash"], name="suppression_unique")
        ]

    def __str__(self) -> str:
        return f"{self.email_hash[:12]}… ({self.reason})"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExistingContacts(models.TextChoices):
    UPDATE = "update", "Update them"
    SKIP = "skip", "Skip them"


def import_upload_path(instance: ImportJob, filename: str) -> str:
    return f"imports/{instance.workspace.public_id}/{instance.public_id}.csv"


def import_rejects_path(instance: ImportJob, filename: str) -> str:
    return f"imports/{instance.workspace.public_id}/{instance.public_id}-rejected.csv"


class ImportJob(WorkspaceOwned):
    """One CSV import: the file, the column mapping, the options, progress and the report."""

    file = models.FileField(upload_to=import_upload_path)
    filename = models.CharField(max_length=255)
    encoding = models.CharField(max_length=20, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, help_text="CSV column → contact field.")
    existing = models.CharField(
        max_length=6, choices=ExistingContacts.choices, default=ExistingContacts.UPDATE
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    lifecycle_stage = models.ForeignKey(
        LifecycleStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consent_basis = models.TextField(
        blank=True, help_text="How these people agreed to hear from you; recorded per contact."
    )
    subscribe = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    rejects_file = models.FileField(upload_to=import_rejects_path, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.filename


class SignupForm(WorkspaceOwned):
    """A hosted and embeddable signup form."""

    name = models.CharField(max_length=120)
    title = models.CharField(max_length=200, default="Join our newsletter")
    intro = models.TextField(blank=True)
    fields = models.JSONField(
        default=list,
        help_text='Extra fields: [{"key": "first_name", "label": "…", "required": false}]',
    )
    topics = models.ManyToManyField(Topic, blank=True, related_name="signup_forms")
    consent_text = models.TextField(default="Yes, send me emails. I can unsubscribe at any time.")
    button_label = models.CharField(max_length=60, default="Subscribe")
    double_opt_in = models.BooleanField(default=True)
    success_message = models.TextField(default="Thanks! Check your inbox to confirm.")
    redirect_url = models.URLField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    lifecycle_stage = models.ForeignKey(
        LifecycleStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lead_magnet_url = models.URLField(blank=True, help_text="Sent once the address is confirmed.")
    lead_magnet_subject = models.CharField(max_length=200, blank=True)
    lead_magnet_body = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    submission_count = models.PositiveIntegerField(default=0)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "Dynamic (rules)"
    STATIC = "static", "Static list"


class Segment(WorkspaceOwned):
    """A group of contacts: by rules (dynamic) or by explicit members (static list).
    The rule tree's format is documented in contacts/segments/rules.py."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    rules = models.JSONField(null=True, blank=True)
    member_count = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["name"]
        constraints = [unique_name_per_workspace("segment")]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(WorkspaceOwned):
    """A contact's time in a segment: current while exited_at is empty. Kept after exit, so
    journeys can trigger on entering/leaving and analytics can chart size over time."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="segment_memberships"
    )
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "contact"],
                condition=Q(exited_at__isnull=True),
                name="segment_membership_one_current",
            )
        ]
        indexes = [
            models.Index(fields=["contact", "exited_at"], name="segment_membership_contact"),
            # The members page: current members, newest first, keyset by (entered_at, id).
            models.Index(
                F("segment"),
                F("entered_at").desc(),
                F("id").desc(),
                condition=Q(exited_at__isnull=True),
                name="segment_members_newest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class SegmentSize(WorkspaceOwned):
    """The segment's size once a day (for the size-over-time chart)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="sizes")
    day = models.DateField()
    member_count = models.PositiveIntegerField()

    class Meta(WorkspaceOwned.Meta):
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "day"], name="segment_size_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.day}: {self.member_count}"

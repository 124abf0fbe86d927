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

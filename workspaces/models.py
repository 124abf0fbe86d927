"""Tenancy: agencies, workspaces, who may enter them, and the base of every tenant-owned row."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from .scoping import AllWorkspacesManager, WorkspaceManager
from .timezones import is_known_timezone

RESERVED_SLUGS = frozenset({"new", "admin", "api", "static", "media", "w", "settings"})


def validate_timezone(value: str) -> None:
    if not is_known_timezone(value):
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Paris).")


def validate_slug_not_reserved(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(f"“{value}” is reserved; choose another address.")


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"

    @classmethod
    def rank(cls, role: str) -> int:
        return [cls.VIEWER, cls.EDITOR, cls.ADMIN, cls.OWNER].index(role)

    @classmethod
    def at_least(cls, role: str, minimum: str) -> bool:
        return cls.rank(role) >= cls.rank(minimum)


class Agency(models.Model):
    """An agency runs many client workspaces; its members reach all of them."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True, validators=[validate_slug_not_reserved])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Workspace(models.Model):
    """One business's account: its audience, templates, journeys and numbers."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.PROTECT, related_name="workspaces"
    )
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True, validators=[validate_slug_not_reserved])
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    default_from_name = models.CharField(max_length=120, blank=True)
    default_from_email = models.EmailField(blank=True)
    postal_address = models.TextField(
        blank=True, help_text="Printed in every marketing email's footer, as the law requires."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkspaceOwned(models.Model):
    """Base of every tenant-owned row: workspace key, public id, timestamps, scoped manager."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceManager()
    all_workspaces = AllWorkspacesManager()

    class Meta:
        abstract = True
        default_manager_name = "objects"
        base_manager_name = "all_workspaces"

    def _get_unique_checks(self, *args: Any, **kwargs: Any) -> Any:
        # Validation queries through the scoped manager, so checks that span every
        # workspace are skipped when they only cover generated values (public ids, key
        # prefixes): those need no pre-save query and the database still enforces them.
        unique_checks, date_checks = super()._get_unique_checks(*args, **kwargs)
        generated = {f.name for f in self._meta.concrete_fields if not f.editable}
        unique_checks = [
            (model, fields)
            for model, fields in unique_checks
            if "workspace" in fields or not set(fields) <= generated
        ]
        return unique_checks, date_checks


class MembershipQuerySet(models.QuerySet):
    def reaching(self, workspace: Workspace) -> MembershipQuerySet:
        """Memberships that open this workspace: direct ones and its agency's."""
        scope = Q(workspace=workspace)
        if workspace.agency_id:
            scope |= Q(agency_id=workspace.agency_id)
        return self.filter(scope)


class Membership(models.Model):
    """A user's role in one workspace, or in an agency (then in all its workspaces).

    Not WorkspaceOwned: this is the table that decides who enters a workspace, so it is
    read across workspaces by design (to list every workspace a user can reach).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(workspace__isnull=False, agency__isnull=True)
                    | Q(workspace__isnull=True, agency__isnull=False)
                ),
                name="membership_workspace_xor_agency",
            ),
            models.UniqueConstraint(
                fields=["user", "workspace"],
                condition=Q(workspace__isnull=False),
                name="membership_unique_user_workspace",
            ),
            models.UniqueConstraint(
                fields=["user", "agency"],
                condition=Q(agency__isnull=False),
                name="membership_unique_user_agency",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.workspace or self.agency} · {self.role}"


class Invitation(WorkspaceOwned):
    """An emailed invitation to join a workspace; accepted through a signed, expiring link."""

    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.workspace_id}"

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class ScopedApiKeyManager(BaseAPIKeyManager, WorkspaceManager):
    pass


class AllWorkspacesApiKeyManager(BaseAPIKeyManager, AllWorkspacesManager):
    pass


class ApiKey(WorkspaceOwned, AbstractAPIKey):
    """A workspace's secret key. Only its prefix and a hash are stored; the key is shown once."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedApiKeyManager()
    all_workspaces = AllWorkspacesApiKeyManager()

    class Meta(WorkspaceOwned.Meta, AbstractAPIKey.Meta):
        ordering = ["-created"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class SandboxMessage(WorkspaceOwned):
    """An email the sandbox backend kept instead of sending, shown in the Sandbox inbox."""

    from_email = models.CharField(max_length=320)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)

    class Meta(WorkspaceOwned.Meta):
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

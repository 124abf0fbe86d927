"""Operators' admin for tenancy. Tenant-owned models are listed across all workspaces
through `all_workspaces`, filterable by workspace and agency."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_api_key.admin import APIKey as LibraryApiKey

from .models import (
    Agency,
    ApiKey,
    Invitation,
    Membership,
    SandboxMessage,
    Workspace,
    WorkspaceOwned,
)

# The library's own concrete key model is unused: keys are ApiKey, one workspace each.
if admin.site.is_registered(LibraryApiKey):
    admin.site.unregister(LibraryApiKey)


class WorkspaceOwnedAdmin(admin.ModelAdmin):
    """Base admin for tenant-owned models: reads every workspace, deliberately."""

    list_filter: Any = ("workspace__agency", "workspace")
    list_select_related = ("workspace",)
    readonly_fields: Any = ("public_id", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.model.all_workspaces.all()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.remote_field.model
        if issubclass(related, WorkspaceOwned):
            kwargs.setdefault("queryset", related.all_workspaces.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("public_id", "created_at")


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "agency", "timezone", "default_from_email", "created_at")
    list_filter = ("agency", "timezone")
    search_fields = ("name", "slug", "default_from_email")
    readonly_fields = ("public_id", "created_at", "updated_at")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "workspace", "agency", "role", "created_at")
    list_filter = ("role", "agency", "workspace")
    search_fields = ("user__email", "workspace__name", "agency__name")
    autocomplete_fields = ("user",)
    list_select_related = ("user", "workspace", "agency")


@admin.register(Invitation)
class InvitationAdmin(WorkspaceOwnedAdmin):
    list_display = ("email", "workspace", "role", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("role", "workspace__agency", "workspace")
    search_fields = ("email", "workspace__name")


@admin.register(ApiKey)
class ApiKeyAdmin(WorkspaceOwnedAdmin):
    list_display = ("name", "prefix", "workspace", "created", "last_used_at", "revoked")
    list_filter = ("revoked", "workspace__agency", "workspace")
    search_fields = ("name", "prefix", "workspace__name")
    readonly_fields = (
        "public_id",
        "prefix",
        "created",
        "last_used_at",
        "revoked_at",
        "created_by",
        "created_at",
        "updated_at",
    )
    fields = ("workspace", "name", "revoked", "expiry_date", *readonly_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created in the workspace, where the secret is shown once

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if obj.revoked and obj.revoked_at is None:
            obj.revoked_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(SandboxMessage)
class SandboxMessageAdmin(WorkspaceOwnedAdmin):
    list_display = ("subject", "workspace", "from_email", "created_at")
    search_fields = ("subject", "from_email", "workspace__name")
    readonly_fields = tuple(f.name for f in SandboxMessage._meta.fields if f.name not in {"id"})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

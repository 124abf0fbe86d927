"""Operators' admin for brand kits and templates, across workspaces.

Templates and revisions are created and edited in the workspace, where every save is
compiled and kept as a revision; here an operator can look, rename, archive and fix a
brand kit, but not rewrite a template's content behind its revision history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Length
from django.http import HttpRequest
from django.utils import timezone

from workspaces.admin import WorkspaceOwnedAdmin

from . import services
from .models import (
    BrandKit,
    EmailTemplate,
    EspConnection,
    Message,
    MessageEvent,
    SendingPolicy,
    TemplateRevision,
    WebhookDelivery,
    WebhookEndpoint,
)

BY_WORKSPACE = ("workspace__agency", "workspace")
CONTENT_FIELDS = ("kind", "subject", "preheader", "blocks", "source")
LOGO_FIELDS = ("has_logo", "logo_type", "logo_size", "logo_width", "logo_height", "logo_alt")


class BrandKitForm(forms.ModelForm):
    """Checks changed fields the way the brand kit page does (colours, fonts, links)."""

    class Meta:
        model = BrandKit
        fields = ("workspace", *services.BRAND_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        changed = {
            name: cleaned[name]
            for name in self.changed_data
            if name in services.BRAND_FIELDS and name in cleaned
        }
        try:
            cleaned.update(services.clean_brand_fields(changed))
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, messages in error.message_dict.items():
                    self.add_error(field if field in self.fields else None, messages)
            else:
                self.add_error(None, error)
        return cleaned


@admin.register(BrandKit)
class BrandKitAdmin(WorkspaceOwnedAdmin):
    form = BrandKitForm
    list_display = ("workspace", "has_logo", "logo_type", "primary_color", "font", "updated_at")
    list_filter = ("font", *BY_WORKSPACE)
    search_fields = ("workspace__name", "workspace__slug")
    readonly_fields = (
        "public_id", "has_logo", "logo_type", "logo_size", "logo_height", "created_at",
        "updated_at",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("workspace", "public_id")}),
        ("Logo", {"fields": LOGO_FIELDS}),
        ("Colours", {"fields": services.COLOR_FIELDS}),
        ("Type and footer", {"fields": ("font", "heading_font", "footer_text", "social_links")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The logo's bytes stay in the database; the list needs only whether there is one.
        return super().get_queryset(request).defer("logo").annotate(logo_bytes=Length("logo"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # One kit per workspace, created with it: its workspace never changes.
        return (*self.readonly_fields, "workspace") if obj else self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created on first use by services.brand_kit_for

    @admin.display(boolean=True, description="logo")
    def has_logo(self, kit: BrandKit) -> bool:
        return bool(getattr(kit, "logo_bytes", None))

    @admin.display(description="logo type")
    def logo_type(self, kit: BrandKit) -> str:
        return kit.logo_content_type or "-"

    @admin.display(description="logo size")
    def logo_size(self, kit: BrandKit) -> str:
        size = getattr(kit, "logo_bytes", None)
        return f"{size / 1024:.1f} KB" if size else "-"


class TemplateRevisionInline(admin.TabularInline):
    model = TemplateRevision
    fields = ("number", "note", "subject", "kind", "created_by", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-number",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return TemplateRevision.all_workspaces.select_related("created_by")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EmailTemplate)
class EmailTemplateAdmin(WorkspaceOwnedAdmin):
    list_display = (
        "name", "workspace", "kind", "purpose", "revision_number", "archived_at", "updated_at",
    )  # fmt: skip
    list_filter = ("kind", "purpose", "starter", ("archived_at", admin.EmptyFieldListFilter),
                   *BY_WORKSPACE)  # fmt: skip
    search_fields = ("name",)
    inlines = (TemplateRevisionInline,)
    readonly_fields = (
        "public_id", "workspace", "starter", "revision_number", *CONTENT_FIELDS, "created_at",
        "updated_at",
    )  # fmt: skip
    fields = ("name", "purpose", "archived_at", *readonly_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created in the workspace, so the first revision is recorded


@admin.register(TemplateRevision)
class TemplateRevisionAdmin(WorkspaceOwnedAdmin):
    list_display = ("template", "number", "note", "created_by", "workspace", "created_at")
    list_filter = ("kind", *BY_WORKSPACE)
    search_fields = ("template__name", "note")
    list_select_related = ("template", "workspace", "created_by")
    raw_id_fields = ("template",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- sending ---------------------------------------------------------------------------


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    fields = ("kind", "occurred_at", "machine", "url", "user_agent", "event_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("occurred_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return MessageEvent.all_workspaces.all()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(WorkspaceOwnedAdmin):
    """The outbox, read-only: a message's state changes only through the pipeline."""

    list_display = ("to_email", "subject", "status", "source", "esp", "sent_at", "workspace")
    list_filter = ("status", "source", "purpose", "esp", *BY_WORKSPACE)
    search_fields = ("to_email", "idempotency_key", "esp_message_id", "subject")
    list_select_related = ("workspace",)
    inlines = (MessageEventInline,)
    raw_id_fields = ("contact", "template")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MessageEvent)
class MessageEventAdmin(WorkspaceOwnedAdmin):
    list_display = ("message", "kind", "machine", "occurred_at", "workspace")
    list_filter = ("kind", "machine", *BY_WORKSPACE)
    search_fields = ("message__to_email", "event_id")
    raw_id_fields = ("message",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SendingPolicy)
class SendingPolicyAdmin(WorkspaceOwnedAdmin):
    list_display = ("workspace", "daily_cap", "weekly_cap", "quiet_start", "quiet_end")


@admin.register(EspConnection)
class EspConnectionAdmin(WorkspaceOwnedAdmin):
    """Status, errors and pausing; the credentials and webhook secret are never shown here
    (they are entered, encrypted, on the workspace's Sending settings page)."""

    list_display = ("workspace", "provider", "status", "paused_at", "checked_at", "updated_at")
    list_filter = ("provider", "status", ("paused_at", admin.EmptyFieldListFilter), *BY_WORKSPACE)
    search_fields = ("workspace__name", "workspace__slug", "last_error")
    fields = (
        "workspace", "public_id", "provider", "settings", "rate_per_second", "status",
        "last_error", "checked_at", "paused_at", "has_credentials", "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = (
        "workspace", "public_id", "provider", "settings", "status", "last_error", "checked_at",
        "has_credentials", "created_at", "updated_at",
    )  # fmt: skip
    actions = ("pause_sending", "resume_sending")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created by the workspace's Sending settings page

    @admin.display(boolean=True, description="credentials stored")
    def has_credentials(self, connection: EspConnection) -> bool:
        return bool(connection.credentials)

    @admin.action(description="Pause sending of the selected workspaces")
    def pause_sending(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        updated = queryset.filter(paused_at__isnull=True).update(paused_at=timezone.now())
        self.message_user(request, f"Paused {updated} workspace(s).")

    @admin.action(description="Resume sending of the selected workspaces")
    def resume_sending(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        updated = queryset.filter(paused_at__isnull=False).update(paused_at=None)
        self.message_user(request, f"Resumed {updated} workspace(s).")


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ("event", "status", "attempts", "response_status", "error", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return WebhookDelivery.all_workspaces.all()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WorkspaceOwnedAdmin):
    list_display = ("url", "workspace", "active", "consecutive_failures", "created_at")
    list_filter = ("active", *BY_WORKSPACE)
    search_fields = ("url",)
    exclude = ("secret",)
    inlines = (WebhookDeliveryInline,)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(WorkspaceOwnedAdmin):
    list_display = ("event", "endpoint", "status", "attempts", "response_status", "created_at")
    list_filter = ("status", "event", *BY_WORKSPACE)
    raw_id_fields = ("endpoint",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

"""Operators' admin for contacts and their data, across workspaces."""

from __future__ import annotations

from django.contrib import admin

from workspaces.admin import WorkspaceOwnedAdmin

from .models import (
    AnonymousId,
    ConsentRecord,
    Contact,
    CustomField,
    Event,
    ImportJob,
    LifecycleStage,
    Persona,
    Segment,
    SegmentMembership,
    SegmentSize,
    SignupForm,
    StageChange,
    Suppression,
    Tag,
    Topic,
    TopicPreference,
)

BY_WORKSPACE = ("workspace__agency", "workspace")


@admin.register(Contact)
class ContactAdmin(WorkspaceOwnedAdmin):
    list_display = ("email", "first_name", "last_name", "status", "workspace", "created_at")
    list_filter = ("status", "source", *BY_WORKSPACE)
    search_fields = ("email", "external_id", "first_name", "last_name")
    raw_id_fields = ("lifecycle_stage", "persona", "tags")
    show_full_result_count = False  # counting millions of rows on every page is slow


@admin.register(Event)
class EventAdmin(WorkspaceOwnedAdmin):
    list_display = ("name", "contact", "occurred_at", "revenue", "currency", "workspace")
    list_filter = ("source", *BY_WORKSPACE)
    search_fields = ("name", "message_id", "anonymous_id", "user_id")
    raw_id_fields = ("contact",)
    show_full_result_count = False


@admin.register(StageChange)
class StageChangeAdmin(WorkspaceOwnedAdmin):
    list_display = ("contact", "from_stage", "to_stage", "changed_at", "source")
    list_filter = ("source", *BY_WORKSPACE)
    search_fields = ("contact__email",)
    raw_id_fields = ("contact", "from_stage", "to_stage")


@admin.register(ConsentRecord)
class ConsentRecordAdmin(WorkspaceOwnedAdmin):
    list_display = ("contact", "kind", "method", "source", "occurred_at")
    list_filter = ("kind", "method", *BY_WORKSPACE)
    search_fields = ("contact__email", "source")
    raw_id_fields = ("contact", "topic")


@admin.register(ImportJob)
class ImportJobAdmin(WorkspaceOwnedAdmin):
    list_display = ("filename", "status", "processed_rows", "rejected_count", "workspace")
    list_filter = ("status", *BY_WORKSPACE)
    search_fields = ("filename",)
    raw_id_fields = ("lifecycle_stage", "persona", "tags", "created_by")


@admin.register(SignupForm)
class SignupFormAdmin(WorkspaceOwnedAdmin):
    list_display = ("name", "workspace", "double_opt_in", "is_active", "submission_count")
    list_filter = ("is_active", "double_opt_in", *BY_WORKSPACE)
    search_fields = ("name",)
    raw_id_fields = ("lifecycle_stage", "persona", "tags", "topics")


class NamedAdmin(WorkspaceOwnedAdmin):
    list_display = ("name", "workspace", "created_at")
    search_fields = ("name", "workspace__name")


for model in (LifecycleStage, Persona, Tag, Topic):
    admin.register(model)(type(f"{model.__name__}Admin", (NamedAdmin,), {}))


@admin.register(CustomField)
class CustomFieldAdmin(WorkspaceOwnedAdmin):
    list_display = ("label", "key", "field_type", "workspace")
    list_filter = ("field_type", *BY_WORKSPACE)
    search_fields = ("label", "key")


@admin.register(TopicPreference)
class TopicPreferenceAdmin(WorkspaceOwnedAdmin):
    list_display = ("contact", "topic", "subscribed", "updated_at")
    list_filter = ("subscribed", *BY_WORKSPACE)
    search_fields = ("contact__email",)
    raw_id_fields = ("contact", "topic")


@admin.register(AnonymousId)
class AnonymousIdAdmin(WorkspaceOwnedAdmin):
    list_display = ("anonymous_id", "contact", "workspace")
    search_fields = ("anonymous_id", "contact__email")
    raw_id_fields = ("contact",)


@admin.register(Suppression)
class SuppressionAdmin(WorkspaceOwnedAdmin):
    list_display = ("email_hash", "reason", "workspace", "created_at")
    list_filter = ("reason", *BY_WORKSPACE)
    search_fields = ("email_hash",)


@admin.register(Segment)
class SegmentAdmin(WorkspaceOwnedAdmin):
    list_display = ("name", "kind", "member_count", "refreshed_at", "workspace")
    list_filter = ("kind", *BY_WORKSPACE)
    search_fields = ("name",)


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(WorkspaceOwnedAdmin):
    list_display = ("segment", "contact", "entered_at", "exited_at")
    list_filter = BY_WORKSPACE
    search_fields = ("contact__email", "segment__name")
    raw_id_fields = ("segment", "contact")
    show_full_result_count = False


@admin.register(SegmentSize)
class SegmentSizeAdmin(WorkspaceOwnedAdmin):
    list_display = ("segment", "day", "member_count")
    list_filter = BY_WORKSPACE
    search_fields = ("segment__name",)

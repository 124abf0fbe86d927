"""Audience settings: lifecycle stages, personas, custom fields, tags and topics."""

from django.urls import path

from . import settings_views as views

urlpatterns = [
    path("settings/audience/", views.stages, name="audience_stages"),
    path("settings/audience/stages/new/", views.stage_create, name="audience_stage_create"),
    path(
        "settings/audience/stages/<uuid:stage_id>/rename/",
        views.stage_rename,
        name="audience_stage_rename",
    ),
    path(
        "settings/audience/stages/<uuid:stage_id>/move/",
        views.stage_move,
        name="audience_stage_move",
    ),
    path(
        "settings/audience/stages/<uuid:stage_id>/delete/",
        views.stage_delete,
        name="audience_stage_delete",
    ),
    path("settings/audience/personas/", views.personas, name="audience_personas"),
    path("settings/audience/personas/new/", views.persona_create, name="audience_persona_create"),
    path(
        "settings/audience/personas/<uuid:persona_id>/",
        views.persona_edit,
        name="audience_persona_edit",
    ),
    path(
        "settings/audience/personas/<uuid:persona_id>/delete/",
        views.persona_delete,
        name="audience_persona_delete",
    ),
    path("settings/audience/fields/", views.fields, name="audience_fields"),
    path("settings/audience/fields/new/", views.field_create, name="audience_field_create"),
    path(
        "settings/audience/fields/<uuid:field_id>/",
        views.field_edit,
        name="audience_field_edit",
    ),
    path(
        "settings/audience/fields/<uuid:field_id>/delete/",
        views.field_delete,
        name="audience_field_delete",
    ),
    path("settings/audience/tags/", views.tags, name="audience_tags"),
    path(
        "settings/audience/tags/<uuid:tag_id>/rename/",
        views.tag_rename,
        name="audience_tag_rename",
    ),
    path("settings/audience/tags/<uuid:tag_id>/merge/", views.tag_merge, name="audience_tag_merge"),
    path(
        "settings/audience/tags/<uuid:tag_id>/delete/",
        views.tag_delete,
        name="audience_tag_delete",
    ),
    path("settings/audience/topics/", views.topics, name="audience_topics"),
    path("settings/audience/topics/new/", views.topic_create, name="audience_topic_create"),
    path(
        "settings/audience/topics/<uuid:topic_id>/",
        views.topic_edit,
        name="audience_topic_edit",
    ),
    path(
        "settings/audience/topics/<uuid:topic_id>/delete/",
        views.topic_delete,
        name="audience_topic_delete",
    ),
]

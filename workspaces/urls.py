"""Workspace pages, mounted under /w/<workspace_slug>/ by config.urls."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("settings/", views.settings_general, name="settings"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/invite/", views.member_invite, name="member_invite"),
    path("settings/members/<uuid:member_id>/role/", views.member_role, name="member_role"),
    path("settings/members/<uuid:member_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "settings/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/new/", views.api_key_create, name="api_key_create"),
    path("settings/api-keys/<uuid:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("sandbox/", views.sandbox_inbox, name="sandbox_inbox"),
    path("sandbox/<uuid:message_id>/", views.sandbox_message, name="sandbox_message"),
]

"""Outgoing webhooks, under /w/<workspace_slug>/settings/webhooks/ (included by campaigns.urls)."""

from django.urls import path

from . import outgoing_views as views

urlpatterns = [
    path("settings/webhooks/", views.webhook_list, name="webhook_list"),
    path("settings/webhooks/new/", views.webhook_new, name="webhook_new"),
    path("settings/webhooks/<uuid:webhook_id>/", views.webhook_edit, name="webhook_edit"),
    path(
        "settings/webhooks/<uuid:webhook_id>/delete/",
        views.webhook_delete,
        name="webhook_delete",
    ),
    path("settings/webhooks/<uuid:webhook_id>/test/", views.webhook_test, name="webhook_test"),
    path(
        "settings/webhooks/<uuid:webhook_id>/secret/",
        views.webhook_rotate_secret,
        name="webhook_rotate_secret",
    ),
    path(
        "settings/webhooks/<uuid:webhook_id>/deliveries/",
        views.webhook_deliveries,
        name="webhook_deliveries",
    ),
    path(
        "settings/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/retry/",
        views.webhook_retry,
        name="webhook_retry",
    ),
]

"""The contact list and profile pages, under /w/<workspace_slug>/contacts/."""

from django.urls import path

from . import views

urlpatterns = [
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/count/", views.contact_count, name="contact_count"),
    path("contacts/bulk/", views.contact_bulk, name="contact_bulk"),
    path("contacts/new/", views.contact_create, name="contact_create"),
    path("contacts/<uuid:contact_id>/", views.contact_profile, name="contact_profile"),
    path("contacts/<uuid:contact_id>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<uuid:contact_id>/stage/", views.contact_stage, name="contact_stage"),
    path("contacts/<uuid:contact_id>/persona/", views.contact_persona, name="contact_persona"),
    path("contacts/<uuid:contact_id>/tags/", views.contact_tags, name="contact_tags"),
    path(
        "contacts/<uuid:contact_id>/subscription/",
        views.contact_subscription,
        name="contact_subscription",
    ),
    path("contacts/<uuid:contact_id>/topics/", views.contact_topic, name="contact_topic"),
    path(
        "contacts/<uuid:contact_id>/timeline/",
        views.contact_timeline_page,
        name="contact_timeline",
    ),
    path(
        "contacts/<uuid:contact_id>/data.json",
        views.contact_data_export,
        name="contact_data_export",
    ),
    path("contacts/<uuid:contact_id>/erase/", views.contact_erase, name="contact_erase"),
]

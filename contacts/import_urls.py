"""CSV import and export, under /w/<workspace_slug>/contacts/."""

from django.urls import path

from . import import_views as views

urlpatterns = [
    path("contacts/export.csv", views.contact_export, name="contact_export"),
    path("contacts/import/", views.import_list, name="contact_import"),
    path("contacts/import/<uuid:import_id>/", views.import_detail, name="import_detail"),
    path("contacts/import/<uuid:import_id>/columns/", views.import_map, name="import_map"),
    path("contacts/import/<uuid:import_id>/options/", views.import_options, name="import_options"),
    path("contacts/import/<uuid:import_id>/preview/", views.import_preview, name="import_preview"),
    path("contacts/import/<uuid:import_id>/run/", views.import_run, name="import_run"),
    path(
        "contacts/import/<uuid:import_id>/rejected.csv",
        views.import_rejects,
        name="import_rejects",
    ),
]

"""Template pages, under /w/<workspace_slug>/templates/ (included by campaigns.urls)."""

from django.urls import path

from . import template_views as views

TEMPLATE = "templates/<uuid:template_id>/"

urlpatterns = [
    path("templates/", views.template_list, name="template_list"),
    path("templates/gallery/", views.template_gallery, name="template_gallery"),
    path("templates/gallery/use/", views.template_gallery_use, name="template_gallery_use"),
    path("templates/new/", views.template_create_blank, name="template_create_blank"),
    path(TEMPLATE, views.template_edit, name="template_edit"),
    path(f"{TEMPLATE}preview/", views.template_preview, name="template_preview"),
    path(f"{TEMPLATE}blocks/", views.template_blocks, name="template_blocks"),
    path(f"{TEMPLATE}view/", views.template_preview_page, name="template_preview_page"),
    path(f"{TEMPLATE}send-test/", views.template_send_test, name="template_send_test"),
    path(f"{TEMPLATE}revisions/", views.template_revisions, name="template_revisions"),
    path(
        f"{TEMPLATE}revisions/<uuid:revision_id>/",
        views.template_revision,
        name="template_revision",
    ),
    path(
        f"{TEMPLATE}revisions/<uuid:revision_id>/restore/",
        views.template_revision_restore,
        name="template_revision_restore",
    ),
    path(f"{TEMPLATE}duplicate/", views.template_duplicate, name="template_duplicate"),
    path(f"{TEMPLATE}archive/", views.template_archive, name="template_archive"),
    path(f"{TEMPLATE}delete/", views.template_delete, name="template_delete"),
]

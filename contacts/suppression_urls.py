"""The suppression list, under /w/<workspace_slug>/suppressions/ (contacts.urls)."""

from django.urls import path

from . import suppression_views as views

urlpatterns = [
    path("suppressions/", views.suppression_list, name="suppression_list"),
    path("suppressions/check/", views.suppression_check, name="suppression_check"),
    path("suppressions/remove/", views.suppression_remove, name="suppression_remove"),
    path("suppressions/import/", views.suppression_import, name="suppression_import"),
]

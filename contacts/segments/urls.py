"""Segment pages, under /w/<workspace_slug>/segments/ (included by contacts.urls)."""

from django.urls import path

from . import views

urlpatterns = [
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_create, name="segment_create"),
    path("segments/builder/", views.segment_builder, name="segment_builder"),
    path("segments/<uuid:segment_id>/", views.segment_detail, name="segment_detail"),
    path("segments/<uuid:segment_id>/edit/", views.segment_edit, name="segment_edit"),
    path("segments/<uuid:segment_id>/delete/", views.segment_delete, name="segment_delete"),
    path("segments/<uuid:segment_id>/refresh/", views.segment_refresh, name="segment_refresh"),
    path(
        "segments/<uuid:segment_id>/members/add/",
        views.segment_members_add,
        name="segment_members_add",
    ),
    path(
        "segments/<uuid:segment_id>/members/<uuid:contact_id>/remove/",
        views.segment_member_remove,
        name="segment_member_remove",
    ),
]

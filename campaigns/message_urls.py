"""The message log and deliverability pages, under /w/<workspace_slug>/ (campaigns.urls)."""

from django.urls import path

from . import message_views as views

urlpatterns = [
    path("messages/", views.message_list, name="message_list"),
    path("messages/<uuid:email_id>/", views.message_detail, name="message_detail"),
    path("deliverability/", views.deliverability, name="deliverability"),
]

"""Sending settings, under /w/<workspace_slug>/settings/sending/ (included by campaigns.urls)."""

from django.urls import path

from . import esp_views as views

urlpatterns = [
    path("settings/sending/", views.esp_settings, name="esp_settings"),
    path("settings/sending/test/", views.esp_send_test, name="esp_send_test"),
    path("settings/sending/pause/", views.esp_pause, name="esp_pause"),
    path("settings/sending/resume/", views.esp_resume, name="esp_resume"),
]

"""Public files that emails load, mounted at the site root by config.urls (no login)."""

from django.urls import path

from . import public_views

urlpatterns = [
    path("brand/<uuid:kit_id>/logo", public_views.brand_logo, name="brand_logo"),
]

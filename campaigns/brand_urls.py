"""The brand kit page, mounted under /w/<workspace_slug>/ by campaigns.urls."""

from django.urls import path

from . import brand_views

urlpatterns = [
    path("templates/brand/", brand_views.brand_kit, name="brand_kit"),
    path("templates/brand/logo/", brand_views.brand_logo_upload, name="brand_logo_upload"),
    path("templates/brand/logo/remove/", brand_views.brand_logo_remove, name="brand_logo_remove"),
]

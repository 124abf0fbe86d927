"""Root URLs: wiring only. Workspace pages live under /w/<workspace_slug>/, the REST API
under /api/v1/ (API key) and /api/v1/w/<workspace_slug>/ (API key or signed-in user), the
Segment-compatible ingest API under /v1/, public signup forms under /f/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import api_urls

# The schema describes the key-authenticated API once; /api/v1/w/<workspace>/ mirrors it.
SCHEMA_URLS = [
    path("api/v1/", include((api_urls.urlpatterns, "api"), namespace="api")),
    path("v1/", include("contacts.ingest_urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(patterns=SCHEMA_URLS), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include((api_urls.urlpatterns, "api"), namespace="api")),
    path(
        "api/v1/w/<slug:workspace_slug>/",
        include((api_urls.urlpatterns, "api"), namespace="workspace-api"),
    ),
    path("v1/", include("contacts.ingest_urls")),
    path("anymail/", include("campaigns.webhook_urls")),
    path("w/<slug:workspace_slug>/", include("workspaces.urls")),
    path("w/<slug:workspace_slug>/", include("contacts.urls")),
    path("w/<slug:workspace_slug>/", include("campaigns.urls")),
    path("", include("contacts.public_urls")),
    path("", include("campaigns.public_urls")),
    path("", include("campaigns.tracking_urls")),
    path("", include("workspaces.account_urls")),
]

"""Template and brand kit pages, mounted under /w/<workspace_slug>/ by config.urls."""

from django.urls import include, path

urlpatterns = [
    path("", include("campaigns.brand_urls")),
    path("", include("campaigns.template_urls")),
    path("", include("campaigns.esp_urls")),
    path("", include("campaigns.message_urls")),
    path("", include("campaigns.outgoing_urls")),
    path("", include("campaigns.policy_urls")),
]

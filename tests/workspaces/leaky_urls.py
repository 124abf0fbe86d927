"""A deliberately unscoped view, to prove the outsider walk catches one."""

from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as real_urlpatterns
from workspaces.models import ApiKey


def leaky_key_detail(request, workspace_slug, key_id):
    api_key = ApiKey.all_workspaces.get(public_id=key_id)  # the bug: no for_workspace()
    return HttpResponse(f"{api_key.name} {api_key.public_id}")


urlpatterns = [
    path("w/<slug:workspace_slug>/leaky-keys/<uuid:key_id>/", leaky_key_detail, name="leaky"),
    *real_urlpatterns,
]

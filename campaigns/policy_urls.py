"""The sending policy page, mounted under /w/<workspace_slug>/ by campaigns.urls."""

from django.urls import path

from . import policy_views

urlpatterns = [
    path("settings/sending/policy/", policy_views.sending_policy, name="sending_policy"),
]

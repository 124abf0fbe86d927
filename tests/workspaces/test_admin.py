"""Operators' admin: every model registered, every list page loads with its filters."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model

from tests.factories import (
    ApiKeyFactory,
    InvitationFactory,
    MembershipFactory,
    SandboxMessageFactory,
)

pytestmark = pytest.mark.django_db
OUR_APPS = {"workspaces", "contacts", "campaigns", "journeys", "analytics"}


def test_every_model_of_ours_is_in_admin():
    ours = [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]
    assert ours
    assert [m.__name__ for m in ours if not admin.site.is_registered(m)] == []


def test_every_list_page_loads_with_search_and_workspace_filter(client, workspace_a, workspace_b):
    for workspace in (workspace_a, workspace_b):
        ApiKeyFactory(workspace=workspace)
        InvitationFactory(workspace=workspace)
        SandboxMessageFactory(workspace=workspace)
        MembershipFactory(workspace=workspace)
    staff = get_user_model().objects.create_superuser("op", "op@example.com", "pw-long-enough")
    client.force_login(staff)
    for model in admin.site._registry:
        if model._meta.app_label not in OUR_APPS:
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url
        assert client.get(url, {"q": "a"}).status_code == 200, url
        if any(f.name == "workspace" for f in model._meta.fields):
            response = client.get(url, {"workspace__id__exact": workspace_a.pk})
            assert response.status_code == 200, url
            rows = model._base_manager.filter(workspace=workspace_a)
            assert response.context["cl"].result_count == rows.count(), url

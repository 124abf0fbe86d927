"""The gallery through the API: list the starters, create a template from one."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.gallery import STARTERS
from campaigns.models import EmailTemplate
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(workspace_a):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory(workspace=workspace_a).secret}")
    return client


def test_lists_every_starter_with_its_stage(api):
    response = api.get("/api/v1/templates/starters/")
    assert response.status_code == 200
    assert [s["key"] for s in response.json()] == [s.key for s in STARTERS]
    assert {"key", "name", "stage", "purpose", "subject"} <= set(response.json()[0])


def test_creates_a_template_from_a_starter_with_a_free_name(api, workspace_a):
    first = api.post("/api/v1/templates/from-starter/", {"starter": "welcome"}, format="json")
    second = api.post("/api/v1/templates/from-starter/", {"starter": "welcome"}, format="json")
    assert first.status_code == second.status_code == 201
    assert (first.json()["name"], second.json()["name"]) == ("Welcome", "Welcome 2")
    assert first.json()["starter"] == "welcome" and first.json()["revision"] == 1
    assert EmailTemplate.objects.for_workspace(workspace_a).count() == 2


def test_unknown_starter_is_a_field_error_and_creates_nothing(api, workspace_a):
    response = api.post("/api/v1/templates/from-starter/", {"starter": "nope"}, format="json")
    assert response.status_code == 400
    assert "starter" in response.json()
    assert not EmailTemplate.objects.for_workspace(workspace_a).exists()

"""API keys: created and shown once, listed by prefix, revoked; and how the API reads them."""

from __future__ import annotations

import base64
import re

import pytest
from django.urls import reverse

from tests.factories import ApiKeyFactory
from workspaces.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(admin_client_a, workspace_a):
    response = admin_client_a.post(
        reverse("api_key_create", args=[workspace_a.slug]),
        {"name": "Shop website"},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "will not be shown again" in body
    secret = re.search(r'readonly value="([^"]+)"', body).group(1)
    api_key = ApiKey.objects.for_workspace(workspace_a).get()
    assert secret.startswith(api_key.prefix + ".")
    assert secret not in api_key.hashed_key
    page = admin_client_a.get(reverse("api_keys", args=[workspace_a.slug])).content.decode()
    assert api_key.prefix in page and secret not in page


def test_a_key_needs_a_name(admin_client_a, workspace_a):
    response = admin_client_a.post(
        reverse("api_key_create", args=[workspace_a.slug]), {"name": " "}
    )
    assert response.status_code == 400
    assert "required" in response.content.decode()
    assert not ApiKey.objects.for_workspace(workspace_a).exists()


def test_editors_cannot_see_or_create_keys(editor_client, workspace_a):
    assert editor_client.get(reverse("api_keys", args=[workspace_a.slug])).status_code == 403
    response = editor_client.post(reverse("api_key_create", args=[workspace_a.slug]), {"name": "x"})
    assert response.status_code == 403


def _get(client, path, authorization):
    return client.get(path, headers={"Authorization": authorization})


def test_a_bearer_key_reads_its_own_workspace(client, workspace_a):
    api_key = ApiKeyFactory(workspace=workspace_a)
    response = _get(client, "/api/v1/workspace/", f"Bearer {api_key.secret}")
    assert response.status_code == 200
    assert response.json()["slug"] == workspace_a.slug
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_segment_style_basic_auth_with_the_key_as_user_name(client, workspace_a):
    api_key = ApiKeyFactory(workspace=workspace_a)
    token = base64.b64encode(f"{api_key.secret}:".encode()).decode()
    response = _get(client, "/api/v1/workspace/", f"Basic {token}")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer", "carries no API key"),
        ("Token abc", "Unsupported Authorization scheme"),
        ("Basic !!!not-base64", "Malformed Basic credentials"),
        ("Bearer nodot", "Invalid API key"),
        ("Bearer abcdefgh.wrongsecret", "Invalid API key"),
    ],
)
def test_a_bad_authorization_header_gets_401_with_a_reason(client, authorization, message):
    response = _get(client, "/api/v1/workspace/", authorization)
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_gets_401_and_says_so(admin_client_a, workspace_a, client):
    api_key = ApiKeyFactory(workspace=workspace_a)
    admin_client_a.post(reverse("api_key_revoke", args=[workspace_a.slug, api_key.public_id]))
    response = _get(client, "/api/v1/workspace/", f"Bearer {api_key.secret}")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_a_wrong_secret_with_a_real_prefix_is_refused(client, workspace_a):
    api_key = ApiKeyFactory(workspace=workspace_a)
    response = _get(client, "/api/v1/workspace/", f"Bearer {api_key.prefix}.not-the-secret")
    assert response.status_code == 401


def test_no_credentials_get_401(client):
    assert client.get("/api/v1/workspace/").status_code == 401


def test_a_key_cannot_reach_another_workspace_by_slug(client, workspace_a, workspace_b):
    api_key = ApiKeyFactory(workspace=workspace_b)
    response = _get(client, f"/api/v1/w/{workspace_a.slug}/workspace/", f"Bearer {api_key.secret}")
    assert response.status_code == 404

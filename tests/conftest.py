"""Shared fixtures: workspace A with an owner, an admin, an editor and a viewer; workspace
B with an outsider, who is B's owner and must never see A."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def workspace_a(db):
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def workspace_b(db):
    return WorkspaceFactory(name="Bloom", slug="bloom")


def _member(workspace, role):
    return MembershipFactory(
        workspace=workspace, role=role, user=UserFactory(email=f"{role}@{workspace.slug}.example")
    ).user


@pytest.fixture
def owner(workspace_a):
    return _member(workspace_a, Role.OWNER)


@pytest.fixture
def admin_user(workspace_a):
    return _member(workspace_a, Role.ADMIN)


@pytest.fixture
def editor(workspace_a):
    return _member(workspace_a, Role.EDITOR)


@pytest.fixture
def viewer(workspace_a):
    return _member(workspace_a, Role.VIEWER)


@pytest.fixture
def outsider(workspace_b):
    return _member(workspace_b, Role.OWNER)


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner):
    return _client_for(owner)


@pytest.fixture
def admin_client_a(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def editor_client(editor):
    return _client_for(editor)


@pytest.fixture
def viewer_client(viewer):
    return _client_for(viewer)


@pytest.fixture
def outsider_client(outsider):
    return _client_for(outsider)

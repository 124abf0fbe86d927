"""Tenancy rules that cover every view and model, including ones added later."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from tests.scope_walk import find_scope_leaks, iter_routes
from workspaces.models import Membership, Workspace, WorkspaceOwned
from workspaces.scoping import UnscopedQueryError

# Tables that hold a workspace key without being owned by one workspace, and why.
NOT_TENANT_OWNED = {
    Membership: "decides who enters a workspace; read across workspaces to list a user's",
}


def models_with_workspace_key(registry=apps) -> list[type[models.Model]]:
    return [
        model
        for model in registry.get_models()
        if any(
            isinstance(field, models.ForeignKey) and field.related_model is Workspace
            for field in model._meta.get_fields()
            if field.concrete
        )
    ]


def models_breaking_the_rule(registry=apps) -> list[type[models.Model]]:
    return [
        model
        for model in models_with_workspace_key(registry)
        if not issubclass(model, WorkspaceOwned) and model not in NOT_TENANT_OWNED
    ]


@pytest.mark.django_db
def test_an_outsider_gets_404_on_every_workspace_page_and_api_route():
    assert list(iter_routes()), "the walk found no routes"
    assert find_scope_leaks() == []


@pytest.mark.django_db
def test_the_walk_catches_a_view_that_forgets_the_scope(settings):
    settings.ROOT_URLCONF = "tests.workspaces.leaky_urls"
    leaks = find_scope_leaks(urlconf="tests.workspaces.leaky_urls")
    assert leaks, "the deliberately unscoped view went unnoticed"
    assert all("/leaky-keys/" in leak for leak in leaks)


def test_every_model_with_a_workspace_key_inherits_workspace_owned():
    assert models_with_workspace_key(), "no tenant-owned models found"
    assert models_breaking_the_rule() == []


def test_the_model_rule_catches_a_model_that_skips_workspace_owned():
    with isolate_apps("workspaces") as registry:

        class Sneaky(models.Model):  # noqa: DJ008
            workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)

            class Meta:
                app_label = "workspaces"

        assert models_breaking_the_rule(registry) == [Sneaky]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    [m for m in apps.get_models() if issubclass(m, WorkspaceOwned)],
    ids=lambda m: m.__name__,
)
def test_every_tenant_owned_model_refuses_unscoped_queries(model, workspace_a):
    with pytest.raises(UnscopedQueryError):
        model.objects.count()
    with pytest.raises(UnscopedQueryError):
        list(model.objects.filter(pk=1))
    assert model.objects.for_workspace(workspace_a).count() == 0
    assert model.all_workspaces.count() >= 0

"""The fail-closed manager: unscoped queries raise, scoped ones run."""

from __future__ import annotations

import pytest

from tests.factories import ApiKeyFactory, InvitationFactory, SandboxMessageFactory
from workspaces.models import Invitation, SandboxMessage
from workspaces.scoping import UnscopedQueryError

pytestmark = pytest.mark.django_db


def test_building_an_unscoped_query_is_free_but_running_it_raises(workspace_a):
    InvitationFactory(workspace=workspace_a)
    query = Invitation.objects.filter(email__contains="@")  # no error yet
    for run in (list, len, bool):
        with pytest.raises(UnscopedQueryError, match="for_workspace"):
            run(query)
    for method in ("count", "exists", "first", "delete"):
        with pytest.raises(UnscopedQueryError):
            getattr(query, method)()
    with pytest.raises(UnscopedQueryError):
        query.update(role="viewer")
    with pytest.raises(UnscopedQueryError):
        Invitation.objects.get(email="x@example.com")


def test_for_workspace_returns_only_that_workspaces_rows(workspace_a, workspace_b):
    mine = InvitationFactory(workspace=workspace_a)
    InvitationFactory(workspace=workspace_b)
    assert list(Invitation.objects.for_workspace(workspace_a)) == [mine]
    assert Invitation.objects.for_workspace(workspace_a).get(public_id=mine.public_id) == mine


def test_for_workspace_refuses_none():
    with pytest.raises(UnscopedQueryError):
        Invitation.objects.for_workspace(None)


def test_excluding_a_workspace_does_not_count_as_scoping(workspace_a):
    with pytest.raises(UnscopedQueryError):
        Invitation.objects.exclude(workspace=workspace_a).count()


def test_an_unscoped_subquery_raises(workspace_a):
    inner = Invitation.objects.values("email")
    with pytest.raises(UnscopedQueryError):
        list(Invitation.objects.for_workspace(workspace_a).filter(email__in=inner))


def test_scope_survives_chaining(workspace_a):
    InvitationFactory(workspace=workspace_a, email="a@example.com")
    chained = (
        Invitation.objects.for_workspace(workspace_a).order_by("email").exclude(role="owner")[:5]
    )
    assert [i.email for i in chained] == ["a@example.com"]


def test_bulk_create_needs_a_workspace_on_every_row(workspace_a):
    rows = [SandboxMessage(workspace=workspace_a, subject="ok"), SandboxMessage(subject="no")]
    with pytest.raises(UnscopedQueryError):
        SandboxMessage.objects.for_workspace(workspace_a).bulk_create(rows)
    assert SandboxMessage.all_workspaces.count() == 0


def test_all_workspaces_is_the_deliberate_cross_tenant_door(workspace_a, workspace_b):
    SandboxMessageFactory(workspace=workspace_a)
    SandboxMessageFactory(workspace=workspace_b)
    assert SandboxMessage.all_workspaces.count() == 2


def test_validation_works_through_the_scoped_manager(workspace_a):
    key = ApiKeyFactory(workspace=workspace_a)
    key.full_clean()  # unique checks on generated fields must not trip the scope


def test_unique_constraints_on_expressions_validate_inside_the_workspace(workspace_a, workspace_b):
    from django.core.exceptions import ValidationError

    from contacts.models import Tag

    Tag.objects.create(workspace=workspace_a, name="VIP")
    Tag(workspace=workspace_b, name="vip").full_clean()  # another workspace may reuse it
    with pytest.raises(ValidationError):
        Tag(workspace=workspace_a, name="vip").full_clean()

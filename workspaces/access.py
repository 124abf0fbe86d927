"""Who may reach which workspace, and the one way views fetch a tenant-owned object."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.db.models import Q, QuerySet
from django.http import Http404

from .models import Agency, Membership, Role, Workspace, WorkspaceOwned

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Owned = TypeVar("Owned", bound=WorkspaceOwned)


def workspace_for_task(workspace_id: int) -> Workspace | None:
    """The workspace a Celery task was handed by id (None if it was deleted since)."""
    return Workspace.objects.filter(pk=workspace_id).first()


def workspaces_for_user(user: AbstractBaseUser) -> QuerySet[Workspace]:
    """Every workspace the user reaches: their own and all clients of their agencies."""
    if not user.is_authenticated:
        return Workspace.objects.none()
    return (
        Workspace.objects.filter(Q(memberships__user=user) | Q(agency__memberships__user=user))
        .select_related("agency")
        .distinct()
        .order_by("agency__name", "name")
    )


def role_in_workspace(user: AbstractBaseUser, workspace: Workspace) -> str | None:
    """The strongest role any of the user's memberships gives in this workspace."""
    if not user.is_authenticated:
        return None
    roles = Membership.objects.reaching(workspace).filter(user=user).values_list("role", flat=True)
    return max(roles, key=Role.rank, default=None)


def agencies_managed_by(user: AbstractBaseUser) -> QuerySet[Agency]:
    """Agencies where the user may add client workspaces (agency owners and admins)."""
    return Agency.objects.filter(
        memberships__user=user, memberships__role__in=[Role.OWNER, Role.ADMIN]
    ).distinct()


def get_workspace_for_user(user: AbstractBaseUser, slug: str) -> tuple[Workspace, str]:
    """The workspace and the user's role; 404 alike for "not yours" and "not there"."""
    workspace = Workspace.objects.select_related("agency").filter(slug=slug).first()
    role = role_in_workspace(user, workspace) if workspace else None
    if workspace is None or role is None:
        raise Http404("No such workspace.")
    return workspace, role


def get_owned_or_404(model: type[Owned], workspace: Workspace, public_id: object) -> Owned:
    """Fetch a tenant-owned row by public id inside the workspace, or 404."""
    obj = model.objects.for_workspace(workspace).filter(public_id=public_id).first()
    if obj is None:
        raise Http404(f"No such {model._meta.verbose_name}.")
    return obj


def get_member_or_404(workspace: Workspace, public_id: object) -> Membership:
    """A direct membership of this workspace (agency memberships are managed on the agency)."""
    member = (
        Membership.objects.filter(workspace=workspace, public_id=public_id)
        .select_related("user")
        .first()
    )
    if member is None:
        raise Http404("No such member.")
    return member

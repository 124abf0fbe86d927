"""The base every REST endpoint builds on: the workspace comes from the API key or, for a
signed-in user, from `/api/v1/w/<workspace_slug>/`; querysets start from it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import exceptions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .access import get_workspace_for_user
from .models import ApiKey, Role, Workspace

API_KEY_ROLE = Role.ADMIN


def resolve_api_workspace(request: Request, slug: str | None) -> tuple[Workspace, str]:
    if isinstance(request.auth, ApiKey):
        workspace = request.auth.workspace
        if slug is not None and slug != workspace.slug:
            raise exceptions.NotFound("No such workspace.")
        return workspace, API_KEY_ROLE
    if not request.user or not request.user.is_authenticated:
        raise exceptions.NotAuthenticated()
    if slug is None:
        raise exceptions.NotFound(
            "Signed-in requests name their workspace: /api/v1/w/<workspace>/..."
        )
    try:
        return get_workspace_for_user(request.user, slug)
    except Http404 as exc:
        raise exceptions.NotFound("No such workspace.") from exc


class WorkspaceViewSet(viewsets.GenericViewSet):
    """Scoped to `request.workspace`. Subclasses write `workspace_queryset(workspace)`;
    overriding `get_queryset` is refused so the scope cannot be dropped by accident."""

    lookup_field = "public_id"
    lookup_value_converter = "uuid"
    read_role: str = Role.VIEWER
    write_role: str = Role.EDITOR
    model: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.get_queryset is not WorkspaceViewSet.get_queryset:
            raise TypeError(
                f"{cls.__name__} overrides get_queryset(); write workspace_queryset(workspace)."
            )

    def check_permissions(self, request: Request) -> None:
        workspace, role = resolve_api_workspace(request, self.kwargs.get("workspace_slug"))
        request.workspace = workspace
        request.workspace_role = role
        super().check_permissions(request)

    def get_queryset(self) -> QuerySet[Any]:
        return self.workspace_queryset(self.request.workspace)

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[Any]:
        return self.model.objects.for_workspace(workspace)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Service-layer ValidationErrors become 400s with field errors."""
    if isinstance(exc, DjangoValidationError):
        detail: Any = (
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": " ".join(exc.messages)}
        )
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)

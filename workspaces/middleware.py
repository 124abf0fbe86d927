"""Resolves `request.workspace` from `/w/<workspace_slug>/...` and checks the user's role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.views import APIView

from .access import get_workspace_for_user
from .models import Role
from .roles import required_role


class WorkspaceMiddleware:
    """Outsiders and unknown slugs get 404; a role too weak for the method gets 403."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.workspace = None  # type: ignore[attr-defined]
        request.workspace_role = None  # type: ignore[attr-defined]
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        slug = view_kwargs.get("workspace_slug")
        if slug is None or _is_api_view(view_func):
            return None  # the API resolves its workspace from the key or the session itself
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        workspace, role = get_workspace_for_user(request.user, slug)
        request.workspace = workspace  # type: ignore[attr-defined]
        request.workspace_role = role  # type: ignore[attr-defined]
        needed = required_role(view_func, request.method or "GET")
        if not Role.at_least(role, needed):
            raise PermissionDenied(
                f"Your role in {workspace.name} is {Role(role).label}; "
                f"this needs {Role(needed).label} or above."
            )
        return None


def _is_api_view(view_func: Callable[..., Any]) -> bool:
    view_class = getattr(view_func, "cls", None)
    return isinstance(view_class, type) and issubclass(view_class, APIView)

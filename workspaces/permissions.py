"""DRF permission: the request's role in its workspace must suit the method."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .models import Role


class HasWorkspaceRole(BasePermission):
    message = "Your role in this workspace does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        role = getattr(request, "workspace_role", None)
        if role is None:
            return False
        needed = view.read_role if request.method in SAFE_METHODS else view.write_role
        return Role.at_least(role, needed)

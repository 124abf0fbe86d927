from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .access import workspaces_for_user
from .models import Role
from .navigation import active_section, nav_items


def workspace_nav(request: HttpRequest) -> dict[str, Any]:
    workspace = getattr(request, "workspace", None)
    if workspace is None or not request.user.is_authenticated:
        return {}
    role = request.workspace_role
    items = nav_items(workspace.slug)
    return {
        "workspace": workspace,
        "workspace_role": role,
        "can_edit": Role.at_least(role, Role.EDITOR),
        "can_admin": Role.at_least(role, Role.ADMIN),
        "nav_items": items,
        "active_section": active_section(items, request.path),
        "switcher_workspaces": workspaces_for_user(request.user),
    }

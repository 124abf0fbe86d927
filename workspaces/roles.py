"""The role a workspace page needs: viewers read, editors write, admins manage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def requires_role(*, read: str = Role.VIEWER, write: str = Role.EDITOR) -> Callable[..., Any]:
    """Mark a workspace view with the roles it needs; WorkspaceMiddleware enforces them."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view.workspace_roles = (read, write)  # type: ignore[attr-defined]
        return view

    return decorate


def required_role(view: Callable[..., Any], method: str) -> str:
    read, write = getattr(view, "workspace_roles", (Role.VIEWER, Role.EDITOR))
    return read if method in SAFE_METHODS else write

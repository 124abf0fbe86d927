"""Cursor pages ordered by the view's `ordering` (stable while rows are being added)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request


class WorkspaceCursorPagination(CursorPagination):
    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        ordering = getattr(view, "ordering", "-created_at")
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

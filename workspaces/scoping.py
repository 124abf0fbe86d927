"""The fail-closed query scope every tenant-owned model uses.

`Model.objects` hands out querysets that refuse to run until they are filtered on one
workspace (`Model.objects.for_workspace(ws)` is the way in). Building a queryset is still
free, so model forms and Django internals can hold one; only running it unscoped raises.
`Model.all_workspaces` is the deliberate cross-tenant door for admin, migrations and
maintenance tasks.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F
from django.db.models.lookups import Exact

WORKSPACE_LOOKUPS = frozenset({"workspace", "workspace_id", "workspace__id", "workspace__pk"})


class UnscopedQueryError(RuntimeError):
    """A tenant-owned table was queried without naming a workspace."""


def _names_one_workspace(args: Any, kwargs: Any) -> bool:
    """True for filter(workspace=ws) and for Exact(F("workspace"), ws), which Django's
    constraint validation uses for unique constraints built from expressions."""
    if any(key in WORKSPACE_LOOKUPS and value is not None for key, value in kwargs.items()):
        return True
    return any(
        isinstance(arg, Exact) and isinstance(arg.lhs, F) and arg.lhs.name in WORKSPACE_LOOKUPS
        for arg in args
    )


class WorkspaceQuerySet(models.QuerySet):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workspace_scoped = False

    def _clone(self) -> WorkspaceQuerySet:
        clone = super()._clone()
        clone._workspace_scoped = self._workspace_scoped
        return clone

    def _filter_or_exclude(self, negate: bool, args: Any, kwargs: Any) -> WorkspaceQuerySet:
        clone = super()._filter_or_exclude(negate, args, kwargs)
        if not negate and _names_one_workspace(args, kwargs):
            clone._workspace_scoped = True
        return clone

    def for_workspace(self, workspace: Any) -> WorkspaceQuerySet:
        if workspace is None:
            raise UnscopedQueryError("for_workspace() needs a workspace, got None.")
        return self.filter(workspace=workspace)

    def _mark_scoped(self) -> WorkspaceQuerySet:
        self._workspace_scoped = True
        return self

    def _require_scope(self) -> None:
        if not self._workspace_scoped:
            raise UnscopedQueryError(
                f"{self.model.__name__} query without a workspace: "
                f"use {self.model.__name__}.objects.for_workspace(workspace)."
            )

    # Every way a queryset reaches the database goes through one of these.
    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._require_scope()
        super()._fetch_all()

    def _guarded(name: str):  # type: ignore[no-untyped-def]
        def method(self: WorkspaceQuerySet, *args: Any, **kwargs: Any) -> Any:
            self._require_scope()
            return getattr(super(), name)(*args, **kwargs)

        method.__name__ = name
        return method

    count = _guarded("count")
    exists = _guarded("exists")
    contains = _guarded("contains")
    aggregate = _guarded("aggregate")
    update = _guarded("update")
    _update = _guarded("_update")
    delete = _guarded("delete")
    _raw_delete = _guarded("_raw_delete")
    iterator = _guarded("iterator")
    in_bulk = _guarded("in_bulk")
    explain = _guarded("explain")
    raw = _guarded("raw")
    aiterator = _guarded("aiterator")
    bulk_update = _guarded("bulk_update")
    resolve_expression = _guarded("resolve_expression")
    del _guarded

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        if any(getattr(obj, "workspace_id", None) is None for obj in objs):
            raise UnscopedQueryError(f"bulk_create of {self.model.__name__} without workspace.")
        return super().bulk_create(objs, *args, **kwargs)


class WorkspaceManager(models.Manager.from_queryset(WorkspaceQuerySet)):  # type: ignore[misc]
    """The default manager: nothing runs until the query names a workspace."""

    def get_queryset(self) -> WorkspaceQuerySet:
        queryset = super().get_queryset()
        # A related manager (contact.events, contact.tags) is already narrowed to a parent
        # row that was itself fetched inside a workspace.
        if getattr(self, "instance", None) is not None:
            queryset._mark_scoped()
        return queryset


class AllWorkspacesManager(models.Manager.from_queryset(WorkspaceQuerySet)):  # type: ignore[misc]
    """Every tenant's rows: for admin, migrations and cross-tenant maintenance only."""

    def get_queryset(self) -> WorkspaceQuerySet:
        return super().get_queryset()._mark_scoped()

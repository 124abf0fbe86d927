"""Background work for segments: thin tasks that take ids and call one service. All of them
are idempotent: a refresh run twice leaves the same membership."""

from __future__ import annotations

from celery import shared_task

from workspaces.access import workspace_for_task

from ..models import Persona, Segment, SegmentKind
from . import membership


@shared_task(acks_late=True)
def refresh_all_segments() -> int:
    """Periodic (settings.PERIODIC_TASKS): one full refresh task per workspace that has
    segments or persona rules. Rules with time windows ("in the last 7 days") move on
    with the clock, without any contact changing; this is what catches that up."""
    with_segments = Segment.all_workspaces.values_list("workspace_id", flat=True)
    with_rules = Persona.all_workspaces.filter(rule__isnull=False).values_list(
        "workspace_id", flat=True
    )
    workspace_ids = sorted({*with_segments.distinct(), *with_rules.distinct()})
    for workspace_id in workspace_ids:
        refresh_workspace_segments_task.delay(workspace_id)
    return len(workspace_ids)


@shared_task(acks_late=True)
def refresh_workspace_segments_task(workspace_id: int) -> int | None:
    workspace = workspace_for_task(workspace_id)
    if workspace is None:
        return None
    return len(membership.refresh_workspace(workspace=workspace))


@shared_task(acks_late=True)
def refresh_segment_task(workspace_id: int, segment_id: int) -> int | None:
    """Fill or re-check one segment (after it was saved in a big workspace)."""
    workspace = workspace_for_task(workspace_id)
    if workspace is None:
        return None
    segment = Segment.objects.for_workspace(workspace).filter(pk=segment_id).first()
    if segment is None or segment.kind != SegmentKind.DYNAMIC:
        return None
    entered, exited = membership.refresh_segment_and_dependents(
        workspace=workspace, segment=segment
    )
    return len(entered) + len(exited)


@shared_task(acks_late=True)
def refresh_contacts_task(workspace_id: int, contact_ids: list[int], changes: list[str]) -> int:
    """Re-evaluate the segments that `changes` can affect, for these contacts."""
    workspace = workspace_for_task(workspace_id)
    if workspace is None:
        return 0
    results = membership.refresh_for_contacts(
        workspace=workspace, contact_ids=contact_ids, changes=changes
    )
    return len(results)

"""Background work for contacts: thin tasks that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from workspaces.access import workspace_for_task

from . import importing
from .models import ImportJob


@shared_task(acks_late=True)
def run_import(workspace_id: int, job_id: int) -> str | None:
    """Run (or resume) a CSV import; a finished job is left alone, so a retry is safe."""
    workspace = workspace_for_task(workspace_id)
    if workspace is None:
        return None
    job = ImportJob.objects.for_workspace(workspace).filter(pk=job_id).first()
    if job is None:
        return None
    return importing.run_import(workspace=workspace, job=job).status

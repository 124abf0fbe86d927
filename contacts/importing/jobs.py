"""An import job from upload to start: the stored file with its layout and a first guess
at the mapping, the mapping and options the user confirms, a preview of the first rows,
and queuing the run."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from workspaces.models import Workspace

from .. import services
from ..attributes import field_definitions
from ..models import (
    Contact,
    CustomField,
    ExistingContacts,
    ImportJob,
    ImportStatus,
    LifecycleStage,
    Persona,
)
from .mapping import auto_map, check_mapping
from .reading import file_error, open_records, sniff_layout
from .rows import RowPlan, RowRejected

PREVIEW_ROWS = 10
MAX_IMPORT_BYTES = getattr(settings, "CONTACT_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)


def create_import_job(
    *, workspace: Workspace, upload: UploadedFile, created_by: Any = None
) -> ImportJob:
    """Store an uploaded CSV file with its layout and a first guess at the mapping."""
    if upload.size is not None and upload.size > MAX_IMPORT_BYTES:
        limit = MAX_IMPORT_BYTES // (1024 * 1024)
        raise file_error(f"The file is larger than {limit} MB: split it into several imports.")
    layout = sniff_layout(upload)
    custom_fields = list(CustomField.objects.for_workspace(workspace))
    job = ImportJob(
        workspace=workspace,
        filename=os.path.basename(upload.name or "contacts.csv")[:255],
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        headers=layout.headers,
        mapping=auto_map(layout.headers, custom_fields),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    upload.seek(0)
    job.file.save(job.filename, upload, save=False)  # streamed to storage in chunks
    job.save()
    return job


def set_mapping(*, workspace: Workspace, job: ImportJob, mapping: Mapping[str, str]) -> ImportJob:
    _require_editable(job)
    job.mapping = check_mapping(job.headers, mapping)
    job.save(update_fields=["mapping", "updated_at"])
    return job


@transaction.atomic
def set_options(
    *,
    workspace: Workspace,
    job: ImportJob,
    existing: str,
    tag_names: Sequence[str] = (),
    stage: LifecycleStage | None = None,
    persona: Persona | None = None,
    consent_basis: str = "",
) -> ImportJob:
    """What to do with known contacts, what to add to everyone, and the consent basis.
    Without a basis, new contacts are imported as not subscribed."""
    _require_editable(job)
    if existing not in ExistingContacts.values:
        raise ValidationError({"existing": "Choose whether to update or skip known contacts."})
    for name, value in (("lifecycle_stage", stage), ("persona", persona)):
        if value is not None and value.workspace_id != workspace.pk:
            raise ValidationError({name: "Choose one of this workspace's."})
    tags = services.get_or_create_tags(workspace=workspace, names=tag_names)
    job.existing = existing
    job.lifecycle_stage = stage
    job.persona = persona
    job.consent_basis = consent_basis.strip()
    job.subscribe = bool(job.consent_basis)
    job.save()
    job.tags.set(tags)
    return job


def _require_editable(job: ImportJob) -> None:
    if job.status != ImportStatus.UPLOADED:
        raise ValidationError("This import has already started; its settings cannot change.")


def start_import(*, workspace: Workspace, job: ImportJob) -> ImportJob:
    """Queue the import (or its resumption after a failure) once the transaction commits."""
    from ..tasks import run_import as run_import_task

    check_mapping(job.headers, job.mapping)
    queued = (
        ImportJob.objects.for_workspace(workspace)
        .filter(pk=job.pk, status__in=[ImportStatus.UPLOADED, ImportStatus.FAILED])
        .update(status=ImportStatus.QUEUED, error="", updated_at=timezone.now())
    )
    job.refresh_from_db()
    if queued:  # a second click, or a job already running, queues nothing more
        transaction.on_commit(lambda: run_import_task.delay(workspace.pk, job.pk))
    return job


# --- preview -----------------------------------------------------------------------------


@dataclass
class PreviewRow:
    line: int
    action: str  # create | update | skip | reject
    fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: str | None = None
    problem: str = ""


def preview_import(
    *, workspace: Workspace, job: ImportJob, limit: int = PREVIEW_ROWS
) -> list[PreviewRow]:
    """The first rows as they will be saved (or why not), without writing anything."""
    plan = RowPlan.for_job(job)
    with open_records(job) as records:
        sample = list(itertools.islice(records, limit))
    definitions = field_definitions(workspace)
    rows = [_preview_row(plan, line, cells, definitions) for line, cells in sample]
    _mark_known(workspace, job, rows)
    return rows


def _preview_row(
    plan: RowPlan, line: int, cells: list[str], definitions: Mapping[str, CustomField]
) -> PreviewRow:
    try:
        data = plan.convert(cells)
    except RowRejected as exc:
        return PreviewRow(line, "reject", problem=exc.reason)
    checked = services.check_contact_rows(rows=[data], definitions=definitions)
    if not checked.clean:
        return PreviewRow(line, "reject", problem=plan.describe(checked.refused[0].errors))
    row = checked.clean[0]
    fields = {**row.fields, **{f"attributes.{k}": v for k, v in row.attributes.items()}}
    return PreviewRow(line, "create", fields, row.tags, row.status)


def _mark_known(workspace: Workspace, job: ImportJob, rows: list[PreviewRow]) -> None:
    emails = [r.fields["email"] for r in rows if r.action == "create"]
    erased = services.suppressed_emails(workspace, emails)
    known = set(
        Contact.objects.for_workspace(workspace)
        .filter(email__in=emails)
        .values_list("email", flat=True)
    )
    for row in rows:
        email = row.fields.get("email")
        if email in erased:
            row.action, row.problem = "reject", "email: This address was erased and is suppressed."
        elif email in known:
            row.action = "skip" if job.existing == ExistingContacts.SKIP else "update"

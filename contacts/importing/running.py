"""Running an import: the stored file is streamed line by line and handed to
`upsert_contacts` a chunk at a time, so a file of a million rows never sits in memory.
Each chunk and the job's counters are committed together: a run that stops half-way
resumes from the last committed chunk, and running a job again never adds anyone twice."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from workspaces.models import Workspace

from .. import services
from ..attributes import field_definitions
from ..models import CustomField, ImportJob, ImportStatus, LifecycleStage, Persona, Source, Tag
from .reading import open_records
from .rejects import RejectsWriter
from .rows import RowPlan, RowRejected

CHUNK_ROWS = 5000  # rows per transaction (upsert_contacts' max_rows for the importer)


class _Superseded(Exception):
    """Another worker moved this job on; this run stops without writing."""


@dataclass
class ChunkOutcome:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[tuple[list[str], str]] = field(default_factory=list)


@dataclass
class ImportOptions:
    existing: str
    tags: list[Tag]
    stage: LifecycleStage | None
    persona: Persona | None
    consent: services.ConsentInput | None

    @classmethod
    def for_job(cls, job: ImportJob) -> ImportOptions:
        consent = None
        if job.subscribe and job.consent_basis:
            consent = services.ConsentInput(
                method=Source.IMPORT,
                text_shown=job.consent_basis,
                source=f"Import of “{job.filename}” ({job.public_id})"[:255],
            )
        return cls(
            existing=job.existing,
            tags=list(job.tags.all()),
            stage=job.lifecycle_stage,
            persona=job.persona,
            consent=consent,
        )


def run_import(*, workspace: Workspace, job: ImportJob) -> ImportJob:
    """Import the job's file, resuming after the last committed chunk. A job that is done
    (or not yet confirmed) is left as it is."""
    jobs = ImportJob.objects.for_workspace(workspace)
    claimed = jobs.filter(pk=job.pk, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).update(
        status=ImportStatus.RUNNING,
        started_at=Coalesce(F("started_at"), timezone.now()),
        updated_at=timezone.now(),
    )
    job.refresh_from_db()
    if not claimed:
        return job
    try:
        if not job.total_rows:
            job.total_rows = count_rows(job)
            jobs.filter(pk=job.pk).update(total_rows=job.total_rows)
        _import_rows(workspace, job)
    except _Superseded:
        job.refresh_from_db()
        return job
    except (UnicodeDecodeError, csv.Error, ValidationError) as exc:
        return _fail(workspace, job, _read_error_message(exc))
    except Exception:
        _fail(
            workspace,
            job,
            "The import stopped unexpectedly. Choose “Resume” to continue where it stopped.",
        )
        raise
    jobs.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
        status=ImportStatus.DONE, finished_at=timezone.now(), updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def count_rows(job: ImportJob) -> int:
    """Reads the whole file once before anything is written, so a broken line stops the
    import before it starts rather than half-way through."""
    with open_records(job) as records:
        return sum(1 for _ in records)


def _read_error_message(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return (
            "Part of the file is not text in the encoding of its first lines; "
            "save it again as “CSV UTF-8” and upload it once more."
        )
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return f'The file is not valid CSV: {exc}. Check for an unclosed quote (").'


def _fail(workspace: Workspace, job: ImportJob, message: str) -> ImportJob:
    ImportJob.objects.for_workspace(workspace).filter(pk=job.pk).update(
        status=ImportStatus.FAILED, error=message, updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


@dataclass
class PreparedChunk:
    """A chunk read from the file, converted and checked."""

    rows: list[list[str]]
    checked: services.CheckedRows
    positions: list[int]  # row index in `checked` -> position in the chunk
    reasons: dict[int, str] = field(default_factory=dict)  # position -> why rejected


def prepare_chunk(
    plan: RowPlan, rows: list[list[str]], definitions: Mapping[str, CustomField]
) -> PreparedChunk:
    """Pure work, no database: runs on the reading thread while the previous chunk is
    being written."""
    converted: list[dict[str, Any]] = []
    positions: list[int] = []
    reasons: dict[int, str] = {}
    for position, cells in enumerate(rows):
        try:
            converted.append(plan.convert(cells))
        except RowRejected as exc:
            reasons[position] = exc.reason
            continue
        positions.append(position)
    checked = services.check_contact_rows(rows=converted, definitions=definitions)
    return PreparedChunk(rows, checked, positions, reasons)


def _import_rows(workspace: Workspace, job: ImportJob) -> None:
    """Stream the file in chunks; the next chunk is read and checked on a second thread
    while the current one is written, so parsing and the database overlap."""
    plan = RowPlan.for_job(job)
    options = ImportOptions.for_job(job)
    definitions = field_definitions(workspace)
    done = job.processed_rows
    with (
        RejectsWriter(job) as rejects,
        open_records(job) as records,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-reader") as reader,
    ):
        remaining = itertools.islice(records, done, None)

        def read_next() -> PreparedChunk | None:
            rows = [cells for _, cells in itertools.islice(remaining, CHUNK_ROWS)]
            return prepare_chunk(plan, rows, definitions) if rows else None

        pending = reader.submit(read_next)
        while (chunk := pending.result()) is not None:
            pending = reader.submit(read_next)
            _import_chunk(workspace, job, options, chunk, rejects, done, plan)
            done += len(chunk.rows)


def _import_chunk(
    workspace: Workspace,
    job: ImportJob,
    options: ImportOptions,
    chunk: PreparedChunk,
    rejects: RejectsWriter,
    offset: int,
    plan: RowPlan,
) -> None:
    """One chunk and the job's counters, in one transaction."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _skip_commit_flush()
        locked = (
            ImportJob.objects.for_workspace(workspace)
            .select_for_update()
            .filter(pk=job.pk)
            .values("processed_rows", "status")
            .first()
        )
        if locked is None or locked["processed_rows"] != offset:
            raise _Superseded
        outcome = import_chunk(workspace, plan, options, chunk)
        rejects.write(outcome.rejected)
        ImportJob.objects.for_workspace(workspace).filter(pk=job.pk).update(
            processed_rows=F("processed_rows") + len(chunk.rows),
            created_count=F("created_count") + outcome.created,
            updated_count=F("updated_count") + outcome.updated,
            skipped_count=F("skipped_count") + outcome.skipped,
            rejected_count=F("rejected_count") + len(outcome.rejected),
            updated_at=timezone.now(),
        )


def import_chunk(
    workspace: Workspace, plan: RowPlan, options: ImportOptions, chunk: PreparedChunk
) -> ChunkOutcome:
    """Write one prepared chunk (the caller holds the transaction)."""
    outcome = ChunkOutcome()
    reasons = dict(chunk.reasons)
    results = services.upsert_contacts(
        workspace=workspace,
        rows=chunk.checked,
        source=Source.IMPORT,
        existing=options.existing,
        tags=options.tags,
        stage=options.stage,
        persona=options.persona,
        consent=options.consent,
        subscribe=options.consent is not None,
        max_rows=CHUNK_ROWS,
        load_contacts=False,
    )
    for result in results:
        if result.status == "rejected":
            reasons[chunk.positions[result.index]] = plan.describe(result.errors)
        else:
            setattr(outcome, result.status, getattr(outcome, result.status) + 1)
    outcome.rejected = [(chunk.rows[position], reasons[position]) for position in sorted(reasons)]
    return outcome


def _skip_commit_flush() -> None:
    """Commit a chunk without waiting for the disk flush: a server crash may lose the last
    chunks, but each chunk and the job's counters go together, so the resumed import
    picks up exactly where the surviving counters say."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")

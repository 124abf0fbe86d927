"""The file of rejected rows: each row as it was in the upload, plus the reason."""

from __future__ import annotations

import csv
import itertools
import os
from typing import IO, Any

from ..models import ImportJob, import_rejects_path

REASON_COLUMN = "reason"


class RejectsWriter:
    """Appends rejected rows (original cells + reason) to the job's rejects file, which
    lives on local storage so a resumed run can continue it. On resume it first cuts the
    file back to the rows the job's committed counter knows about."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.name = import_rejects_path(job, "")
        self.path = job.rejects_file.storage.path(self.name)
        self.handle: IO[str] | None = None
        self.writer: Any = None

    def __enter__(self) -> RejectsWriter:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if self.job.rejected_count and os.path.exists(self.path):
            self._truncate(self.job.rejected_count)
        else:
            with open(self.path, "w", encoding="utf-8-sig", newline="") as handle:
                csv.writer(handle).writerow([*self.job.headers, REASON_COLUMN])
        if self.job.rejects_file.name != self.name:
            self.job.rejects_file.name = self.name
            ImportJob.objects.for_workspace(self.job.workspace_id).filter(pk=self.job.pk).update(
                rejects_file=self.name
            )
        self.handle = open(self.path, "a", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle)
        return self

    def write(self, rows: list[tuple[list[str], str]]) -> None:
        width = len(self.job.headers)
        for cells, reason in rows:
            padded = [*cells, *[""] * (width - len(cells))]
            self.writer.writerow([*padded[:width], reason, *padded[width:]])
        if rows and self.handle:
            self.handle.flush()

    def _truncate(self, keep: int) -> None:
        temporary = f"{self.path}.partial"
        with (
            open(self.path, encoding="utf-8-sig", newline="") as source,
            open(temporary, "w", encoding="utf-8-sig", newline="") as target,
        ):
            writer = csv.writer(target)
            for row in itertools.islice(csv.reader(source), keep + 1):  # + the header
                writer.writerow(row)
        os.replace(temporary, self.path)

    def __exit__(self, *exc_info: object) -> None:
        if self.handle:
            self.handle.close()

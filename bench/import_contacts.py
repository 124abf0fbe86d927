"""How fast a large CSV import runs, and how much memory it takes.

Generates a CSV of --rows contacts (default 1,000,000) in a temp dir and imports it
through the import service (the code the Celery task runs) on a throw-away test database,
with a consent basis, so every new contact also gets its consent record. With
--tag-and-stage every row also gets a tag and a lifecycle stage (so a stage change too).
Then loads the same file into a plain table with PostgreSQL's COPY as the baseline, and
prints both timings, their ratio, and the process's peak memory. Targets: 1,000,000 rows
under 3 minutes, peak memory under 500 MB.

    .venv/bin/python bench/import_contacts.py            # DATABASE_URL names a PostgreSQL db
    .venv/bin/python bench/import_contacts.py --rows 50000 --profile   # where the time goes
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log kept in memory
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use")
MEDIA_DIR = tempfile.TemporaryDirectory(prefix="mailpath-bench-media-")
os.environ["MEDIA_ROOT"] = MEDIA_DIR.name

import django  # noqa: E402

django.setup()

from django.core.files import File  # noqa: E402
from django.db import connection  # noqa: E402

from contacts import contact_store, importing  # noqa: E402
from contacts.models import (  # noqa: E402
    ConsentRecord,
    Contact,
    ImportJob,
    ImportStatus,
    StageChange,
)
from contacts.services import ensure_default_stages  # noqa: E402
from workspaces.models import Workspace  # noqa: E402

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
CITIES = ["Lyon", "Leeds", "Porto", "Gent", "Bremen", "Turku", "Cork", "Graz"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "first_name", "last_name", "city"])
        for n in range(rows):
            writer.writerow(
                [
                    f"person{n}@example{n % 97}.com",
                    FIRST[n % len(FIRST)],
                    LAST[n % len(LAST)],
                    CITIES[n % len(CITIES)],
                ]
            )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_import(path: Path, profile: bool, tag_and_stage: bool) -> tuple[float, ImportJob]:
    workspace = Workspace.objects.create(name="Bench", slug="bench-import")
    with path.open("rb") as handle:
        job = importing.create_import_job(workspace=workspace, upload=File(handle, name=path.name))
    importing.set_mapping(workspace=workspace, job=job, mapping=job.mapping)
    stage = ensure_default_stages(workspace=workspace)[0]
    importing.set_options(
        workspace=workspace,
        job=job,
        existing="update",
        tag_names=["bench"] if tag_and_stage else [],
        stage=stage if tag_and_stage else None,
        consent_basis="They signed up on our website",
    )
    ImportJob.objects.for_workspace(workspace).filter(pk=job.pk).update(status=ImportStatus.QUEUED)
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    job = importing.run_import(workspace=workspace, job=job)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - start
    if profiler:
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("cumulative").print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "30")))
        stats.sort_stats("tottime").print_stats(20)
    return elapsed, job


def run_copy(path: Path) -> float:
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_copy (email text, first_name text, last_name text, city text)"
        )
        raw = cursor.cursor  # psycopg's own cursor
        with (
            path.open("rb") as handle,
            raw.copy("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        ):
            while block := handle.read(1024 * 1024):
                copy.write(block)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the import")
    parser.add_argument(
        "--tag-and-stage", action="store_true", help="also tag every row and set its stage"
    )
    parser.add_argument(
        "--chunk", type=int, default=importing.running.CHUNK_ROWS, help="rows per chunk"
    )
    parser.add_argument(
        "--orm-path",
        action="store_true",
        help="write through contact_store's ORM path (SQLite's) instead of COPY and SQL",
    )
    args = parser.parse_args()
    importing.running.CHUNK_ROWS = args.chunk
    contact_store.SQL_PATH = not args.orm_path
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL (its baseline is COPY): set DATABASE_URL.")

    with tempfile.TemporaryDirectory(prefix="mailpath-bench-") as tmp:
        path = Path(tmp) / "contacts.csv"
        start = time.perf_counter()
        write_csv(path, args.rows)
        generated = time.perf_counter() - start
        size_mb = path.stat().st_size / 1024 / 1024
        old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
        try:
            elapsed, job = run_import(path, args.profile, args.tag_and_stage)
            workspace = job.workspace
            contacts = Contact.objects.for_workspace(workspace).count()
            consents = ConsentRecord.objects.for_workspace(workspace).count()
            changes = StageChange.objects.for_workspace(workspace).count()
            baseline = run_copy(path)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    MEDIA_DIR.cleanup()

    print(
        f"database: {connection.vendor}; file: {args.rows:,} rows, {size_mb:.1f} MB "
        f"(generated in {generated:.1f} s)"
    )
    print(
        f"import status: {job.status}; created {job.created_count:,}, updated "
        f"{job.updated_count:,}, skipped {job.skipped_count:,}, rejected {job.rejected_count:,}"
    )
    print(f"stored: {contacts:,} contacts, {consents:,} consent records, {changes:,} stage changes")
    path_name = "COPY and set-based SQL" if contact_store.uses_sql() else "ORM"
    print(f"write path: {path_name}; extras: {'tag and stage' if args.tag_and_stage else 'none'}")
    print(f"import through the service:  {elapsed:8.1f} s  ({args.rows / elapsed:,.0f} rows/s)")
    print(f"raw psycopg COPY baseline:   {baseline:8.1f} s  ({args.rows / baseline:,.0f} rows/s)")
    print(f"ratio import / COPY:         {elapsed / baseline:8.1f}")
    print(f"peak memory (max RSS):       {peak_mb():8.1f} MB")


if __name__ == "__main__":
    main()

"""What the fail-closed workspace scope costs on the hot path.

Every page and API call reads through `Model.objects.for_workspace(ws)`. This benchmark
runs the same read (50 rows of one workspace out of 5 000 in 10 workspaces) through the
scoped queryset and through a plain Django QuerySet, in one run on a throw-away test
database, and prints both timings and their ratio. Run with `make bench`.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

import django

django.setup()

from django.db import connection, models  # noqa: E402

from workspaces.models import SandboxMessage, Workspace  # noqa: E402

ROUNDS, REPEAT = 7, 300


def seed() -> Workspace:
    workspaces = [Workspace.objects.create(name=f"W{n}", slug=f"bench-{n}") for n in range(10)]
    rows = [
        SandboxMessage(workspace=ws, subject=f"m{i}", to=["a@example.com"])
        for ws in workspaces
        for i in range(500)
    ]
    SandboxMessage.all_workspaces.bulk_create(rows, batch_size=1000)
    return workspaces[3]


def timed(*reads) -> list[float]:  # type: ignore[no-untyped-def]
    """Median seconds per read for each read, rounds interleaved so drift hits both."""
    rounds: list[list[float]] = [[] for _ in reads]
    for _ in range(ROUNDS):
        for index, read in enumerate(reads):
            start = time.perf_counter()
            for _ in range(REPEAT):
                read()
            rounds[index].append((time.perf_counter() - start) / REPEAT)
    return [statistics.median(r) for r in rounds]


def main() -> None:
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        workspace = seed()

        def plain() -> list:
            return list(models.QuerySet(SandboxMessage).filter(workspace=workspace)[:50])

        def scoped() -> list:
            return list(SandboxMessage.objects.for_workspace(workspace)[:50])

        assert len(plain()) == len(scoped()) == 50
        baseline, ours = timed(plain, scoped)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"database: {connection.vendor}")
    print(f"plain QuerySet read of 50 rows:   {baseline * 1e6:8.1f} µs")
    print(f"for_workspace() read of 50 rows:  {ours * 1e6:8.1f} µs")
    print(f"ratio scoped / plain:             {ours / baseline:8.3f}")


if __name__ == "__main__":
    main()

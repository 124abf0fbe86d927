"""How fast the contacts list page answers at 1,000,000 contacts, and with how many queries.

Fills a throw-away PostgreSQL test database with --contacts contacts (default 1,000,000) in
one workspace (plus 5% as many in a neighbour workspace), with stages, personas and tags,
using INSERT ... SELECT over generate_series (the rows never travel through Python). Then
it requests the list page through Django's test client, signed in as the owner, exactly as
a browser would: the first page, filtered pages, searches, other sorts and deep keyset
pages (the 900,000th row onwards), and prints for each the median and 95th percentile in
milliseconds and the number of SQL queries.

The baseline, measured in the same run: a bare
`SELECT ... WHERE workspace_id = %s ORDER BY created_at DESC, id DESC LIMIT 51` through
psycopg. Each page is printed with its ratio to it.

The pages are measured twice: first on the schema the migrations build, then after adding
the two indexes that docs/contacts.md proposes (a trigram index for the search box, and a
keyset index for the "last activity" sort), so the difference they make is visible.
Target: every page under 300 ms.

    .venv/bin/python bench/contacts_list.py                    # 1,000,000 contacts
    .venv/bin/python bench/contacts_list.py --contacts 100000 --keepdb
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log kept in memory
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import (  # noqa: E402
    connection,
    models,
    reset_queries,
)
from django.db.models import F  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from contacts.models import (  # noqa: E402
    Contact,
    LifecycleStage,
    Persona,
    Tag,
    activity_key,
)
from contacts.queries import SORTS, ListCursor  # noqa: E402
from contacts.services import ensure_default_stages  # noqa: E402
from workspaces.models import Membership, Role, Workspace  # noqa: E402

BENCH_DB = "bench_contacts_list"
TARGET_MS = 300
FIRST = ["ann", "bob", "chloe", "dan", "eve", "finn", "grace", "hugo", "isla", "jack", "kara",
         "leo", "maya", "noah", "olive", "pete", "quinn", "rosa", "sam", "tara"]  # fmt: skip
LAST = ["smith", "jones", "taylor", "brown", "wilson", "evans", "thomas", "roberts", "walker",
        "wright", "green", "hall", "wood", "clarke", "hughes", "lewis"]  # fmt: skip

# The two list-page indexes of migration contacts 0003. The bench drops them for a first
# round, to show what they buy, and builds them again for the second (as migrated).
SEARCH_INDEX_SQL = (
    "CREATE INDEX contact_search_trgm ON contacts_contact USING gin "
    "((LOWER((email || ' ' || first_name || ' ' || last_name))) gin_trgm_ops)"
)
ACTIVITY_INDEX = models.Index(
    F("workspace"), activity_key().desc(), F("id").desc(), name="contact_activity_keyset"
)
PROPOSED_INDEXES = ("contact_search_trgm", "contact_activity_keyset")


# --- data ------------------------------------------------------------------------------------


def seed(contacts: int) -> Workspace:
    workspace = Workspace.objects.create(name="Bench Outdoor", slug="bench-outdoor")
    neighbour = Workspace.objects.create(name="Neighbour", slug="bench-neighbour")
    for ws in (workspace, neighbour):
        ensure_default_stages(workspace=ws)
        Persona.objects.bulk_create(
            Persona(workspace=ws, name=name)
            for name in ("Hiker", "Climber", "Family", "Gift buyer")
        )
        Tag.objects.bulk_create(Tag(workspace=ws, name=f"tag-{n:02}") for n in range(20))
        Tag.objects.create(workspace=ws, name="rare")
    user = get_user_model().objects.create_user(
        username="bench@example.com", email="bench@example.com", password="bench-password-1"
    )
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    started = time.perf_counter()
    insert_contacts(workspace, contacts, prefix="")
    insert_contacts(neighbour, max(contacts // 20, 1), prefix="n")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_contact")
        cursor.execute("VACUUM ANALYZE contacts_contact_tags")
    took = time.perf_counter() - started
    print(f"seeded {contacts:,} contacts (+{max(contacts // 20, 1):,} next door) in {took:.0f} s")
    return workspace


def insert_contacts(workspace: Workspace, count: int, prefix: str) -> None:
    stages = list(LifecycleStage.objects.for_workspace(workspace).values_list("pk", flat=True))
    personas = list(Persona.objects.for_workspace(workspace).values_list("pk", flat=True))
    tags = list(
        Tag.objects.for_workspace(workspace).exclude(name="rare").values_list("pk", flat=True)
    )
    rare = Tag.objects.for_workspace(workspace).get(name="rare").pk
    # Status mix: 85% subscribed, 10% unsubscribed, 3% pending, 1.5% bounced, 0.5% complained.
    sql = """
        INSERT INTO contacts_contact (
            workspace_id, public_id, created_at, updated_at, email, external_id, first_name,
            last_name, phone, timezone, locale, birthday, attributes, status, lifecycle_stage_id,
            persona_id, source, last_activity_at)
        SELECT
            %(ws)s, gen_random_uuid(),
            now() - make_interval(secs => (%(count)s - g) * 90 + (g %% 7)),
            now(),
            (%(first)s::text[])[1 + g %% 20] || '.' || (%(last)s::text[])[1 + (g / 20) %% 16]
                || '.' || %(prefix)s || g || '@example.com',
            NULL,
            initcap((%(first)s::text[])[1 + g %% 20]),
            initcap((%(last)s::text[])[1 + (g / 20) %% 16]),
            '', '', '', NULL, '{"plan": "free"}'::jsonb,
            CASE WHEN g %% 200 = 7 THEN 'complained' WHEN g %% 200 < 3 THEN 'bounced'
                 WHEN g %% 100 < 3 THEN 'pending' WHEN g %% 10 = 9 THEN 'unsubscribed'
                 ELSE 'subscribed' END,
            CASE WHEN g %% 11 = 0 THEN NULL ELSE (%(stages)s::bigint[])[1 + g %% 5] END,
            CASE WHEN g %% 3 = 0 THEN NULL ELSE (%(personas)s::bigint[])[1 + g %% 4] END,
            'import',
            CASE WHEN g %% 5 < 2 THEN NULL
                 ELSE now() - make_interval(secs => ((g::bigint * 7919) %% 7776000)) END
        FROM generate_series(1, %(count)s) AS g
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "ws": workspace.pk,
                "count": count,
                "first": FIRST,
                "last": LAST,
                "prefix": prefix,
                "stages": stages,
                "personas": personas,
            },
        )
        # A third of the contacts carry one of 20 tags; one in a thousand carries "rare".
        cursor.execute(
            """
            INSERT INTO contacts_contact_tags (contact_id, tag_id)
            SELECT id, (%(tags)s::bigint[])[1 + id %% 20] FROM contacts_contact
            WHERE workspace_id = %(ws)s AND id %% 3 = 0
            UNION ALL
            SELECT id, %(rare)s FROM contacts_contact WHERE workspace_id = %(ws)s AND id %% 1000 = 1
            """,
            {"tags": tags, "rare": rare, "ws": workspace.pk},
        )


# --- measuring ---------------------------------------------------------------------------------


def timed(call, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median and 95th percentile in ms, after two warm-up calls."""
    call()
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def baseline_ms(workspace: Workspace, repeat: int) -> float:
    raw = connection.connection  # the psycopg connection under Django's

    def bare() -> None:
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT id, public_id, email, first_name, last_name, status, lifecycle_stage_id,"
                " persona_id, last_activity_at, created_at FROM contacts_contact"
                " WHERE workspace_id = %s ORDER BY created_at DESC, id DESC LIMIT 51",
                [workspace.pk],
            )
            cursor.fetchall()

    return timed(bare, repeat * 3)[0]


def deep_cursor(workspace: Workspace, sort: str, depth: int) -> str:
    spec = SORTS[sort]
    contacts = Contact.objects.for_workspace(workspace)
    if spec.expression is not None:
        contacts = contacts.alias(**{spec.key: spec.expression()})
    order = [F(spec.key).desc(), F("pk").desc()] if spec.descending else [spec.key, "pk"]
    row = contacts.order_by(*order)[depth]
    return ListCursor(sort, spec.key_of(row), row.pk).token()


def pages(workspace: Workspace, contacts: int) -> list[tuple[str, dict[str, str]]]:
    def public_id(model, **lookup) -> str:  # type: ignore[no-untyped-def]
        return str(model.objects.for_workspace(workspace).filter(**lookup)[0].public_id)

    stage = public_id(LifecycleStage, name="Decision")
    persona = public_id(Persona, name="Climber")
    tag = public_id(Tag, name="tag-07")
    rare = public_id(Tag, name="rare")
    depth = int(contacts * 0.9)
    someone = Contact.objects.for_workspace(workspace).order_by("-created_at")[contacts // 3]
    return [
        ("first page (newest)", {}),
        ("filter: stage", {"stage": stage}),
        ("filter: status unsubscribed", {"status": "unsubscribed"}),
        ("filter: status complained (0.5%)", {"status": "complained"}),
        ("filter: persona + stage", {"persona": persona, "stage": stage}),
        ("filter: tag (5%)", {"tag": tag}),
        ("filter: rare tag (0.1%)", {"tag": rare}),
        ("search: common name 'grace'", {"q": "grace"}),
        ("search: one address", {"q": someone.email.split("@")[0] + "@"}),
        ("search: no match", {"q": "zzqx"}),
        ("sort: last activity", {"sort": "activity"}),
        ("sort: email", {"sort": "email"}),
        ("sort: oldest", {"sort": "oldest"}),
        (f"deep page (row {depth:,}, newest)", {"after": deep_cursor(workspace, "newest", depth)}),
        (
            f"deep page (row {depth:,}, activity)",
            {"sort": "activity", "after": deep_cursor(workspace, "activity", depth)},
        ),
        (
            f"deep page (row {depth:,}, email)",
            {"sort": "email", "after": deep_cursor(workspace, "email", depth)},
        ),
        (
            "deep page + filter stage",
            {"stage": stage, "after": deep_cursor(workspace, "newest", depth)},
        ),
    ]


def measure(client: Client, url: str, cases, base: float, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    medians = []
    print(f"{'page':42} {'median':>9} {'p95':>9} {'queries':>8} {'ratio':>7}  rows")
    for label, params in cases:
        response = client.get(url, params)
        assert response.status_code == 200, (label, response.status_code)
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, params)
        query_count = len(queries.captured_queries)  # now: later requests reset the log
        rows = response.content.count(b'name="contact" value=')
        median, p95 = timed(lambda p=params: client.get(url, p), repeat)
        medians.append(median)
        flag = "" if median < TARGET_MS else "  ABOVE TARGET"
        print(
            f"{label:42} {median:7.1f}ms {p95:7.1f}ms {query_count:8d}"
            f" {median / base:6.0f}x  {rows}{flag}"
        )
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per page")
    parser.add_argument("--keepdb", action="store_true", help="reuse the bench database")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    connection.settings_dict["TEST"]["NAME"] = BENCH_DB
    # The test client's host; no test environment, whose template instrumentation would
    # slow every render down and flatter nothing real.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=args.keepdb, serialize=False)
    try:
        workspace = Workspace.objects.filter(slug="bench-outdoor").first()
        if workspace is None or not args.keepdb:
            workspace = seed(args.contacts)
        else:
            print(f"reusing {BENCH_DB}")
        total = Contact.objects.for_workspace(workspace).count()
        run(workspace, total, args)
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def run(workspace: Workspace, total: int, args: argparse.Namespace) -> None:
    client = Client()
    client.force_login(Membership.objects.get(workspace=workspace).user)
    url = reverse("contact_list", kwargs={"workspace_slug": workspace.slug})
    cases = pages(workspace, total)
    with connection.cursor() as cursor:
        for name in PROPOSED_INDEXES:  # dropped for the comparison round
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
    base = baseline_ms(workspace, args.repeat)
    print(f"\ndatabase: PostgreSQL {connection.pg_version // 10000}, {total:,} contacts")
    print(f"baseline: bare SELECT ... ORDER BY created_at DESC LIMIT 51 = {base:.2f} ms\n")
    print("== without the two list indexes (dropped for comparison)")
    before = measure(client, url, cases, base, args.repeat)

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(SEARCH_INDEX_SQL)
    with connection.schema_editor() as editor:
        editor.add_index(Contact, ACTIVITY_INDEX)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    rebuilt = time.perf_counter() - started
    print(f"\n== as migrated, with the list indexes (rebuilt in {rebuilt:.0f} s)")
    after = measure(client, url, cases, base, args.repeat)

    count_url = reverse("contact_count", kwargs={"workspace_slug": workspace.slug})
    print("\n== the match count (loaded by the page after it shows)")
    for label, params in [("count: all", {}), ("count: stage", dict(cases[1][1]))]:
        median, p95 = timed(lambda p=params: client.get(count_url, p), max(args.repeat // 3, 3))
        print(f"{label:42} {median:7.1f}ms {p95:7.1f}ms")
    worst_before, worst_after = max(before), max(after)
    print(
        f"\nslowest page: {worst_before:.0f} ms without the list indexes, {worst_after:.0f} ms "
        f"as migrated (target {TARGET_MS} ms)"
    )


if __name__ == "__main__":
    main()

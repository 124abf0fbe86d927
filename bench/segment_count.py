"""How fast segments are at 1,000,000 contacts and 10,000,000 events.

Fills a throw-away PostgreSQL test database with --contacts contacts (default 1,000,000)
and --events events (default 10,000,000) in one workspace, plus 5% as many of each in a
neighbour workspace, with INSERT ... SELECT over generate_series (the rows never travel
through Python; the event table's secondary indexes are dropped for the load and built
again afterwards, as migrated). Events: page views, carts, orders with revenue, emails
received and opened, over the last 365 days. Then it measures, each as the median of
--repeat runs:

1. counting a segment of four conditions, two of them event conditions with windows
   ("subscribed, plan is pro, placed an order at least twice in the last 90 days, did not
   open an email in the last 30 days") through `matching_contacts(...).count()`, against
   the same count written by hand in SQL, in the same run (ratio; targets < 1 s, ≤ 1.5x);
2. the builder's live count: the HTMX endpoint the builder posts to on every change,
   through Django's test client signed in as the owner (count, sample, summary;
   target < 1.5 s);
3. the full refresh of that segment (the periodic task's work), once;
4. the incremental membership update after one new event: six segments exist, two of them
   read "order_placed"; one order is recorded through contacts.services.record_events,
   whose on-commit signal updates the segments inline. It prints the time of the update
   alone (refresh_for_contacts) and of the whole write, and which segments were touched
   (target < 50 ms, only the affected segments).

    .venv/bin/python bench/segment_count.py                       # 1,000,000 / 10,000,000
    .venv/bin/python bench/segment_count.py --contacts 20000 --events 200000   # a quick look
    .venv/bin/python bench/segment_count.py --keepdb              # reuse the seeded database
"""

from __future__ import annotations

import argparse
import json
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
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from contacts import services  # noqa: E402
from contacts.models import Contact, CustomField, Segment, Tag  # noqa: E402
from contacts.segments import membership  # noqa: E402
from contacts.segments.compiler import matching_contacts  # noqa: E402
from contacts.services import ensure_default_stages  # noqa: E402
from workspaces.models import Membership, Role, Workspace  # noqa: E402

BENCH_DB = "bench_segment_count"
COUNT_TARGET_MS = 1000
LIVE_TARGET_MS = 1500
INCREMENTAL_TARGET_MS = 50
RATIO_TARGET = 1.5

FOUR_CONDITIONS = {
    "type": "group",
    "match": "all",
    "children": [
        {"type": "status", "op": "is", "value": "subscribed"},
        {"type": "field", "field": "attributes.plan", "op": "equals", "value": "pro"},
        {
            "type": "event",
            "name": "order_placed",
            "performed": True,
            "count": {"op": "at_least", "value": 2},
            "window": {"kind": "last_days", "days": 90},
        },
        {
            "type": "event",
            "name": "email_opened",
            "performed": False,
            "window": {"kind": "last_days", "days": 30},
        },
    ],
}
# The same rules as a developer would write them by hand.
HAND_WRITTEN_SQL = """
SELECT count(*) FROM contacts_contact c
WHERE c.workspace_id = %(ws)s
  AND c.status = 'subscribed'
  AND lower(c.attributes ->> 'plan') = 'pro'
  AND c.id IN (
      SELECT e.contact_id FROM contacts_event e
      WHERE e.workspace_id = %(ws)s AND e.name = 'order_placed'
        AND e.occurred_at >= now() - interval '90 days'
      GROUP BY e.contact_id HAVING count(*) >= 2)
  AND NOT EXISTS (
      SELECT 1 FROM contacts_event e
      WHERE e.contact_id = c.id AND e.name = 'email_opened'
        AND e.occurred_at >= now() - interval '30 days')
"""

# --- data ------------------------------------------------------------------------------


def seed(contacts: int, events: int) -> Workspace:
    workspace = Workspace.objects.create(name="Bench Outdoor", slug="bench-outdoor")
    neighbour = Workspace.objects.create(name="Neighbour", slug="bench-neighbour")
    user = get_user_model().objects.create_user(
        username="bench@example.com", email="bench@example.com", password="bench-password-1"
    )
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    for ws in (workspace, neighbour):
        ensure_default_stages(workspace=ws)
        CustomField.objects.create(
            workspace=ws, key="plan", label="Plan", field_type="choice", choices=["free", "pro"]
        )
        Tag.objects.create(workspace=ws, name="vip")
    started = time.perf_counter()
    insert_contacts(workspace, contacts, prefix="")
    insert_contacts(neighbour, max(contacts // 20, 1), prefix="n")
    print(f"seeded {contacts:,} contacts (+5% next door) in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    saved = drop_event_indexes()
    insert_events(workspace, events)
    insert_events(neighbour, max(events // 20, 1))
    loaded = time.perf_counter() - started
    rebuild_indexes(saved)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_contact")
        cursor.execute("VACUUM ANALYZE contacts_event")
        cursor.execute("VACUUM ANALYZE contacts_contact_tags")
    print(
        f"seeded {events:,} events (+5% next door) in {loaded:.0f} s, indexes and "
        f"statistics in {time.perf_counter() - started - loaded:.0f} s"
    )
    return workspace


def insert_contacts(workspace: Workspace, count: int, prefix: str) -> None:
    # 85% subscribed; a quarter on the "pro" plan; a tenth tagged vip.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (
                workspace_id, public_id, created_at, updated_at, email, external_id,
                first_name, last_name, phone, timezone, locale, birthday, attributes, status,
                lifecycle_stage_id, persona_id, source, last_activity_at)
            SELECT %(ws)s, gen_random_uuid(),
                now() - make_interval(secs => (%(count)s - g) * 30),
                now(), 'c' || %(prefix)s || g || '@example.com', NULL,
                'First' || (g %% 500), 'Last' || (g %% 700), '', '', '',
                NULL,
                jsonb_build_object('plan', CASE WHEN g %% 4 = 0 THEN 'pro' ELSE 'free' END,
                                   'points', g %% 500),
                CASE WHEN g %% 20 < 2 THEN 'unsubscribed' WHEN g %% 20 = 2 THEN 'pending'
                     ELSE 'subscribed' END,
                NULL, NULL, 'import',
                now() - make_interval(secs => ((g::bigint * 7919) %% 31536000))
            FROM generate_series(1, %(count)s) AS g
            """,
            {"ws": workspace.pk, "count": count, "prefix": prefix},
        )
        cursor.execute(
            """
            INSERT INTO contacts_contact_tags (contact_id, tag_id)
            SELECT c.id, t.id FROM contacts_contact c
            JOIN contacts_tag t ON t.workspace_id = c.workspace_id AND t.name = 'vip'
            WHERE c.workspace_id = %s AND c.id %% 10 = 0
            """,
            [workspace.pk],
        )


def insert_events(workspace: Workspace, count: int) -> None:
    """About ten events per contact, over the last 365 days: 55% page views, 15% carts,
    10% orders (with revenue), 10% emails received, 7% opened, 3% sign-ups."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id), count(*) FROM contacts_contact WHERE workspace_id = %s",
            [workspace.pk],
        )
        first_id, contacts = cursor.fetchone()
        cursor.execute("SET synchronous_commit = off")
        step = 2_000_000
        for start in range(0, count, step):
            cursor.execute(
                """
                INSERT INTO contacts_event (
                    workspace_id, public_id, created_at, updated_at, received_at, contact_id,
                    anonymous_id, user_id, name, properties, context, occurred_at, source,
                    revenue, currency, message_id)
                SELECT %(ws)s, gen_random_uuid(), t, t, t, contact, '', '', name,
                    CASE name WHEN 'order_placed' THEN jsonb_build_object('total', g %% 300)
                              WHEN 'page_viewed' THEN jsonb_build_object('path', '/p/' || g %% 50)
                              ELSE '{}'::jsonb END,
                    '{}'::jsonb, t, 'api',
                    CASE WHEN name = 'order_placed' THEN (g %% 300)::numeric END,
                    CASE WHEN name = 'order_placed' THEN 'GBP' ELSE '' END,
                    NULL
                FROM (
                    SELECT g,
                        %(first)s + ((g::bigint * 2654435761) %% %(contacts)s) AS contact,
                        now() - make_interval(secs => ((g::bigint * 7919) %% 31536000)) AS t,
                        CASE WHEN g %% 100 < 55 THEN 'page_viewed'
                             WHEN g %% 100 < 70 THEN 'cart_updated'
                             WHEN g %% 100 < 80 THEN 'order_placed'
                             WHEN g %% 100 < 90 THEN 'email_received'
                             WHEN g %% 100 < 97 THEN 'email_opened'
                             ELSE 'signed_up' END AS name
                    FROM generate_series(%(low)s, %(high)s) AS g
                ) AS rows
                """,
                {
                    "ws": workspace.pk,
                    "first": first_id,
                    "contacts": contacts,
                    "low": start + 1,
                    "high": min(start + step, count),
                },
            )


def drop_event_indexes() -> list[tuple[str, str]]:
    """The event table's secondary indexes and unique constraints, dropped for the load."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, pg_get_indexdef(i.oid), c.conname
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            LEFT JOIN pg_constraint c ON c.conindid = i.oid
            WHERE x.indrelid = 'contacts_event'::regclass AND NOT x.indisprimary
            """
        )
        rows = cursor.fetchall()
        saved = []
        for name, definition, constraint in rows:
            if constraint:
                cursor.execute(f'ALTER TABLE contacts_event DROP CONSTRAINT "{constraint}"')
                attach = f'ADD CONSTRAINT "{constraint}" UNIQUE USING INDEX "{name}"'
                saved.append(("constraint", f"ALTER TABLE contacts_event {attach}", definition))
            else:
                cursor.execute(f'DROP INDEX "{name}"')
                saved.append(("index", "", definition))
    return saved


def rebuild_indexes(saved: list[tuple[str, str, str]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for kind, attach, definition in saved:
            cursor.execute(definition)
            if kind == "constraint":
                cursor.execute(attach)


# --- measuring ---------------------------------------------------------------------------


def timed(call, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median and slowest in ms, after one warm-up call."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def hand_count(workspace: Workspace) -> int:
    with connection.cursor() as cursor:
        cursor.execute(HAND_WRITTEN_SQL, {"ws": workspace.pk})
        return cursor.fetchone()[0]


def verdict(ok: bool) -> str:
    return "ok" if ok else "ABOVE TARGET"


def measure_count(workspace: Workspace, repeat: int, explain: bool) -> None:
    compiled = matching_contacts(workspace, FOUR_CONDITIONS)
    ours, hand = compiled.count(), hand_count(workspace)
    assert ours == hand, f"the compiled query counts {ours}, the hand-written SQL {hand}"
    orm_ms, orm_max = timed(lambda: matching_contacts(workspace, FOUR_CONDITIONS).count(), repeat)
    sql_ms, sql_max = timed(lambda: hand_count(workspace), repeat)
    ratio = orm_ms / sql_ms
    print(f"\n== 1. count of the four-condition segment ({ours:,} contacts match)")
    print(f"matching_contacts().count()   median {orm_ms:8.1f} ms   slowest {orm_max:8.1f} ms")
    print(f"hand-written SQL              median {sql_ms:8.1f} ms   slowest {sql_max:8.1f} ms")
    print(
        f"ratio {ratio:.2f} (target ≤ {RATIO_TARGET}: {verdict(ratio <= RATIO_TARGET)}); "
        f"under {COUNT_TARGET_MS} ms: {verdict(orm_ms < COUNT_TARGET_MS)}"
    )
    if explain:
        print(compiled.explain(analyze=True))


def measure_live_count(workspace: Workspace, repeat: int) -> None:
    client = Client()
    client.force_login(Membership.objects.get(workspace=workspace).user)
    url = reverse("segment_builder", kwargs={"workspace_slug": workspace.slug})
    data = {"rules": json.dumps(FOUR_CONDITIONS), "kind": "dynamic", "name": ""}

    def post() -> None:
        response = client.post(url, data, headers={"HX-Request": "true"})
        assert response.status_code == 200, response.status_code
        assert b'data-testid="preview-count"' in response.content

    median, slowest = timed(post, repeat)
    print("\n== 2. the builder's live count (POST segments/builder/: count, sample, summary)")
    print(f"median {median:8.1f} ms   slowest {slowest:8.1f} ms   under {LIVE_TARGET_MS} ms: "
          f"{verdict(median < LIVE_TARGET_MS)}")  # fmt: skip


def make_segments(workspace: Workspace) -> dict[str, Segment]:
    vip = Tag.objects.for_workspace(workspace).get(name="vip")

    def rules(*children: dict) -> dict:
        return {"type": "group", "match": "all", "children": list(children)}

    # Saving fills a segment inline in a small workspace and in Celery in a big one; here
    # it is filled inline so that the time of the full refresh can be read.
    membership.INLINE_REFRESH_CONTACTS = 10**9
    started = time.perf_counter()
    four = membership.create_segment(workspace=workspace, name="Four", rules=FOUR_CONDITIONS)
    first = time.perf_counter() - started
    others = {
        "Big spenders (order_placed)": rules(
            {"type": "revenue", "name": "order_placed", "op": "gt", "value": 2000}
        ),
        "VIP tag": rules({"type": "tag", "op": "has", "value": str(vip.public_id)}),
        "Browsed this week (page_viewed)": rules(
            {
                "type": "event",
                "name": "page_viewed",
                "performed": True,
                "window": {"kind": "last_days", "days": 7},
            }
        ),
        "Named First7": rules(
            {"type": "field", "field": "first_name", "op": "equals", "value": "First7"}
        ),
    }
    segments = {"Four conditions (order_placed, email_opened)": four}
    for name, tree in others.items():
        segments[name] = membership.create_segment(workspace=workspace, name=name, rules=tree)
    segments["Static list"] = membership.create_segment(
        workspace=workspace, name="Static list", kind="static"
    )
    total = time.perf_counter() - started
    print("\n== 3. full refresh (what saving a segment and the periodic task do)")
    print(f"the four-condition segment: {first * 1000:8.0f} ms ({four.member_count:,} members)")
    print(
        "all six segments saved and filled in "
        f"{total:.1f} s ({', '.join(f'{s.member_count:,}' for s in segments.values())} members)"
    )
    return segments


def measure_incremental(workspace: Workspace, segments: dict[str, Segment], repeat: int) -> None:
    names = {segment.pk: name for name, segment in segments.items()}
    contacts = list(
        Contact.objects.for_workspace(workspace)
        .filter(status="subscribed", attributes__plan="pro")
        .order_by("pk")
        .values_list("pk", flat=True)[: repeat * 2 + 2]
    )
    touched: list[set[int]] = []
    update_ms: list[float] = []
    original = membership.refresh_for_contacts

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        results = original(**kwargs)
        update_ms.append((time.perf_counter() - started) * 1000)
        touched.append(set(results))
        return results

    membership.refresh_for_contacts = spy
    write_ms = []
    try:
        for contact_id in contacts:
            started = time.perf_counter()
            services.record_events(
                workspace=workspace,
                events=[
                    services.EventInput(
                        name="order_placed",
                        contact_id=contact_id,
                        properties={"total": 120},
                        revenue=120,
                    )
                ],
            )
            write_ms.append((time.perf_counter() - started) * 1000)
    finally:
        membership.refresh_for_contacts = original
    update_ms, write_ms = update_ms[2:], write_ms[2:]  # warm-up
    all_touched = set().union(*touched)
    median = statistics.median(update_ms)
    print("\n== 4. incremental update after one new order_placed event (six segments)")
    print(f"membership update (refresh_for_contacts): median {median:6.1f} ms   "
          f"slowest {max(update_ms):6.1f} ms   under {INCREMENTAL_TARGET_MS} ms: "
          f"{verdict(median < INCREMENTAL_TARGET_MS)}")  # fmt: skip
    print(f"record_events + on-commit update, whole:  median {statistics.median(write_ms):6.1f} ms")
    print("segments touched: " + ", ".join(sorted(names[pk] for pk in all_touched)))
    untouched = sorted(name for pk, name in names.items() if pk not in all_touched)
    print("left alone:       " + ", ".join(untouched))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per figure")
    parser.add_argument("--keepdb", action="store_true", help="reuse the bench database")
    parser.add_argument("--explain", action="store_true", help="print the count's plan")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    connection.settings_dict["TEST"]["NAME"] = BENCH_DB
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=args.keepdb, serialize=False)
    try:
        workspace = Workspace.objects.filter(slug="bench-outdoor").first()
        if workspace is None or not args.keepdb:
            workspace = seed(args.contacts, args.events)
        else:
            print(f"reusing {BENCH_DB}")
            Segment.objects.for_workspace(workspace).delete()
        total = Contact.objects.for_workspace(workspace).count()
        print(f"database: PostgreSQL {connection.pg_version // 10000}, {total:,} contacts")
        measure_count(workspace, args.repeat, args.explain)
        measure_live_count(workspace, args.repeat)
        segments = make_segments(workspace)
        measure_incremental(workspace, segments, args.repeat * 2)
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()

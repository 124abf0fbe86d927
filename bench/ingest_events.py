"""Ingest throughput: POST /v1/batch with 100 Segment events per call, end to end.

On a throw-away test database it seeds a workspace with an API key and --contacts known
contacts, starts a real WSGI server in a child process (gunicorn with one sync worker per
core when it is installed, else a pre-forked wsgiref server), and drives it from client
threads for --seconds (default 60) with Segment batches sent as the Segment libraries do:
HTTP Basic with the key as the user name, 80 % track calls of known users (a few of them
orders with revenue), 20 % page views of anonymous visitors, each with its messageId.
It prints the sustained rate (overall and the slowest 5-second window) and the latency of
a call, then the rate of the ingest service alone (no HTTP, one process), then loads the
same events into the same table with a raw psycopg COPY, the baseline, and prints the
ratio. Target: at least 5,000 events/s sustained on 2 cores.

    .venv/bin/python bench/ingest_events.py                  # DATABASE_URL names PostgreSQL
    .venv/bin/python bench/ingest_events.py --seconds 10     # a quick look
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log kept in memory
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use")

import django  # noqa: E402

django.setup()

from _http_server import free_port, server_env, stop_server  # noqa: E402
from django.db import connection  # noqa: E402

BATCH_SIZE = 100
WINDOW_SECONDS = 5
WARM_UP_SECONDS = 3
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
PRODUCTS = ["Trail shoe", "Rain jacket", "Wool socks", "Day pack", "Head torch", "Flask"]
TRACKED = ["Product Viewed", "Product Viewed", "Product Added", "Checkout Started"]
PAGES = ["Home", "Pricing", "Blog", "Trail shoes", "Checkout"]


# --- the events --------------------------------------------------------------------------


def segment_call(seq: int, contacts: int) -> dict:
    """Event number `seq`, always the same for the same number (the COPY loads them again)."""
    moment = (START + dt.timedelta(milliseconds=seq * 7)).isoformat().replace("+00:00", "Z")
    common = {
        "messageId": f"bench-{seq}",
        "timestamp": moment,
        "context": {
            "ip": f"203.0.113.{seq % 250}",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            "library": {"name": "analytics-python", "version": "2.3.3"},
        },
    }
    if seq % 5 == 0:
        page = PAGES[seq % len(PAGES)]
        return {
            **common,
            "type": "page",
            "anonymousId": f"visitor-{seq % 50_000}",
            "name": page,
            "properties": {"path": f"/{page.lower().replace(' ', '-')}", "referrer": ""},
        }
    product = PRODUCTS[seq % len(PRODUCTS)]
    call = {
        **common,
        "type": "track",
        "userId": f"user-{seq % contacts}",
        "event": TRACKED[seq % len(TRACKED)],
        "properties": {"product": product, "sku": f"SKU-{seq % 997}", "price": 49.0},
    }
    if seq % 17 == 0:
        call["event"] = "Order Completed"
        call["properties"] = {"order_id": f"o-{seq}", "total": 98.5, "currency": "EUR"}
    return call


def batch_body(first_seq: int, contacts: int) -> bytes:
    calls = [segment_call(seq, contacts) for seq in range(first_seq, first_seq + BATCH_SIZE)]
    return json.dumps({"batch": calls}).encode()


# --- the database -----------------------------------------------------------------------


def seed(contacts: int) -> tuple[object, str, dict[str, int]]:
    from contacts.models import Contact
    from workspaces.models import ApiKey, Workspace

    workspace = Workspace.objects.create(name="Bench", slug="bench-ingest")
    api_key = ApiKey(workspace=workspace, name="bench")
    secret = ApiKey.objects.assign_key(api_key)
    api_key.save()
    Contact.objects.for_workspace(workspace).bulk_create(
        (
            Contact(workspace=workspace, email=f"user{n}@example.com", external_id=f"user-{n}")
            for n in range(contacts)
        ),
        batch_size=2000,
    )
    ids = dict(Contact.objects.for_workspace(workspace).values_list("external_id", "pk").iterator())
    return workspace, secret, ids


def stored_events(workspace) -> int:  # type: ignore[no-untyped-def]
    from contacts.models import Event

    return Event.objects.for_workspace(workspace).count()


def copy_baseline(workspace, sent: int, contacts: int, ids: dict[str, int]) -> float:  # type: ignore[no-untyped-def]
    """Seconds for a raw psycopg COPY of events 0..sent-1 into the emptied event table
    (same indexes and constraints). Rows are built outside the timer, 10,000 at a time."""
    from contacts.models import Event

    Event.objects.for_workspace(workspace).delete()
    columns = (
        "workspace_id, public_id, created_at, updated_at, contact_id, anonymous_id, user_id, "
        "name, properties, context, occurred_at, received_at, source, revenue, currency, "
        "message_id"
    )
    now = dt.datetime.now(dt.UTC)
    elapsed = 0.0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY contacts_event ({columns}) FROM STDIN") as copy:
            for start in range(0, sent, 10_000):
                rows = [
                    _copy_row(workspace.pk, segment_call(seq, contacts), ids, now)
                    for seq in range(start, min(start + 10_000, sent))
                ]
                began = time.perf_counter()
                for row in rows:
                    copy.write_row(row)
                elapsed += time.perf_counter() - began
            began = time.perf_counter()
        elapsed += time.perf_counter() - began  # the end of COPY: the server finishes the load
    assert Event.objects.for_workspace(workspace).count() == sent
    return elapsed


def _copy_row(workspace_id: int, call: dict, ids: dict[str, int], now: dt.datetime) -> tuple:
    properties = dict(call["properties"])
    if call["type"] == "page":
        name, properties["name"] = "page_viewed", call["name"]
    else:
        name = call["event"]
    contact_id = ids.get(call.get("userId", ""))
    total = properties.get("total")
    return (
        workspace_id,
        uuid.uuid4(),
        now,
        now,
        contact_id,
        call.get("anonymousId", ""),
        "" if contact_id else call.get("userId", ""),
        name,
        json.dumps(properties),
        json.dumps(call["context"]),
        call["timestamp"],
        now,
        "api",
        total,
        properties.get("currency", ""),
        call["messageId"],
    )


# --- the server ---------------------------------------------------------------------------


def start_server(port: int, workers: int) -> tuple[subprocess.Popen, str]:
    env = server_env()
    try:
        import gunicorn  # noqa: F401

        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync",
            "--preload", "--backlog", "512", "--log-level", "warning",
        ]  # fmt: skip
        name = f"gunicorn, {workers} sync workers"
    except ImportError:
        command = [sys.executable, __file__, "--serve", str(port), "--workers", str(workers)]
        name = f"wsgiref pre-forked into {workers} processes (install gunicorn for keep-alive)"
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    return process, name


def serve_wsgiref(port: int, workers: int) -> None:
    """The fallback server: wsgiref's single-threaded server, forked once per core."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    class Server(WSGIServer):
        request_queue_size = 512

    server = make_server("127.0.0.1", port, get_wsgi_application(), Server, QuietHandler)
    connections.close_all()
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    server.serve_forever()


# --- the clients --------------------------------------------------------------------------


class Load:
    """Client threads that post batches until told to stop, counting what was accepted."""

    def __init__(self, url: str, secret: str, contacts: int, threads: int) -> None:
        self.url = url
        token = base64.b64encode(f"{secret}:".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.contacts = contacts
        self.next_batch = itertools.count()
        self.lock = threading.Lock()
        self.done: list[tuple[float, int, float]] = []  # (finished at, events, seconds)
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        import requests

        session = requests.Session()
        while not self.stop.is_set():
            with self.lock:
                first = next(self.next_batch) * BATCH_SIZE
            body = batch_body(first, self.contacts)
            began = time.perf_counter()
            response = session.post(self.url, data=body, headers=self.headers, timeout=60)
            finished = time.perf_counter()
            result = response.json() if response.status_code == 200 else {}
            if not result.get("success"):
                self.failures.append(f"{response.status_code}: {response.text[:200]}")
                continue
            with self.lock:
                self.done.append((finished, result["accepted"], finished - began))

    def sent(self) -> int:
        return len(self.done) * BATCH_SIZE + len(self.failures) * BATCH_SIZE


def wait_until_ready(url: str, secret: str, process: subprocess.Popen) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("The server stopped while starting; see its output above.")
        try:
            response = requests.post(url, json={"batch": []}, auth=(secret, ""), timeout=5)
            if response.status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    sys.exit("The server did not answer within 60 s.")


def drive(load: Load, seconds: float) -> dict[str, float]:
    for thread in load.threads:
        thread.start()
    time.sleep(WARM_UP_SECONDS)
    with load.lock:
        began, skip = time.perf_counter(), len(load.done)
    time.sleep(seconds)
    with load.lock:
        ended = time.perf_counter()
        measured = [d for d in load.done[skip:] if d[0] <= ended]
    load.stop.set()
    for thread in load.threads:
        thread.join()
    events = sum(accepted for _, accepted, _ in measured)
    windows: dict[int, int] = {}
    for finished, accepted, _ in measured:
        slot = int((finished - began) // WINDOW_SECONDS)
        windows[slot] = windows.get(slot, 0) + accepted
    full = [windows.get(slot, 0) for slot in range(int(seconds // WINDOW_SECONDS))]
    latencies = sorted(seconds for _, _, seconds in measured)
    return {
        "events": events,
        "rate": events / (ended - began),
        "slowest_window": min(full) / WINDOW_SECONDS if full else float("nan"),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[int(len(latencies) * 0.95)] if latencies else float("nan"),
    }


def service_rate(workspace, contacts: int, first_batch: int, seconds: float) -> float:  # type: ignore[no-untyped-def]
    """Events/s through parse_call + ingest_calls in this one process, without HTTP."""
    from django.utils import timezone

    from contacts.ingest import ingest_calls, parse_call

    events, began = 0, time.perf_counter()
    for number in itertools.count(first_batch):
        if time.perf_counter() - began >= seconds:
            break
        payload = json.loads(batch_body(number * BATCH_SIZE, contacts))
        now = timezone.now()
        calls = [
            (i, parse_call(call, call["type"], now=now)) for i, call in enumerate(payload["batch"])
        ]
        events += ingest_calls(workspace=workspace, calls=calls, now=now).accepted
    return events / (time.perf_counter() - began)


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured time (default 60)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--clients", type=int, default=None, help="threads (default 2 per worker)")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_wsgiref(args.serve, args.workers)
        return
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL (its baseline is COPY): set DATABASE_URL.")

    connection.settings_dict.setdefault("TEST", {})["NAME"] = (
        f"test_{connection.settings_dict['NAME']}_ingest_bench"
    )
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    process = None
    try:
        workspace, secret, ids = seed(args.contacts)
        port = free_port()
        process, server = start_server(port, args.workers)
        url = f"http://127.0.0.1:{port}/v1/batch"
        wait_until_ready(url, secret, process)
        load = Load(url, secret, args.contacts, args.clients or 2 * args.workers)
        http = drive(load, args.seconds)
        stop_server(process)
        process = None
        if load.failures:
            sys.exit(f"{len(load.failures)} calls failed, e.g. {load.failures[0]}")
        sent = load.sent()
        stored = stored_events(workspace)
        service_seconds = min(10.0, max(2.0, args.seconds / 6))
        service = service_rate(workspace, args.contacts, sent // BATCH_SIZE + 1, service_seconds)
        copy_seconds = copy_baseline(workspace, sent, args.contacts, ids)
    finally:
        if process is not None:
            stop_server(process)
        connection.creation.destroy_test_db(old_name, verbosity=0)

    copy_rate = sent / copy_seconds
    figures = [
        ("events sent and stored", f"{sent:,} / {stored:,}"),
        (f"HTTP /v1/batch, {args.seconds:.0f} s measured", f"{http['rate']:,.0f} events/s"),
        (f"  slowest {WINDOW_SECONDS}-second window", f"{http['slowest_window']:,.0f} events/s"),
        ("  one call, median", f"{http['p50'] * 1000:,.1f} ms"),
        ("  one call, 95th percentile", f"{http['p95'] * 1000:,.1f} ms"),
        ("ingest service alone, 1 process", f"{service:,.0f} events/s"),
        ("raw psycopg COPY, same events", f"{copy_rate:,.0f} events/s"),
        ("ratio HTTP / COPY (time per event)", f"{copy_rate / http['rate']:,.1f}"),
    ]
    print(f"database: {connection.vendor}; server: {server}; cores: {os.cpu_count()}")
    print(f"client threads: {len(load.threads)}; {BATCH_SIZE} events per /v1/batch call")
    for label, value in figures:
        print(f"{label + ':':<40}{value:>22}")
    target = "met" if http["slowest_window"] >= 5000 else "NOT met"
    print(f"target of 5,000 events/s sustained: {target}")


if __name__ == "__main__":
    main()

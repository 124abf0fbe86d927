"""Open pixel and click redirect under a steady 500 requests/s, and the link rewriting that
runs once per recipient.

1. `track_html` on personalised gallery emails (about 15 KB): microseconds per recipient,
   against the personalisation of the same email (the work a send already does per
   recipient) and a bare scan of the HTML with the same regex. Target: well under 100 µs.
2. HTTP. On a throw-away test database it seeds a workspace with --messages sent
   messages, starts gunicorn (2 x cores + 1 sync workers, persistent database
   connections) and a Celery worker for the `default` queue, and drives the server
   open-loop at --rate requests/s from a pool of client threads, each request on a new
   connection as mail clients do:
     a. the baseline: a bare Django view returning the same 43-byte GIF, through the same
        middleware and server (the URL exists only in this benchmark's URLconf);
     b. the tracking endpoints: half open pixels, half click redirects of random messages.
   It prints p50 / p95 / p99 / max of each and the ratio to the baseline, then waits until
   the worker has stored every hit (message event rows = requests) and prints how long
   that took after the last request. Target: p99 under 20 ms at 500 requests/s.

The hits travel through Redis database 15 (its `default` queue is emptied first) when
Redis answers on 127.0.0.1:6379; without Redis the web processes store them themselves
(CELERY_TASK_ALWAYS_EAGER), and the output says so.

    .venv/bin/python bench/tracking_endpoints.py                # DATABASE_URL names PostgreSQL
    .venv/bin/python bench/tracking_endpoints.py --seconds 5    # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import re
import socket
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

from _http_server import database_url, free_port, server_env, stop_server  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402

from campaigns.tracking_views import NO_STORE, PIXEL_GIF  # noqa: E402

BROKER = "redis://127.0.0.1:6379/15"
WARM_UP_SECONDS = 2
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"
BARE_PATH = "/bench/bare.gif"


# --- the server's URLconf: the app plus the baseline view ---------------------------------


def bare_gif(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = NO_STORE
    return response


# After the app's own URLs, so that resolving it walks the same patterns a tracking URL does.
urlpatterns = [path("", include("config.urls")), path(BARE_PATH.lstrip("/"), bare_gif)]

if os.environ.get("MAILPATH_BENCH_SERVER"):  # imported by gunicorn as the WSGI app
    from django.core.wsgi import get_wsgi_application

    settings.ROOT_URLCONF = __name__
    application = get_wsgi_application()


# --- 1. track_html -----------------------------------------------------------------------


def best_microseconds(work, count: int, rounds: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        for index in range(count):
            work(index)
        best = min(best, (time.perf_counter() - began) / count)
    return best * 1e6


BRAND_LINKS = (("instagram", "https://instagram.com/acme"), ("facebook", "https://fb.com/a"))


def track_html_figures() -> None:
    print("1. track_html per recipient (best of 5 rounds of 2,000 recipients)")
    for key in ("welcome", "abandoned_cart", "referral"):
        track_html_of(key)


def track_html_of(key: str) -> None:
    from campaigns.gallery import get_starter
    from campaigns.models import Message, SendingPolicy
    from campaigns.rendering.brand import Brand
    from campaigns.rendering.compile import TemplateContent, compile_email
    from campaigns.rendering.context import SAMPLE_CONTACT, SAMPLE_EVENT, render_context
    from campaigns.sending import links

    brand = Brand(
        name="Acme Outdoor",
        logo_url="https://app.example.com/brand/logo.png",
        postal_address="12 Trail Road, Boulder, CO 80302",
        social_links=BRAND_LINKS,
    )
    starter = get_starter(key)
    content = TemplateContent(
        kind="blocks", subject=starter.subject, preheader=starter.preheader, blocks=starter.blocks
    )
    compiled = compile_email(content, brand)
    messages = [
        Message(workspace_id=1, public_id=uuid.uuid4(), source_id="spring-sale")
        for _ in range(2000)
    ]
    contexts = [
        render_context(
            contact=dict(SAMPLE_CONTACT),
            brand=brand,
            workspace={"name": "Acme Outdoor", "timezone": "UTC"},
            event=SAMPLE_EVENT,
            links=links.link_context(message),
        )
        for message in messages[:50]
    ]
    htmls = [compiled.personalise(context).html for context in contexts]
    wrapped = links.track_html(htmls[0], messages[0], SendingPolicy()).count("/c/")

    def track(index: int, policy: SendingPolicy) -> None:
        message = messages[index]
        message.__dict__.pop("_link_token", None)  # a fresh message, as in a real send
        links.track_html(htmls[index % 50], message, policy)

    plain, utm = SendingPolicy(), SendingPolicy(utm_enabled=True)
    tracking = best_microseconds(lambda i: track(i, plain), len(messages))
    with_utm = best_microseconds(lambda i: track(i, utm), len(messages))
    scan = best_microseconds(lambda i: links._ANCHOR_HREF.findall(htmls[i % 50]), 2000)
    personalise = best_microseconds(lambda i: compiled.personalise(contexts[i % 50]), 200)
    print(
        f"  {key}: {len(htmls[0]) / 1024:.1f} KB, {wrapped} links wrapped\n"
        f"    track_html (clicks + pixel)        {tracking:7.1f} µs   (target well under 100)\n"
        f"    track_html with UTM parameters     {with_utm:7.1f} µs\n"
        f"    bare regex scan of the same HTML   {scan:7.1f} µs\n"
        f"    personalising it (Liquid)          {personalise:7.1f} µs"
        f"   -> track_html adds {tracking / personalise:.0%}"
    )


# --- 2. HTTP -----------------------------------------------------------------------------


def seed(count: int) -> tuple[list[str], list[str]]:
    """A workspace with `count` messages sent an hour ago; their pixel and click paths."""
    from django.utils import timezone

    from campaigns.models import Message
    from campaigns.sending import links
    from contacts.models import Contact
    from workspaces.models import Workspace

    workspace = Workspace.objects.create(name="Bench", slug="bench-tracking")
    Contact.objects.for_workspace(workspace).bulk_create(
        Contact(workspace=workspace, email=f"reader{n}@example.com") for n in range(count)
    )
    contacts = list(Contact.objects.for_workspace(workspace).values_list("pk", flat=True))
    sent_at = timezone.now() - dt.timedelta(hours=1)
    messages = Message.objects.for_workspace(workspace).bulk_create(
        (
            Message(
                workspace=workspace,
                contact_id=contact_id,
                to_email=f"reader{n}@example.com",
                source="campaign",
                source_id="bench-campaign",
                idempotency_key=f"bench:{n}",
                status="sent",
                subject="Spring sale",
                sent_at=sent_at,
            )
            for n, contact_id in enumerate(contacts)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would keep them
        cursor.execute("ANALYZE campaigns_message")
    opens = [f"/o/{links.message_token(m)}.gif" for m in messages]
    clicks = []
    for n, message in enumerate(messages):
        url = links.click_url(links.message_token(message), f"https://shop.example.com/p/{n}?x=1")
        clicks.append(url.split(settings.MAILPATH_TRACKING_URL, 1)[1])
    return opens, clicks


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_server(port: int, workers: int, broker: str | None) -> subprocess.Popen:
    env = server_env(MAILPATH_BENCH_SERVER="1")
    if broker:
        env["CELERY_BROKER_URL"] = broker
    else:
        env["CELERY_TASK_ALWAYS_EAGER"] = "true"
    command = [
        sys.executable, "-m", "gunicorn", "tracking_endpoints:application",
        "--pythonpath", str(ROOT / "bench"), "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--worker-class", "sync", "--preload",
        "--backlog", "2048", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def fetch(port: int, target: str) -> tuple[int, float]:
    """One GET on a fresh connection, as a mail client's image fetch or a click: status and
    seconds from connecting until the whole response (Content-Length) is in, which is when
    a browser moves on. The server may still be recording the hit after that."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {BROWSER}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    began = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        while length and len(body) < int(length[1]):
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        elapsed = time.perf_counter() - began
    return int(head[9:12]) if head.startswith(b"HTTP/1.") else 0, elapsed


def wait_until_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("The server stopped while starting; see its output above.")
        try:
            if fetch(port, BARE_PATH)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("The server did not answer within 60 s.")


def drive(port: int, targets: list[tuple[str, str]], rate: float, seconds: float, threads: int):  # type: ignore[no-untyped-def]
    """Open loop: request n is due at start + n / rate whatever happened to the others.
    Returns {kind: [latency, ...]} for requests due after the warm-up, the failures, and
    the share of requests that left the client more than 5 ms late."""
    total = int(rate * (WARM_UP_SECONDS + seconds))
    counter = itertools.count()
    lock = threading.Lock()
    results: dict[str, list[float]] = {}
    failures: list[str] = []
    late = [0]
    start = time.perf_counter() + 0.2

    def worker() -> None:
        while True:
            with lock:
                number = next(counter)
            if number >= total:
                return
            due = start + number / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            elif pause < -0.005:
                with lock:
                    late[0] += 1
            kind, target = targets[number % len(targets)]
            try:
                status, elapsed = fetch(port, target)
            except OSError as exc:
                failures.append(f"{kind}: {exc}")
                continue
            expected = 302 if kind == "click" else 200
            if status != expected:
                failures.append(f"{kind}: HTTP {status}")
            if number >= rate * WARM_UP_SECONDS:
                with lock:
                    results.setdefault(kind, []).append(elapsed)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results, failures, late[0] / total


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

    return {
        "n": len(ordered),
        "p50": statistics.median(ordered) * 1000,
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1] * 1000,
    }


def purge_broker() -> int:
    from celery import Celery

    app = Celery(broker=BROKER)
    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge("default") or 0


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default",
        "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-l", "WARNING",
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )


def wait_for_events(count: int, timeout: float = 120) -> float:
    """Seconds until `count` message events are stored (inf if they never are)."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if stored_events() >= count:
            return time.perf_counter() - began
        time.sleep(0.1)
    return float("inf")


def stored_events() -> int:
    from campaigns.models import MessageEvent

    return MessageEvent.all_workspaces.count()


def http_figures(args: argparse.Namespace) -> None:
    if connection.vendor != "postgresql":
        sys.exit("The HTTP part needs PostgreSQL: set DATABASE_URL.")
    connection.settings_dict.setdefault("TEST", {})["NAME"] = (
        f"test_{connection.settings_dict['NAME']}_tracking_bench"
    )
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    broker = BROKER if redis_answers() else None
    if broker:
        purge_broker()  # nothing left over from an interrupted run
    process = worker = None
    try:
        opens, clicks = seed(args.messages)
        random.seed(6)
        mixed = [("open", t) for t in opens] + [("click", t) for t in clicks]
        random.shuffle(mixed)
        connection.close()  # the server's workers need the connections more than we do
        port = free_port()
        process = start_server(port, args.workers, broker)
        worker = start_worker() if broker else None
        wait_until_ready(port, process)
        load_before = os.getloadavg()[0]
        baseline, bare_failures, bare_late = drive(
            port, [("bare", BARE_PATH)], args.rate, args.seconds, args.clients
        )
        tracking, failures, late = drive(port, mixed, args.rate, args.seconds, args.clients)
        load_after = os.getloadavg()[0]
        sent = int(args.rate * (WARM_UP_SECONDS + args.seconds))
        lag = wait_for_events(sent)
        events = stored_events()
    finally:
        for started in (process, worker):
            if started is not None:
                stop_server(started)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)

    if bare_failures or failures:
        failed = bare_failures + failures
        sys.exit(f"{len(failed)} requests failed, e.g. {failed[0]}")
    storing = "a Celery worker via Redis" if broker else "the web processes (no Redis)"
    print(
        f"\n2. HTTP at {args.rate:.0f} requests/s for {args.seconds:.0f} s after a "
        f"{WARM_UP_SECONDS} s warm-up; gunicorn, {args.workers} sync workers, "
        f"{os.cpu_count()} cores;\n   {args.clients} client threads, one connection per "
        f"request; hits stored by {storing}"
    )
    print(f"   {'':<28}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    base = percentiles(baseline["bare"])
    both = percentiles(tracking["open"] + tracking["click"])
    rows = [
        ("baseline: bare Django GIF", base),
        ("open pixel /o/", percentiles(tracking["open"])),
        ("click redirect /c/", percentiles(tracking["click"])),
        ("opens + clicks", both),
    ]
    for label, f in rows:
        print(
            f"   {label:<28}{f['n']:>7}{f['p50']:>9.2f}{f['p95']:>9.2f}{f['p99']:>9.2f}"
            f"{f['max']:>9.1f}"
        )
    print(
        f"   ratio to the baseline: p50 {both['p50'] / base['p50']:.2f}, "
        f"p99 {both['p99'] / base['p99']:.2f}"
    )
    print(
        f"   requests the client sent more than 5 ms late: baseline {bare_late:.1%}, "
        f"tracking {late:.1%}"
    )
    print(
        f"   message events stored / tracking requests: {events:,} / {sent:,}, all stored "
        f"{lag:.1f} s after the last request"
    )
    print(
        f"   1-minute load average: {load_before:.2f} before, {load_after:.2f} after "
        "(other work on the machine shows up as late requests and a slow p99)"
    )
    worst = max(rows[1][1]["p99"], rows[2][1]["p99"])
    print(f"   target p99 < 20 ms: {'met' if worst < 20 else 'NOT met'} ({worst:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured time per phase")
    parser.add_argument("--rate", type=float, default=500, help="requests per second")
    parser.add_argument(
        "--workers", type=int, default=2 * (os.cpu_count() or 2) + 1, help="gunicorn's 2n+1"
    )
    parser.add_argument("--clients", type=int, default=48, help="client threads")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--skip-html", action="store_true", help="only the HTTP part")
    args = parser.parse_args()
    if not args.skip_html:
        track_html_figures()
    http_figures(args)


if __name__ == "__main__":
    main()

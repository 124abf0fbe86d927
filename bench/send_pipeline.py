"""The sending pipeline end to end: enqueue, claim, policies, personalise, track, hand to
the ESP, record; through the shared mock ESP speaking Postmark's batch API.

On a throw-away test database it seeds a workspace with --recipients contacts, the
gallery's welcome template and a brand kit, connects the workspace to Postmark with the
mock ESP (/work/shared/tools/mock_esp.py, --latency-ms 20 per call) as its API, and starts
real Celery workers (`celery -A config worker -Q send -c N`, a Redis broker). The clock
runs from the enqueue call (one bulk insert of every recipient, which kicks the send
tasks) until no message is queued or sending. It samples the worker processes' memory
(RSS) all along, asks the mock ESP's referee for duplicates and missing List-Unsubscribe
headers, and compares the rate with a bare loop that only personalises the same messages
(compiled once, Liquid per recipient) in one process.

    .venv/bin/python bench/send_pipeline.py                       # 100,000 recipients
    .venv/bin/python bench/send_pipeline.py --no-batch-api        # calls in flight instead
    .venv/bin/python bench/send_pipeline.py --recipients 20000    # a quick look

Target: at least 1,000 messages/s with 2 worker processes on 2 cores, worker RSS flat and
under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log kept in memory
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use")
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ["CELERY_BROKER_URL"] = BROKER

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from _http_server import free_port  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

MOCK_ESP = Path(os.environ.get("MAILPATH_MOCK_ESP", "/work/shared/tools/mock_esp.py"))
SAMPLE_EVERY = 0.25  # seconds between memory samples
BEAT_SECONDS = 5.0  # a deliver task now and then for retries that came due, as beat does
TIMEOUT_SECONDS = 900


# --- the data -----------------------------------------------------------------------------


def seed(recipients: int, mock_url: str):  # type: ignore[no-untyped-def]
    from campaigns.gallery import get_starter
    from campaigns.models import EmailTemplate, EspConnection
    from campaigns.sending import secrets
    from campaigns.services import update_brand_kit
    from contacts.models import Contact
    from workspaces.models import Workspace

    workspace = Workspace.objects.create(
        name="Acme Outdoor",
        slug="bench-send",
        default_from_name="Acme Outdoor",
        default_from_email="news@acme-outdoor.example.com",
        postal_address="12 Trail Road, Boulder, CO 80302",
    )
    update_brand_kit(workspace, footer_text="You signed up at acme-outdoor.example.com.")
    starter = get_starter("welcome")
    template = EmailTemplate.objects.create(
        workspace=workspace,
        name="Welcome",
        purpose="marketing",
        kind="blocks",
        subject=starter.subject,
        preheader=starter.preheader,
        blocks=starter.blocks,
    )
    EspConnection.objects.create(
        workspace=workspace,
        provider="postmark",
        credentials=secrets.encrypt({"server_token": "bench-token"}),
        settings={"api_url": mock_url},
        rate_per_second=5000,
        status="ok",
    )
    names = ["Ann", "Bo", "Chidi", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ines", "Jon"]
    Contact.objects.for_workspace(workspace).bulk_create(
        (
            Contact(
                workspace=workspace,
                email=f"reader{n}@example.com",
                first_name=names[n % len(names)],
                last_name=f"Reader{n}",
                timezone="Europe/Berlin" if n % 3 else "",
            )
            for n in range(recipients)
        ),
        batch_size=5000,
    )
    return workspace, template


# --- the processes -----------------------------------------------------------------------


def start_mock(latency_ms: float) -> tuple[subprocess.Popen, str]:
    if not MOCK_ESP.exists():
        sys.exit(f"The mock ESP is not at {MOCK_ESP}: set MAILPATH_MOCK_ESP.")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(MOCK_ESP), "--port", str(port), "--latency-ms", str(latency_ms)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            requests.get(url + "_stats", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.05)
    sys.exit("The mock ESP did not start.")


def start_workers(concurrency: int, batch_api: bool, threads: int | None) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/"
        f"{db['NAME']}",
        "CELERY_BROKER_URL": BROKER,
        "SECRET_KEY": settings.SECRET_KEY,
        "MAILPATH_ESP_BATCH_API": "true" if batch_api else "false",
        "MAILPATH_SEND_THREADS": str(threads or settings.MAILPATH_SEND_THREADS),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "-Q", "send",
         "-c", str(concurrency), "--prefetch-multiplier", "1", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )  # fmt: skip


def purge_broker() -> None:
    from config.celery import app

    with app.connection_for_write(BROKER) as conn:
        conn.default_channel.queue_purge("send")


def worker_pids(root: int) -> list[int]:
    """The worker's main process and its pool children."""
    pids = [root]
    try:
        children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    except OSError:
        return pids
    return pids + [int(pid) for pid in children]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class MemoryWatch(threading.Thread):
    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.samples: list[tuple[float, dict[int, float]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(
                (time.monotonic(), {pid: rss_mb(pid) for pid in worker_pids(self.root)})
            )
            time.sleep(SAMPLE_EVERY)


def wait_until_ready(workers: subprocess.Popen, concurrency: int) -> None:
    for _ in range(240):
        if workers.poll() is not None:
            sys.exit("The Celery worker stopped while starting.")
        if len(worker_pids(workers.pid)) > concurrency:
            time.sleep(2)  # the pool children finish importing
            return
        time.sleep(0.25)
    sys.exit("The Celery worker pool did not start.")


# --- the measurements --------------------------------------------------------------------


def unfinished(workspace) -> int:  # type: ignore[no-untyped-def]
    from campaigns.models import Message

    return Message.objects.for_workspace(workspace).filter(status__in=["queued", "sending"]).count()


def send(workspace, template, recipients: int) -> dict:  # type: ignore[no-untyped-def]
    from campaigns.models import Message
    from campaigns.sending import outbox
    from contacts.models import Contact

    started = time.monotonic()
    new = outbox.enqueue(
        workspace,
        template=template,
        contacts=Contact.objects.for_workspace(workspace),
        source="campaign",
        source_id="bench",
    )
    enqueued = time.monotonic()
    beat = enqueued
    while unfinished(workspace):
        if time.monotonic() - enqueued > TIMEOUT_SECONDS:
            sys.exit(f"Not finished after {TIMEOUT_SECONDS} s: {unfinished(workspace)} left.")
        if time.monotonic() - beat >= BEAT_SECONDS:  # what beat's deliver_queued does
            outbox.kick_delivery(1)
            beat = time.monotonic()
        time.sleep(0.2)
    finished = time.monotonic()
    retried = Message.objects.for_workspace(workspace).filter(attempts__gt=1).count()
    statuses = dict(
        Message.objects.for_workspace(workspace).values_list("status").annotate(n=Count("id"))
    )
    return {
        "new": new,
        "enqueue_s": enqueued - started,
        "total_s": finished - started,
        "statuses": statuses,
        "retried": retried,
        "started": started,
        "finished": finished,
    }


def render_only(workspace, template, count: int) -> float:  # type: ignore[no-untyped-def]
    """Personalise the same messages in one process, nothing else: messages per second."""
    from campaigns.rendering.context import contact_data, render_context
    from campaigns.services import brand_of, compile_template
    from contacts.models import Contact

    brand = brand_of(workspace)
    compiled = compile_template(template, brand)
    contacts = list(Contact.objects.for_workspace(workspace).order_by("id")[:count])
    links = {"unsubscribe_url": "https://t.example.com/u/x", "preferences_url": "#"}
    ws = {"name": workspace.name, "timezone": workspace.timezone}
    start = time.perf_counter()
    for contact in contacts:
        context = render_context(contact=contact_data(contact, []), brand=brand, workspace=ws,
                                 links=links)  # fmt: skip
        compiled.personalise(context)
    return len(contacts) / (time.perf_counter() - start)


def memory_figures(watch: MemoryWatch, started: float, finished: float) -> dict:
    during = [(t, s) for t, s in watch.samples if started <= t <= finished]
    per_sample_max = [max(s.values(), default=0.0) for _, s in during]
    if not per_sample_max:
        return {"peak": 0.0, "profile": []}
    tenth = max(1, len(during) // 10)
    profile = [max(per_sample_max[i : i + tenth]) for i in range(0, len(per_sample_max), tenth)]
    return {"peak": max(per_sample_max), "profile": profile[:10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (-c)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--no-batch-api", action="store_true", help="one call per message")
    parser.add_argument("--threads", type=int, help="calls in flight per worker (--no-batch-api)")
    parser.add_argument("--baseline", type=int, default=20_000, help="messages rendered alone")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL.")

    connection.settings_dict.setdefault("TEST", {})["NAME"] = (
        f"test_{connection.settings_dict['NAME']}_send_bench"
    )
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    mock = workers = None
    try:
        mock, mock_url = start_mock(args.latency_ms)
        workspace, template = seed(args.recipients, mock_url)
        connection.close()  # the workers get the database to themselves while starting
        purge_broker()
        workers = start_workers(args.workers, not args.no_batch_api, args.threads)
        wait_until_ready(workers, args.workers)
        watch = MemoryWatch(workers.pid)
        watch.start()
        result = send(workspace, template, args.recipients)
        watch.stop.set()
        stats = requests.get(mock_url + "_stats", timeout=10).json()
        memory = memory_figures(watch, result["started"], result["finished"])
        baseline = render_only(workspace, template, min(args.baseline, args.recipients))
    finally:
        if workers is not None:
            os.killpg(workers.pid, signal.SIGTERM)
            try:
                workers.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(workers.pid, signal.SIGKILL)
        if mock is not None:
            mock.terminate()
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)

    rate = args.recipients / result["total_s"]
    threads = args.threads or settings.MAILPATH_SEND_THREADS
    mode = (
        f"{threads} calls in flight per worker (one message per call)"
        if args.no_batch_api
        else "Postmark batch API (500 messages per call)"
    )
    print(f"database: {connection.vendor}; cores: {os.cpu_count()}; hand-off: {mode}")
    print(f"workers: celery -c {args.workers}; mock ESP latency {args.latency_ms:.0f} ms per call")
    rows = [
        ("recipients enqueued (new)", f"{result['new']:,}"),
        ("final statuses", ", ".join(f"{k} {v:,}" for k, v in result["statuses"].items())),
        ("messages that needed a retry", f"{result['retried']:,}"),
        ("enqueue (bulk insert)", f"{result['enqueue_s']:.1f} s"),
        ("end to end (enqueue -> all recorded)", f"{result['total_s']:.1f} s"),
        ("throughput end to end", f"{rate:,.0f} messages/s"),
        ("ESP calls / messages accepted", f"{stats['calls']:,} / {stats['messages']:,}"),
        ("ESP-side rate (first to last accepted)", f"{stats['messages_per_s'] or 0:,.0f} /s"),
        ("duplicates at the ESP", f"{stats['duplicates']}"),
        ("missing List-Unsubscribe(-Post)", f"{stats['missing_list_unsubscribe']} / "
                                             f"{stats['missing_list_unsubscribe_post']}"),
        ("peak worker RSS (any process)", f"{memory['peak']:.0f} MB"),
        ("RSS by tenth of the send (MB)", " ".join(f"{v:.0f}" for v in memory["profile"])),
        ("baseline: personalise only, 1 process", f"{baseline:,.0f} messages/s"),
        ("ratio baseline / pipeline (time per msg)", f"{baseline / rate:.2f}"),
    ]  # fmt: skip
    for label, value in rows:
        print(f"{label + ':':<44}{value}")
    ok = rate >= 1000 and memory["peak"] < 300 and stats["duplicates"] == 0
    print(
        f"target (>= 1,000 messages/s, RSS < 300 MB, no duplicates): {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

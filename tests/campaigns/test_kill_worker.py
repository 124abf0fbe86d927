"""Kill -9 the send worker five times during a 10,000-recipient send: afterwards every
recipient has exactly one sent message and the ESP got each message exactly once.

A real Celery worker (`celery -A config worker -Q send -c 2`) runs against Redis and this
test's PostgreSQL database; the workspace sends through Postmark's batch API, played by
the shared mock ESP, whose referee counts duplicates by the message id in the metadata.
Each kill takes the whole process group (main process and pool children) at a random
moment after the worker has claimed a batch; the worker is started again and given fresh
tasks. After each kill reconcile_stuck settles the rows the dead worker left in "sending"
(beat does it every minute for rows stuck 10 minutes), as it does once more at the end.

Needs Redis (MAILPATH_KILL_TEST_REDIS, default redis://127.0.0.1:6379/13; that database
is flushed) and PostgreSQL; skipped without them except under CI=true, where it fails.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from campaigns.models import Message, MessageStatus, SendingPolicy
from campaigns.sending import deliver, outbox
from contacts.models import Contact
from tests.campaigns.test_deliver import connect_to_mock, mock_stats, running_mock_esp
from tests.factories import EmailTemplateFactory, WorkspaceFactory

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("MAILPATH_KILL_TEST_REDIS", "redis://127.0.0.1:6379/13")
RECIPIENTS = 10_000
KILLS = 5
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def redis_ready() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


class Worker:
    """`celery -A config worker -Q send -c 2` on this test's database, in its own process
    group so a kill takes the pool children too."""

    def __init__(self, log: Path) -> None:
        self.log = log
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:"
            f"{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": REDIS_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "MAILPATH_SEND_BATCH_SIZE": "500",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        celery = Path(sys.executable).parent / "celery"
        self.process = subprocess.Popen(
            [str(celery), "-A", "config", "worker", "-Q", "send", "-c", "2",
             "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "WARNING"],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kick(self, tasks: int = 2) -> None:
        from campaigns.tasks import deliver_queued
        from config.celery import app

        with app.connection_for_write(REDIS_URL) as conn:
            for _ in range(tasks):
                deliver_queued.apply_async(kwargs={"time_budget": 20}, connection=conn)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGTERM)  # warm shutdown: running tasks finish
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None


def counts(workspace) -> dict[str, int]:
    rows = Message.objects.for_workspace(workspace).values_list("status")
    found: dict[str, int] = {}
    for (status,) in rows:
        found[status] = found.get(status, 0) + 1
    return found


def diagnosis(log: Path) -> str:
    """What the database, the broker and the worker were doing, for a failure message."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, wait_event_type, wait_event, left(query, 120) "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        sessions = "\n".join(str(row) for row in cursor.fetchall())
        cursor.execute("SELECT status, count(*) FROM campaigns_message GROUP BY status")
        sessions += f"\nmessages: {dict(cursor.fetchall())}"
    broker = redis.Redis.from_url(REDIS_URL)
    queued_tasks = broker.llen("send")
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    return (
        f"database sessions:\n{sessions}\nbroker: {queued_tasks} tasks waiting in 'send', "
        f"{broker.hlen('unacked')} unacked\nworker log:\n{tail}"
    )


def wait_for(predicate, seconds: float, what: str, log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{diagnosis(log)}")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_killing_the_worker_five_times_sends_every_message_exactly_once(monkeypatch, tmp_path):
    need(connection.vendor == "postgresql", "the kill test needs PostgreSQL")
    need(redis_ready(), f"the kill test needs Redis at {REDIS_URL}")
    redis.Redis.from_url(REDIS_URL).flushdb()
    monkeypatch.setattr(outbox, "kick_delivery", lambda new=1: None)  # the test kicks
    rng = random.Random(int(os.environ.get("KILL_TEST_SEED", time.time())))

    with running_mock_esp("--latency-ms", "20") as esp_url:
        workspace = WorkspaceFactory()
        connect_to_mock(workspace, esp_url)
        SendingPolicy.objects.create(workspace=workspace, daily_cap=None, weekly_cap=None)
        template = EmailTemplateFactory(workspace=workspace)
        Contact.objects.for_workspace(workspace).bulk_create(
            Contact(workspace=workspace, email=f"r{n}@example.com", first_name=f"R{n}")
            for n in range(RECIPIENTS)
        )
        assert (
            outbox.enqueue(
                workspace,
                template=template,
                contacts=Contact.objects.for_workspace(workspace),
                source="campaign",
                source_id="kill-test",
            )
            == RECIPIENTS
        )
        worker = Worker(tmp_path / "worker.log")
        left_sending: list[int] = []
        reconciled: Counter = Counter()
        try:
            for _ in range(KILLS):
                worker.start()
                worker.kick()
                wait_for(  # the new worker has claimed a batch: kill it somewhere in there
                    lambda: counts(workspace).get("sending", 0) > 0,
                    90,
                    "the worker to claim a batch",
                    worker.log,
                )
                time.sleep(rng.uniform(0.0, 0.5))
                worker.kill()
                left_sending.append(counts(workspace).get("sending", 0))
                # what beat's reconcile_stuck_messages does 10 minutes later (no worker runs)
                reconciled.update(deliver.reconcile_stuck(older_than=dt.timedelta(0)))

            worker.start()  # the last start sends what is left
            worker.kick()
            wait_for(
                lambda: set(counts(workspace)) == {MessageStatus.SENT},
                120,
                "every message to be sent",
                worker.log,
            )
            worker.stop()
            reconciled.update(deliver.reconcile_stuck(older_than=dt.timedelta(0)))
        finally:
            worker.stop()
            redis.Redis.from_url(REDIS_URL).flushdb()

        final = counts(workspace)
        stats = mock_stats(esp_url)
        unconfirmed = (
            Message.objects.for_workspace(workspace)
            .filter(failure_reason=deliver.UNCONFIRMED)
            .count()
        )
        print(
            f"\nkills left {left_sending} rows in sending; reconciled: {dict(reconciled)}; "
            f"unconfirmed {unconfirmed}; ESP: {stats['messages']} messages in {stats['calls']} "
            f"calls, {stats['duplicates']} duplicates"
        )

    assert sum(left_sending) > 0, "no kill landed during a batch"
    assert final == {MessageStatus.SENT: RECIPIENTS}
    assert (
        Message.objects.for_workspace(workspace).values("contact_id").distinct().count()
        == RECIPIENTS
    )
    assert stats["duplicates"] == 0
    assert stats["messages"] == RECIPIENTS == stats["distinct_recipients"]
    assert stats["missing_list_unsubscribe"] == 0

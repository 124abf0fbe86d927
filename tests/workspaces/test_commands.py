"""seed_demo, setup_periodic_tasks and the periodic upkeep tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.factories import PASSWORD, InvitationFactory
from workspaces.demo import DEMO_PASSWORD
from workspaces.models import Invitation, Membership, Role, Workspace
from workspaces.tasks import purge_expired_invitations

pytestmark = pytest.mark.django_db


def test_seed_demo_runs_once_and_prints_the_logins(capsys, client, monkeypatch):
    monkeypatch.setattr("contacts.demo.CONTACTS_PER_WORKSPACE", 40)
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Demo data created." in out and "already there" in out
    assert "agency@example.com" in out and DEMO_PASSWORD in out
    assert Workspace.objects.filter(agency__slug="northwind-digital").count() == 2
    roles = set(Membership.objects.values_list("role", flat=True))
    assert roles == {Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER}
    client.post("/accounts/login/", {"username": "agency@example.com", "password": DEMO_PASSWORD})
    assert client.get("/w/bloom-bakery/").status_code == 200
    assert PASSWORD != DEMO_PASSWORD


def test_setup_periodic_tasks_writes_the_schedule_from_settings(settings):
    every_day, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.DAYS)
    PeriodicTask.objects.create(name="hand made", task="x", interval=every_day)
    call_command("setup_periodic_tasks")
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert "mailpath: purge expired invitations" in names
    settings.PERIODIC_TASKS = {
        "only one": ("workspaces.tasks.prune_sandbox_messages", 60, "default")
    }
    call_command("setup_periodic_tasks")
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert names == {"mailpath: only one", "hand made"}
    task = PeriodicTask.objects.get(name="mailpath: only one")
    assert (task.interval.every, task.queue) == (60, "default")


def test_tasks_are_routed_to_named_queues(settings):
    from config.celery import app

    queues = {q.name for q in app.conf.task_queues}
    assert queues == {"default", "send", "analytics"}
    assert app.amqp.router.route({}, "campaigns.tasks.deliver_batch")["queue"].name == "send"
    assert app.amqp.router.route({}, "analytics.tasks.rollup")["queue"].name == "analytics"
    assert app.amqp.router.route({}, "workspaces.tasks.x")["queue"].name == "default"


def test_expired_invitations_are_purged_after_a_month(workspace_a):
    InvitationFactory(workspace=workspace_a, expires_at=timezone.now() - timedelta(days=31))
    fresh = InvitationFactory(workspace=workspace_a)
    assert purge_expired_invitations() == 1
    assert list(Invitation.objects.for_workspace(workspace_a)) == [fresh]

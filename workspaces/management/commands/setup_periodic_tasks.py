"""Writes the beat schedule from settings.PERIODIC_TASKS into django-celery-beat.

Run after every deploy: tasks in code are created or updated, tasks that were removed
from code are deleted, and schedules added by hand in admin (not named here) are left be.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

MANAGED_PREFIX = "mailpath: "


class Command(BaseCommand):
    help = "Create or update the periodic Celery tasks defined in settings.PERIODIC_TASKS."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        wanted = set()
        for label, (task, every_seconds, queue) in settings.PERIODIC_TASKS.items():
            schedule, _ = IntervalSchedule.objects.get_or_create(
                every=every_seconds, period=IntervalSchedule.SECONDS
            )
            name = MANAGED_PREFIX + label
            wanted.add(name)
            PeriodicTask.objects.update_or_create(
                name=name,
                defaults={
                    "task": task,
                    "interval": schedule,
                    "crontab": None,
                    "queue": queue,
                    "kwargs": json.dumps({}),
                    "enabled": True,
                },
            )
            self.stdout.write(f"  {name}: {task} every {every_seconds}s on {queue}")
        stale = PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX).exclude(
            name__in=wanted
        )
        removed, _ = stale.delete()
        self.stdout.write(
            self.style.SUCCESS(f"{len(wanted)} periodic tasks set, {removed} removed.")
        )

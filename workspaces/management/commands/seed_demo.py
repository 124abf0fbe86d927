"""`manage.py seed_demo`: demo agency, two client workspaces, a user per role. Runs once;
later runs only print the logins."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from workspaces.demo import DEMO_LOGINS, DEMO_PASSWORD, demo_exists, seed_workspaces


class Command(BaseCommand):
    help = "Create the demo agency, workspaces and users (once), and print the logins."

    def handle(self, *args: Any, **options: Any) -> None:
        if demo_exists():
            self.stdout.write("Demo data is already there.")
        else:
            seed_workspaces()
            self.stdout.write(self.style.SUCCESS("Demo data created."))
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.email:<22} {login.role:<13} {login.reaches}")

"""Settings read the environment and refuse wrong values at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "x" * 50


def _load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh process with only these Mailpath variables set."""
    ours = {"SECRET_KEY", "DEBUG", "DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_BACKEND"}
    clean = {k: v for k, v in os.environ.items() if k not in ours}
    code = "import config.settings as s; print(s.DATABASES['default']['ENGINE'], s.EMAIL_BACKEND)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_without_a_secret_key_refuses_to_start():
    result = _load_settings(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_development_starts_on_the_embedded_default():
    result = _load_settings(DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "sqlite3" in result.stdout
    assert "SandboxEmailBackend" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"SECRET_KEY": "short"}, "at least 32 characters"),
        ({"CELERY_BROKER_URL": "kafka://x"}, "CELERY_BROKER_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"DATABASE_URL": "nosuchdb://x"}, "nosuchdb"),
        ({"DATABASE_URL": "just-a-name"}, "use postgres://"),
        ({"SITE_URL": "notaurl"}, "SITE_URL"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT"),
        ({"ANYMAIL": "{not json"}, "Expecting property name"),
    ],
)
def test_a_wrong_value_names_the_variable(env, message):
    result = _load_settings(**{"SECRET_KEY": GOOD_KEY, "DEBUG": "false", **env})
    assert result.returncode != 0
    assert message in result.stderr


def test_spaces_around_allowed_hosts_are_ignored():
    code = "import config.settings as s; print(s.ALLOWED_HOSTS)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "a.com, b.com"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "['a.com', 'b.com']"


def test_an_email_backend_that_cannot_be_imported_fails_the_system_check(settings):
    from workspaces.checks import email_backend_importable

    settings.EMAIL_BACKEND = "no.such.Backend"
    assert [e.id for e in email_backend_importable(None)] == ["mailpath.E001"]

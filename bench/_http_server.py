"""What the HTTP benchmarks share: the throw-away database's URL for the server
processes they start, a free port, the server's environment, and stopping its process
group. Imported by the benchmarks; not a benchmark itself (`make bench` skips `_*.py`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

from django.db import connection


def database_url() -> str:
    """The URL of the database this process uses, for the processes it starts."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmarked web server: production settings on this database."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # the group the benchmark started, workers included
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

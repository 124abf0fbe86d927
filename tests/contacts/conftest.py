"""Fixtures shared by the contacts tests."""

from __future__ import annotations

import pytest

from contacts import contact_store


@pytest.fixture(params=["sql", "orm"])
def write_path(request, monkeypatch):
    """Run a test through contact_store's SQL (on PostgreSQL) and through its ORM path
    (the one SQLite always takes), which must behave alike."""
    monkeypatch.setattr(contact_store, "SQL_PATH", request.param == "sql")
    return request.param

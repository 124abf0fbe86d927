"""Counts failed log-ins per (email, client address) in the cache and blocks a burst."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache


def _key(email: str, client: str) -> str:
    digest = hashlib.sha256(f"{email.lower()}|{client}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


def is_blocked(email: str, client: str) -> bool:
    return cache.get(_key(email, client), 0) >= settings.LOGIN_FAILURE_LIMIT


def record_failure(email: str, client: str) -> None:
    key = _key(email, client)
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)


def window_minutes() -> int:
    return max(1, settings.LOGIN_FAILURE_WINDOW_SECONDS // 60)


def clear(email: str, client: str) -> None:
    cache.delete(_key(email, client))

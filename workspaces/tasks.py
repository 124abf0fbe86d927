"""Periodic upkeep for tenancy; each task calls one service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task
def purge_expired_invitations() -> int:
    return services.purge_expired_invitations()


@shared_task
def prune_sandbox_messages() -> int:
    return services.prune_sandbox_messages()

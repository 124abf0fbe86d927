"""Background work for campaigns: thin tasks that call one service each.

The send tasks take no workspace: they drain the outbox for every workspace, claiming rows
with SKIP LOCKED, and each row carries its own workspace. Nothing is read from a global
"current workspace".
"""

from __future__ import annotations

from celery import shared_task

from campaigns.sending import deliver


@shared_task(acks_late=True, ignore_result=True)
def deliver_queued(time_budget: float = 50.0) -> dict[str, int]:
    """Deliver due messages until none is left or the time budget is spent; then hand the
    rest to a fresh task so one long send never holds a worker slot for ever."""
    report = deliver.deliver_queued(time_budget=time_budget)
    if report.get("more"):
        deliver_queued.delay(time_budget)
    return dict(report)


@shared_task(acks_late=True, ignore_result=True)
def reconcile_stuck_messages() -> dict[str, int]:
    """Settle messages left in "sending" by a worker that died (beat, every minute)."""
    return dict(deliver.reconcile_stuck())


@shared_task(acks_late=True, ignore_result=True)
def record_tracking_hits(workspace_id: int, hits: list[list]) -> int:
    """Store a batch of opens and clicks from the pixel and the click redirect (message
    events, first-open and first-click times, contact events). Repeating it is safe."""
    from campaigns.sending import links
    from workspaces.access import workspace_for_task

    workspace = workspace_for_task(workspace_id)
    if workspace is None:
        return 0
    tracked = [links.TrackedHit.from_json(hit) for hit in hits]
    return links.record_hits(workspace=workspace, hits=tracked)


# --- outgoing webhooks (campaigns/sending/outgoing.py) ---------------------------------
# Routed to the default queue (settings.CELERY_TASK_ROUTES): a slow webhook receiver must
# never hold up a send worker.


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhooks(workspace_id: int, delivery_ids: list[int]) -> dict[str, int]:
    """Attempt these webhook deliveries of one workspace (each only if still due)."""
    from campaigns.sending import outgoing
    from workspaces.access import workspace_for_task

    workspace = workspace_for_task(workspace_id)
    if workspace is None:
        return {}
    return outgoing.deliver_ids(workspace, delivery_ids)


@shared_task(acks_late=True, ignore_result=True)
def deliver_due_webhooks() -> int:
    """Hand webhook deliveries whose retry time has come to workers (beat, every minute)."""
    from campaigns.sending import outgoing

    return outgoing.dispatch_due()

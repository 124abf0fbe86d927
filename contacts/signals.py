"""Signals for the rooms above contacts/ (journeys, analytics), which subscribe to them in
their AppConfig.ready(). Sent on commit, with ids only."""

from django.dispatch import Signal

# kwargs: workspace_id, event_ids (list[int]), contact_ids (list[int])
events_recorded = Signal()
# kwargs: workspace_id, contact_ids (list[int]), changes (set[str]: "created", "stage", "tags",
# "status", "attributes", "persona", "topic")
contacts_changed = Signal()

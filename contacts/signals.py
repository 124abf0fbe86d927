"""Signals for the rooms above contacts/ (journeys, analytics), which subscribe to them in
their AppConfig.ready(). Sent on commit, with ids only."""

from django.dispatch import Signal

# kwargs: workspace_id, event_ids (list[int]), contact_ids (list[int])
events_recorded = Signal()
# kwargs: workspace_id, contact_ids (list[int]), changes (set[str]: "created", "stage", "tags",
# "status", "attributes", "persona", "topic")
contacts_changed = Signal()
# kwargs: workspace_id, contact_ids (list[int]), status (the new SubscriptionStatus), method
# (how it came about: ConsentInput.method, e.g. "form", "api", "import"), at (datetime).
# Sent when contacts are created subscribed and when set_subscription changes a status.
subscription_changed = Signal()

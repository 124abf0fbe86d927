"""Signals for the rooms above contacts/ (journeys' "entered segment" / "left segment"
triggers, analytics). Sent on commit, with ids only."""

from django.dispatch import Signal

# kwargs: workspace_id, segment_id (int), entered (list[int] contact ids), exited (list[int])
segment_membership_changed = Signal()

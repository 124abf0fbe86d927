"""Signals that higher rooms subscribe to (in their AppConfig.ready), so workspaces/ never
imports them."""

from django.dispatch import Signal

# Sent inside the transaction that created the workspace; kwargs: workspace.
workspace_created = Signal()

"""Signals that higher rooms subscribe to (in their AppConfig.ready), so workspaces/ never
imports them."""

from django.dispatch import Signal

# Sent inside the transaction that created the workspace; kwargs: workspace.
workspace_created = Signal()

# Sent by `manage.py seed_demo` after it created the demo workspaces; kwargs: workspaces.
# Each app adds its own demo data (contacts, templates, journeys ...).
demo_workspaces_seeded = Signal()

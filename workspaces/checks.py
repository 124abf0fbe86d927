"""Start-up checks for settings that can only be verified once apps are loaded."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string


@register()
def email_backend_importable(app_configs: Any, **kwargs: Any) -> list[Error]:
    try:
        import_string(settings.EMAIL_BACKEND)
    except ImportError as exc:
        return [
            Error(
                f"EMAIL_BACKEND={settings.EMAIL_BACKEND!r} cannot be imported: {exc}",
                hint="Use workspaces.sandbox.SandboxEmailBackend or an Anymail backend path.",
                id="mailpath.E001",
            )
        ]
    return []

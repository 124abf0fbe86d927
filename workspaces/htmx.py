"""HTTP status for a page or fragment that shows form errors."""

from __future__ import annotations

from django.http import HttpRequest


def form_error_status(request: HttpRequest) -> int:
    """400 for a full page; 422 for an HTMX swap. base.html lets htmx swap 4xx answers, and
    under DEBUG django-htmx replaces the whole page with any 400/403/404 answer (to show
    Django's error page), which would hide the form's errors."""
    return 422 if getattr(request, "htmx", False) else 400

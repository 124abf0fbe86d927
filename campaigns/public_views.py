"""What a recipient's mail client fetches without logging in: the brand logo."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .models import BrandKit

LOGO_CACHE_SECONDS = 7 * 24 * 3600


@require_GET
def brand_logo(request: HttpRequest, kit_id: str) -> HttpResponse:
    # The kit's unguessable public id is the address; no workspace is in the URL because
    # a mail client has no session. all_workspaces is right here: one row by its own id.
    kit = BrandKit.all_workspaces.filter(public_id=kit_id).only("logo", "logo_content_type").first()
    if kit is None or not kit.logo:
        raise Http404("No logo")
    response = HttpResponse(bytes(kit.logo), content_type=kit.logo_content_type)
    response["Cache-Control"] = f"public, max-age={LOGO_CACHE_SECONDS}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response

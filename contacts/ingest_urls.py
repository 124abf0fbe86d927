"""The Segment-compatible ingest API, mounted at /v1/ by config.urls (Segment's paths, with
no trailing slash)."""

from django.urls import path

from .ingest_api import BatchView, CallView, ImportView

urlpatterns = [
    *(
        path(call, CallView.for_call(call), name=f"ingest-{call}")
        for call in ("identify", "track", "page", "screen", "group", "alias")
    ),
    path("batch", BatchView.as_view(), name="ingest-batch"),
    path("import", ImportView.as_view(), name="ingest-import"),
]

"""Contacts pages, mounted under /w/<workspace_slug>/ by config.urls; each area keeps its
routes in its own module."""

from . import form_urls, import_urls, page_urls, settings_urls, suppression_urls
from .segments import urls as segment_urls

urlpatterns = [
    *page_urls.urlpatterns,
    *import_urls.urlpatterns,
    *form_urls.urlpatterns,
    *settings_urls.urlpatterns,
    *suppression_urls.urlpatterns,
    *segment_urls.urlpatterns,
]

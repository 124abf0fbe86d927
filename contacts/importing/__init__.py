"""CSV import of contacts: the uploaded file and its layout (`reading`), the column
mapping (`mapping`), the job with its options and a preview (`jobs`), turning a CSV row
into a contact row (`rows`), the run itself (`running`) and the file of rejected rows
(`rejects`). Contacts are written by `services.upsert_contacts`, as everywhere else.

The names callers use are importable from here. To change how the run behaves in a
test, patch `importing.running` (e.g. its CHUNK_ROWS): the run reads its own module.
"""

from __future__ import annotations

from .jobs import (
    MAX_IMPORT_BYTES,
    PREVIEW_ROWS,
    PreviewRow,
    create_import_job,
    preview_import,
    set_mapping,
    set_options,
    start_import,
)
from .mapping import (
    IGNORE,
    SOURCE_MAPPINGS,
    STANDARD_TARGETS,
    auto_map,
    check_mapping,
    detect_source,
    normalise_header,
    target_choices,
)
from .reading import FileLayout, open_records, sniff_delimiter, sniff_encoding, sniff_layout
from .rejects import REASON_COLUMN, RejectsWriter
from .rows import RowPlan, RowRejected, split_tags
from .running import ImportOptions, count_rows, run_import

__all__ = [
    "IGNORE",
    "MAX_IMPORT_BYTES",
    "PREVIEW_ROWS",
    "REASON_COLUMN",
    "SOURCE_MAPPINGS",
    "STANDARD_TARGETS",
    "FileLayout",
    "ImportOptions",
    "PreviewRow",
    "RejectsWriter",
    "RowPlan",
    "RowRejected",
    "auto_map",
    "check_mapping",
    "count_rows",
    "create_import_job",
    "detect_source",
    "normalise_header",
    "open_records",
    "preview_import",
    "run_import",
    "set_mapping",
    "set_options",
    "sniff_delimiter",
    "sniff_encoding",
    "sniff_layout",
    "split_tags",
    "start_import",
    "target_choices",
]

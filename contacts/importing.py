"""CSV import of contacts: the uploaded file, its layout (encoding, delimiter, header row),
the column mapping, the options, a preview, and the run itself.

The run streams the stored file line by line and hands it to `upsert_contacts` a chunk
at a time, so a file of a million rows never sits in memory. Each chunk and the job's
counters are committed together: a run that stops half-way resumes from the last
committed chunk, and running a job again never adds anyone twice.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import io
import itertools
import json
import os
import re
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from workspaces.models import Workspace

from . import services
from .attributes import clean_attributes, clean_contact_fields, field_definitions
from .models import (
    ConsentKind,
    ConsentRecord,
    Contact,
    CustomField,
    ExistingContacts,
    ImportJob,
    ImportStatus,
    LifecycleStage,
    Persona,
    Source,
    StageChange,
    SubscriptionStatus,
    Tag,
    import_rejects_path,
)
from .signals import contacts_changed

CHUNK_ROWS = 1000  # through upsert_contacts, which takes at most 1,000
BULK_CHUNK_ROWS = 5000  # on the PostgreSQL bulk path
PREVIEW_ROWS = 10
SAMPLE_BYTES = 64 * 1024
READ_BYTES = 1024 * 1024
MAX_COLUMNS = 300
MAX_IMPORT_BYTES = getattr(settings, "CONTACT_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)
DELIMITERS = (",", ";", "\t", "|")
REASON_COLUMN = "reason"


# --- reading the file ------------------------------------------------------------------


@dataclass(frozen=True)
class FileLayout:
    encoding: str
    delimiter: str
    headers: list[str]


def _file_error(message: str) -> ValidationError:
    return ValidationError({"file": [message]})


def sniff_encoding(stream: IO[bytes]) -> str:
    """UTF-8 (with or without BOM), UTF-16 (BOM, or NUL-padded ASCII), else Windows-1252
    (which reads Latin-1 text too). Checks the whole file, so a stray byte on row 90,000
    is found now rather than half-way through the import."""
    stream.seek(0)
    head = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    if not head.strip():
        raise _file_error("The file is empty.")
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise _file_error(
            "This is a spreadsheet workbook (.xlsx or .xls), not a CSV file. In your "
            "spreadsheet app choose File → Save as → “CSV UTF-8”, then upload that file."
        )
    if head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in head:
        candidates = [_utf16_without_bom(head)]
    else:
        candidates = ["utf-8", "windows-1252"]
    failure: tuple[str, int] | None = None
    for encoding in candidates:
        position = _first_undecodable_byte(stream, encoding)
        if position is None:
            return encoding
        failure = failure or (encoding, position)
    assert failure is not None
    line = _line_of(stream, failure[1])
    raise _file_error(
        f"Line {line} holds bytes that are not text in {_encoding_names(candidates)}, so the "
        "file cannot be read. Save it again as “CSV UTF-8” and upload it once more."
    )


def _utf16_without_bom(head: bytes) -> str:
    even_nuls = head[0::2].count(0)
    odd_nuls = head[1::2].count(0)
    half = len(head) // 2
    if odd_nuls > half * 0.8 and even_nuls < half * 0.1:
        return "utf-16-le"
    if even_nuls > half * 0.8 and odd_nuls < half * 0.1:
        return "utf-16-be"
    raise _file_error(
        "This file holds binary data, not text. Upload a CSV file (comma-separated values)."
    )


def _encoding_names(encodings: Sequence[str]) -> str:
    names = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "windows-1252": "Windows-1252"}
    return " or ".join(names.get(e, e.upper()) for e in encodings)


def _first_undecodable_byte(stream: IO[bytes], encoding: str) -> int | None:
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    stream.seek(0)
    try:
        while block := stream.read(READ_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return offset + max(exc.start, 0)
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return offset
        return None
    finally:
        stream.seek(0)


def _line_of(stream: IO[bytes], position: int) -> int:
    stream.seek(0)
    lines, read = 1, 0
    while read < position and (block := stream.read(min(READ_BYTES, position - read))):
        lines += block.count(b"\n")
        read += len(block)
    stream.seek(0)
    return lines


def sniff_delimiter(sample: str) -> str:
    """The candidate that splits the first lines into the most columns, consistently."""
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may end in the middle of a line
    text = "".join(lines[:50])
    best, best_score = ",", (0.0, 1)
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        same = sum(1 for r in rows if len(r) == len(rows[0])) / len(rows)
        score = (same, len(rows[0]))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _unique_headers(cells: Sequence[str]) -> list[str]:
    headers: list[str] = []
    for index, cell in enumerate(cells, start=1):
        name = " ".join(cell.replace("\ufeff", "").split())[:120] or f"Column {index}"
        candidate, n = name, 2
        while candidate in headers:
            candidate, n = f"{name} ({n})", n + 1
        headers.append(candidate)
    return headers


def _looks_like_email(text: str) -> bool:
    return bool(re.fullmatch(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+", text.strip()))


def sniff_layout(stream: IO[bytes]) -> FileLayout:
    """Encoding, delimiter and header row of an uploaded CSV file; a clear error if the
    file is not one we can import."""
    encoding = sniff_encoding(stream)
    stream.seek(0)
    sample = io.TextIOWrapper(
        io.BytesIO(stream.read(SAMPLE_BYTES)), encoding=encoding, errors="ignore", newline=""
    ).read()
    stream.seek(0)
    delimiter = sniff_delimiter(sample)
    records = _records(io.StringIO(sample), delimiter, strict=False)
    first = next(records, None)
    if first is None:
        raise _file_error("The file is empty.")
    cells = first[1]
    if any(_looks_like_email(cell) for cell in cells):
        raise _file_error(
            "The first row holds an email address, not column names. Add a first row that "
            "names the columns, for example: email,first_name,last_name."
        )
    if len(cells) > MAX_COLUMNS:
        raise _file_error(f"The file has {len(cells)} columns; at most {MAX_COLUMNS} are read.")
    if next(records, None) is None and len(sample.encode(encoding, "ignore")) < SAMPLE_BYTES:
        raise _file_error("The file has a header row but no contacts below it.")
    return FileLayout(encoding, delimiter, _unique_headers(cells))


def _records(text: IO[str], delimiter: str, *, strict: bool = True) -> Iterator[tuple[int, list]]:
    """(line number, cells) for every non-blank row, the header row included."""
    reader = csv.reader(text, delimiter=delimiter, strict=strict)
    for cells in reader:
        if cells and any(c.strip() for c in cells):
            yield reader.line_num, cells


@contextmanager
def open_records(job: ImportJob) -> Iterator[Iterator[tuple[int, list[str]]]]:
    """The job's data rows, streamed from storage one line at a time."""
    with job.file.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=job.encoding, newline="")
        try:
            records = _records(text, job.delimiter)
            next(records, None)  # the header row
            yield records
        finally:
            text.detach()


# --- mapping columns to contact fields ---------------------------------------------------

IGNORE = ""
STANDARD_TARGETS = {
    "email": "Email address",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split into first and last name)",
    "external_id": "External id (your own user id)",
    "phone": "Phone",
    "timezone": "Time zone",
    "locale": "Locale",
    "birthday": "Birthday",
    "tags": "Tags (separated by commas)",
    "status": "Status (unsubscribed, blocklisted, cleaned… are honoured)",
    "unsubscribed_when_set": "Unsubscribed when filled in (e.g. UNSUB_TIME)",
    "bounced_when_set": "Bounced when filled in (e.g. CLEAN_TIME)",
    "attributes_json": "Attributes (a JSON object)",
}
REPEATABLE_TARGETS = {"tags"}
ATTRIBUTE_PREFIX = "attr:"
ATTRIBUTE_KEY = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")

# Column names in each tool's export (normalised: lower case, words joined by "_").
SOURCE_MAPPINGS: dict[str, dict[str, str]] = {
    "mailchimp": {
        "email_address": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "phone_number": "phone",
        "birthday": "attr:birthday",  # MM/DD, no year
        "address": "attr:address",
        "member_rating": "attr:member_rating",
        "optin_time": "attr:optin_time",
        "optin_ip": "attr:optin_ip",
        "confirm_time": "attr:confirm_time",
        "confirm_ip": "attr:confirm_ip",
        "timezone": "timezone",
        "cc": "attr:country_code",
        "region": "attr:region",
        "notes": "attr:notes",
        "tags": "tags",
        "unsub_time": "unsubscribed_when_set",
        "unsub_reason": "attr:unsubscribe_reason",
        "clean_time": "bounced_when_set",
        "latitude": IGNORE,
        "longitude": IGNORE,
        "gmtoff": IGNORE,
        "dstoff": IGNORE,
        "last_changed": IGNORE,
        "leid": IGNORE,
        "euid": IGNORE,
        "unsub_campaign_title": IGNORE,
        "unsub_campaign_id": IGNORE,
        "unsub_reason_other": IGNORE,
        "clean_campaign_title": IGNORE,
        "clean_campaign_id": IGNORE,
    },
    "mautic": {
        "email": "email",
        "firstname": "first_name",
        "lastname": "last_name",
        "phone": "phone",
        "mobile": "attr:mobile",
        "timezone": "timezone",
        "preferred_locale": "locale",
        "tags": "tags",
        "id": "attr:mautic_id",
        "points": "attr:points",
        "stage": "attr:mautic_stage",
        "date_added": IGNORE,
        "date_modified": IGNORE,
        "date_identified": IGNORE,
        "last_active": "attr:last_active",
        "owner_id": IGNORE,
        "created_by": IGNORE,
        "modified_by": IGNORE,
        "attribution": IGNORE,
        "attribution_date": IGNORE,
    },
    "listmonk": {
        "uuid": "attr:listmonk_uuid",
        "email": "email",
        "name": "full_name",
        "attributes": "attributes_json",
        "status": "status",
        "created_at": IGNORE,
        "updated_at": IGNORE,
    },
}
SYNONYMS = {
    "email": {"email", "email_address", "e_mail", "emailaddress", "mail", "email_id"},
    "first_name": {"first_name", "firstname", "first", "given_name", "fname", "forename"},
    "last_name": {"last_name", "lastname", "last", "surname", "family_name", "lname"},
    "full_name": {"name", "full_name", "fullname", "contact_name"},
    "external_id": {"external_id", "user_id", "userid", "customer_id", "customerid"},
    "phone": {"phone", "phone_number", "telephone", "tel", "mobile", "mobile_phone"},
    "timezone": {"timezone", "time_zone", "tz"},
    "locale": {"locale", "language", "lang", "preferred_locale"},
    "birthday": {"birthday", "birth_date", "date_of_birth", "dob", "birthdate"},
    "tags": {"tags", "tag", "labels"},
    "status": {"status", "subscription_status", "subscriber_status"},
    "attributes_json": {"attributes", "attribs"},
}
# Columns that describe the row in the tool it came from (including Mailpath's own export).
IGNORED_BY_DEFAULT = {
    "created_at",
    "updated_at",
    "stage",
    "lifecycle_stage",
    "persona",
    REASON_COLUMN,
}


def normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")


def attribute_key(header: str) -> str:
    return normalise_header(header)[:64] or "column"


def detect_source(headers: Sequence[str]) -> str:
    """Which tool exported this file: mailchimp, mautic, listmonk, plain, or "" if unknown."""
    names = {normalise_header(h) for h in headers}
    if "email_address" in names and names & {"member_rating", "optin_time", "leid", "euid"}:
        return "mailchimp"
    if "email" in names and "attributes" in names and names & {"uuid", "name", "status"}:
        return "listmonk"
    if "email" in names and names & {"firstname", "lastname"}:
        return "mautic"
    if "email" in names and names & {"first_name", "last_name"}:
        return "plain"
    return ""


def auto_map(headers: Sequence[str], custom_fields: Sequence[CustomField] = ()) -> dict[str, str]:
    """A target for every column: the exporting tool's meaning where we know the tool,
    custom fields by key or label, common synonyms, else a new attribute."""
    by_name = {}
    for custom in custom_fields:
        by_name[normalise_header(custom.label)] = f"{ATTRIBUTE_PREFIX}{custom.key}"
        by_name[normalise_header(custom.key)] = f"{ATTRIBUTE_PREFIX}{custom.key}"
    known = SOURCE_MAPPINGS.get(detect_source(headers), {})
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        name = normalise_header(header)
        target = known.get(name)
        if target is None:
            target = by_name.get(name)
        if target is None:
            target = next((t for t, names in SYNONYMS.items() if name in names), None)
        if target is None:
            target = (
                IGNORE if name in IGNORED_BY_DEFAULT else ATTRIBUTE_PREFIX + attribute_key(header)
            )
        if target and target in used and target not in REPEATABLE_TARGETS:
            target = ATTRIBUTE_PREFIX + attribute_key(header)
            if target in used:
                target = IGNORE
        used.add(target)
        mapping[header] = target
    if "full_name" in used and {"first_name", "last_name"} & used:
        mapping = {h: (IGNORE if t == "full_name" else t) for h, t in mapping.items()}
    return mapping


def target_choices(
    headers: Sequence[str],
    custom_fields: Sequence[CustomField],
    mapping: Mapping[str, str] | None = None,
) -> list[tuple[str, Any]]:
    """Grouped choices for the mapping form's select of each column: the contact fields,
    the custom fields, and a new attribute per column (or as the automatic guess named it)."""
    custom_keys = {c.key for c in custom_fields}
    guessed = {
        t.removeprefix(ATTRIBUTE_PREFIX)
        for t in (mapping or {}).values()
        if t.startswith(ATTRIBUTE_PREFIX)
    }
    new_attributes = sorted(({attribute_key(h) for h in headers} | guessed) - custom_keys)
    choices: list[tuple[str, Any]] = [(IGNORE, "Don't import"), *STANDARD_TARGETS.items()]
    if custom_fields:
        choices.append(
            ("Custom fields", [(f"{ATTRIBUTE_PREFIX}{c.key}", c.label) for c in custom_fields])
        )
    choices.append(
        (
            "New attribute",
            [(f"{ATTRIBUTE_PREFIX}{key}", f"Attribute “{key}”") for key in new_attributes],
        )
    )
    return choices


def check_mapping(headers: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """The mapping, complete and valid; errors keyed by column name."""
    errors: dict[str, list[str]] = {}
    claimed: dict[str, str] = {}
    clean: dict[str, str] = {}
    for header in headers:
        target = (mapping.get(header) or IGNORE).strip()
        if target.startswith(ATTRIBUTE_PREFIX):
            if not ATTRIBUTE_KEY.match(target.removeprefix(ATTRIBUTE_PREFIX)):
                errors[header] = ["Attribute names use lower-case letters, digits and _."]
        elif target and target not in STANDARD_TARGETS:
            errors[header] = [f"“{target}” is not a contact field."]
        if target and target not in REPEATABLE_TARGETS and target in claimed:
            errors[header] = [f"“{claimed[target]}” already goes into this field."]
        claimed.setdefault(target, header)
        clean[header] = target
    if "email" not in claimed:
        errors["__all__"] = [
            "Choose the column that holds the email addresses: every contact needs one."
        ]
    if errors:
        raise ValidationError(errors)
    return clean


# --- the import job ----------------------------------------------------------------------


def create_import_job(
    *, workspace: Workspace, upload: UploadedFile, created_by: Any = None
) -> ImportJob:
    """Store an uploaded CSV file with its layout and a first guess at the mapping."""
    if upload.size is not None and upload.size > MAX_IMPORT_BYTES:
        limit = MAX_IMPORT_BYTES // (1024 * 1024)
        raise _file_error(f"The file is larger than {limit} MB: split it into several imports.")
    layout = sniff_layout(upload)
    custom_fields = list(CustomField.objects.for_workspace(workspace))
    job = ImportJob(
        workspace=workspace,
        filename=os.path.basename(upload.name or "contacts.csv")[:255],
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        headers=layout.headers,
        mapping=auto_map(layout.headers, custom_fields),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    upload.seek(0)
    job.file.save(job.filename, upload, save=False)  # streamed to storage in chunks
    job.save()
    return job


def set_mapping(*, workspace: Workspace, job: ImportJob, mapping: Mapping[str, str]) -> ImportJob:
    _require_editable(job)
    job.mapping = check_mapping(job.headers, mapping)
    job.save(update_fields=["mapping", "updated_at"])
    return job


@transaction.atomic
def set_options(
    *,
    workspace: Workspace,
    job: ImportJob,
    existing: str,
    tag_names: Sequence[str] = (),
    stage: LifecycleStage | None = None,
    persona: Persona | None = None,
    consent_basis: str = "",
) -> ImportJob:
    """What to do with known contacts, what to add to everyone, and the consent basis.
    Without a basis, new contacts are imported as not subscribed."""
    _require_editable(job)
    if existing not in ExistingContacts.values:
        raise ValidationError({"existing": "Choose whether to update or skip known contacts."})
    for name, value in (("lifecycle_stage", stage), ("persona", persona)):
        if value is not None and value.workspace_id != workspace.pk:
            raise ValidationError({name: "Choose one of this workspace's."})
    tags = services.get_or_create_tags(workspace=workspace, names=tag_names)
    job.existing = existing
    job.lifecycle_stage = stage
    job.persona = persona
    job.consent_basis = consent_basis.strip()
    job.subscribe = bool(job.consent_basis)
    job.save()
    job.tags.set(tags)
    return job


def _require_editable(job: ImportJob) -> None:
    if job.status != ImportStatus.UPLOADED:
        raise ValidationError("This import has already started; its settings cannot change.")


def start_import(*, workspace: Workspace, job: ImportJob) -> ImportJob:
    """Queue the import (or its resumption after a failure) once the transaction commits."""
    from .tasks import run_import as run_import_task

    check_mapping(job.headers, job.mapping)
    queued = (
        ImportJob.objects.for_workspace(workspace)
        .filter(pk=job.pk, status__in=[ImportStatus.UPLOADED, ImportStatus.FAILED])
        .update(status=ImportStatus.QUEUED, error="", updated_at=timezone.now())
    )
    job.refresh_from_db()
    if queued:  # a second click, or a job already running, queues nothing more
        transaction.on_commit(lambda: run_import_task.delay(workspace.pk, job.pk))
    return job


# --- turning a CSV row into a contact ----------------------------------------------------

NEGATIVE_STATUSES = {
    "unsubscribed": SubscriptionStatus.UNSUBSCRIBED,
    "unsubscribe": SubscriptionStatus.UNSUBSCRIBED,
    "blocklisted": SubscriptionStatus.UNSUBSCRIBED,
    "blacklisted": SubscriptionStatus.UNSUBSCRIBED,
    "opted_out": SubscriptionStatus.UNSUBSCRIBED,
    "opt_out": SubscriptionStatus.UNSUBSCRIBED,
    "do_not_contact": SubscriptionStatus.UNSUBSCRIBED,
    "dnc": SubscriptionStatus.UNSUBSCRIBED,
    "cleaned": SubscriptionStatus.BOUNCED,
    "bounced": SubscriptionStatus.BOUNCED,
    "complained": SubscriptionStatus.COMPLAINED,
}


class RowRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ImportRow:
    data: dict[str, Any]  # what upsert_contacts takes: fields and "attributes"
    tags: list[str] = field(default_factory=list)
    status: str | None = None  # an opt-out or bounce the file records
    fields: dict[str, Any] | None = None  # checked standard fields (bulk path)
    attributes: dict[str, Any] = field(default_factory=dict)  # checked attributes

    def check(self, definitions: Mapping[str, CustomField]) -> None:
        """Run the contact cleaners, as upsert_contacts does; raises ValidationError."""
        fields = _clean_fields(self.data)
        if "email" not in fields:
            raise ValidationError({"email": ["An email address is required."]})
        self.attributes = clean_attributes(self.data.get("attributes") or {}, definitions)
        self.fields = fields


@dataclass
class RowPlan:
    """How the job's columns become contact fields."""

    headers: list[str]
    mapping: dict[str, str]

    @classmethod
    def for_job(cls, job: ImportJob) -> RowPlan:
        return cls(list(job.headers), dict(job.mapping))

    @functools.cached_property
    def columns(self) -> list[tuple[int, str, str]]:
        return [
            (i, h, self.mapping.get(h, IGNORE))
            for i, h in enumerate(self.headers)
            if self.mapping.get(h)
        ]

    def convert(self, cells: Sequence[str]) -> ImportRow:
        if len(cells) != len(self.headers):
            raise RowRejected(
                f"row: has {len(cells)} cells but the header row has {len(self.headers)} "
                "columns (check for a missing or extra delimiter)."
            )
        data: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        row = ImportRow(data)
        full_name = ""
        for index, header, target in self.columns:
            value = _unescape_formula(cells[index].strip())
            if target == "email":
                data["email"] = value
            elif not value:
                continue  # an empty cell leaves what we know unchanged
            elif target.startswith(ATTRIBUTE_PREFIX):
                attributes[target.removeprefix(ATTRIBUTE_PREFIX)] = value
            elif target == "full_name":
                full_name = value
            elif target == "tags":
                row.tags.extend(split_tags(value))
            elif target == "status":
                row.status = NEGATIVE_STATUSES.get(normalise_header(value)) or row.status
            elif target == "unsubscribed_when_set":
                row.status = row.status or SubscriptionStatus.UNSUBSCRIBED
            elif target == "bounced_when_set":
                row.status = SubscriptionStatus.BOUNCED
            elif target == "attributes_json":
                attributes = {**_json_object(value, header), **attributes}
            else:
                data[target] = value
        if full_name:
            first, _, last = full_name.partition(" ")
            data.setdefault("first_name", first)
            if last.strip():
                data.setdefault("last_name", last.strip())
        if attributes:
            data["attributes"] = attributes
        return row

    def describe(self, errors: Mapping[str, Sequence[str]]) -> str:
        """A rejection reason that names the field and the column it came from."""
        columns = {t.removeprefix(ATTRIBUTE_PREFIX): h for _, h, t in self.columns}
        columns.update({t: h for _, h, t in self.columns})
        if "full_name" in columns:
            columns.setdefault("first_name", columns["full_name"])
            columns.setdefault("last_name", columns["full_name"])
        parts = []
        for key, messages in errors.items():
            name = "row" if key == "__all__" else key.removeprefix("attributes.")
            column = columns.get(name)
            label = f"{name} (column “{column}”)" if column and column != name else name
            parts.append(f"{label}: {' '.join(messages)}")
        return "; ".join(parts) or "row: not imported."


def _unescape_formula(value: str) -> str:
    """Undo the apostrophe an export puts before a cell that would read as a formula."""
    if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@"):
        return value[1:]
    return value


def split_tags(value: str) -> list[str]:
    """`"Customer","VIP"` (Mailchimp), `customer, vip` or `customer|vip`."""
    names = (part.strip().strip('"').strip() for part in re.split(r"[,;|]", value))
    return [name[:80] for name in names if name]


def _json_object(value: str, header: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise RowRejected(
            f"attributes (column “{header}”): not valid JSON ({exc.msg} at character {exc.pos})."
        ) from exc
    if not isinstance(parsed, dict):
        raise RowRejected(f"attributes (column “{header}”): must be a JSON object {{…}}.")
    return parsed


# --- preview -----------------------------------------------------------------------------


@dataclass
class PreviewRow:
    line: int
    action: str  # create | update | skip | reject
    fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: str | None = None
    problem: str = ""


def preview_import(
    *, workspace: Workspace, job: ImportJob, limit: int = PREVIEW_ROWS
) -> list[PreviewRow]:
    """The first rows as they will be saved (or why not), without writing anything."""
    plan = RowPlan.for_job(job)
    with open_records(job) as records:
        sample = list(itertools.islice(records, limit))
    definitions = field_definitions(workspace)
    rows: list[PreviewRow] = []
    for line, cells in sample:
        try:
            converted = plan.convert(cells)
            fields = clean_contact_fields(converted.data)
            if "email" not in fields:
                raise ValidationError({"email": ["An email address is required."]})
            attributes = clean_attributes(converted.data.get("attributes") or {}, definitions)
        except RowRejected as exc:
            rows.append(PreviewRow(line, "reject", problem=exc.reason))
            continue
        except ValidationError as exc:
            rows.append(PreviewRow(line, "reject", problem=plan.describe(exc.message_dict)))
            continue
        fields.update({f"attributes.{k}": v for k, v in attributes.items()})
        rows.append(PreviewRow(line, "create", fields, converted.tags, converted.status))
    _mark_known(workspace, job, rows)
    return rows


def _mark_known(workspace: Workspace, job: ImportJob, rows: list[PreviewRow]) -> None:
    emails = [r.fields["email"] for r in rows if r.action == "create"]
    erased = services.suppressed_emails(workspace, emails)
    known = set(
        Contact.objects.for_workspace(workspace)
        .filter(email__in=emails)
        .values_list("email", flat=True)
    )
    for row in rows:
        email = row.fields.get("email")
        if email in erased:
            row.action, row.problem = "reject", "email: This address was erased and is suppressed."
        elif email in known:
            row.action = "skip" if job.existing == ExistingContacts.SKIP else "update"


# --- running the import ------------------------------------------------------------------


class _Superseded(Exception):
    """Another worker moved this job on; this run stops without writing."""


@dataclass
class ChunkOutcome:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[tuple[list[str], str]] = field(default_factory=list)


@dataclass
class ImportOptions:
    existing: str
    tags: list[Tag]
    stage: LifecycleStage | None
    persona: Persona | None
    consent: services.ConsentInput | None

    @classmethod
    def for_job(cls, job: ImportJob) -> ImportOptions:
        consent = None
        if job.subscribe and job.consent_basis:
            consent = services.ConsentInput(
                method=Source.IMPORT,
                text_shown=job.consent_basis,
                source=f"Import of “{job.filename}” ({job.public_id})"[:255],
            )
        return cls(
            existing=job.existing,
            tags=list(job.tags.all()),
            stage=job.lifecycle_stage,
            persona=job.persona,
            consent=consent,
        )


def run_import(*, workspace: Workspace, job: ImportJob) -> ImportJob:
    """Import the job's file, resuming after the last committed chunk. A job that is done
    (or not yet confirmed) is left as it is."""
    jobs = ImportJob.objects.for_workspace(workspace)
    claimed = jobs.filter(pk=job.pk, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).update(
        status=ImportStatus.RUNNING,
        started_at=Coalesce(F("started_at"), timezone.now()),
        updated_at=timezone.now(),
    )
    job.refresh_from_db()
    if not claimed:
        return job
    try:
        if not job.total_rows:
            job.total_rows = count_rows(job)
            jobs.filter(pk=job.pk).update(total_rows=job.total_rows)
        _import_rows(workspace, job)
    except _Superseded:
        job.refresh_from_db()
        return job
    except (UnicodeDecodeError, csv.Error, ValidationError) as exc:
        return _fail(workspace, job, _read_error_message(exc))
    except Exception:
        _fail(
            workspace,
            job,
            "The import stopped unexpectedly. Choose “Resume” to continue where it stopped.",
        )
        raise
    jobs.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
        status=ImportStatus.DONE, finished_at=timezone.now(), updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def count_rows(job: ImportJob) -> int:
    """Reads the whole file once before anything is written, so a broken line stops the
    import before it starts rather than half-way through."""
    with open_records(job) as records:
        return sum(1 for _ in records)


def _read_error_message(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return (
            "Part of the file is not text in the encoding of its first lines; "
            "save it again as “CSV UTF-8” and upload it once more."
        )
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return f'The file is not valid CSV: {exc}. Check for an unclosed quote (").'


def _fail(workspace: Workspace, job: ImportJob, message: str) -> ImportJob:
    ImportJob.objects.for_workspace(workspace).filter(pk=job.pk).update(
        status=ImportStatus.FAILED, error=message, updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


@dataclass
class PreparedChunk:
    """A chunk read from the file and converted (on the bulk path also checked)."""

    rows: list[list[str]]
    reasons: dict[int, str] = field(default_factory=dict)  # position -> why rejected
    opted_in: list[tuple[int, ImportRow]] = field(default_factory=list)
    # Rows the file marks unsubscribed or bounced: they never get the consent basis.
    opted_out: list[tuple[int, ImportRow]] = field(default_factory=list)


def prepare_chunk(
    plan: RowPlan, rows: list[list[str]], definitions: Mapping[str, CustomField] | None
) -> PreparedChunk:
    """Pure work, no database: runs on the reading thread while the previous chunk is
    being written."""
    chunk = PreparedChunk(rows)
    for position, cells in enumerate(rows):
        try:
            converted = plan.convert(cells)
            if definitions is not None:
                converted.check(definitions)
        except RowRejected as exc:
            chunk.reasons[position] = exc.reason
            continue
        except ValidationError as exc:
            chunk.reasons[position] = plan.describe(_error_dict(exc))
            continue
        (chunk.opted_out if converted.status else chunk.opted_in).append((position, converted))
    return chunk


def _error_dict(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}


def _import_rows(workspace: Workspace, job: ImportJob) -> None:
    """Stream the file in chunks; the next chunk is read and checked on a second thread
    while the current one is written, so parsing and the database overlap."""
    plan = RowPlan.for_job(job)
    options = ImportOptions.for_job(job)
    bulk = use_bulk_path()
    definitions = field_definitions(workspace) if bulk else None
    size = BULK_CHUNK_ROWS if bulk else CHUNK_ROWS
    done = job.processed_rows
    with (
        RejectsWriter(job) as rejects,
        open_records(job) as records,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-reader") as reader,
    ):
        remaining = itertools.islice(records, done, None)

        def read_next() -> PreparedChunk | None:
            rows = [cells for _, cells in itertools.islice(remaining, size)]
            return prepare_chunk(plan, rows, definitions) if rows else None

        pending = reader.submit(read_next)
        while (chunk := pending.result()) is not None:
            pending = reader.submit(read_next)
            _import_chunk(workspace, job, options, chunk, rejects, done, plan)
            done += len(chunk.rows)


def _import_chunk(
    workspace: Workspace,
    job: ImportJob,
    options: ImportOptions,
    chunk: PreparedChunk,
    rejects: RejectsWriter,
    offset: int,
    plan: RowPlan,
) -> None:
    """One chunk and the job's counters, in one transaction."""
    with transaction.atomic():
        if use_bulk_path():
            _skip_commit_flush()
        locked = (
            ImportJob.objects.for_workspace(workspace)
            .select_for_update()
            .filter(pk=job.pk)
            .values("processed_rows", "status")
            .first()
        )
        if locked is None or locked["processed_rows"] != offset:
            raise _Superseded
        outcome = import_chunk(workspace, plan, options, chunk)
        rejects.write(outcome.rejected)
        ImportJob.objects.for_workspace(workspace).filter(pk=job.pk).update(
            processed_rows=F("processed_rows") + len(chunk.rows),
            created_count=F("created_count") + outcome.created,
            updated_count=F("updated_count") + outcome.updated,
            skipped_count=F("skipped_count") + outcome.skipped,
            rejected_count=F("rejected_count") + len(outcome.rejected),
            updated_at=timezone.now(),
        )


def import_chunk(
    workspace: Workspace, plan: RowPlan, options: ImportOptions, chunk: PreparedChunk
) -> ChunkOutcome:
    """Write one prepared chunk (the caller holds the transaction)."""
    outcome = ChunkOutcome()
    reasons = dict(chunk.reasons)
    now = timezone.now()
    upsert = bulk_upsert_contacts if use_bulk_path() else _upsert_through_service
    for group, consent in ((chunk.opted_in, options.consent), (chunk.opted_out, None)):
        if not group:
            continue
        results = upsert(
            workspace=workspace,
            rows=[row for _, row in group],
            options=options,
            consent=consent,
            now=now,
        )
        touched: list[tuple[int, ImportRow]] = []
        for (position, row), result in zip(group, results, strict=True):
            if result.status == "rejected":
                reasons[position] = plan.describe(result.errors)
                continue
            setattr(outcome, result.status, getattr(outcome, result.status) + 1)
            if result.status in ("created", "updated") and result.contact_id:
                touched.append((result.contact_id, row))
        _apply_row_tags(workspace, touched)
        _apply_row_statuses(workspace, touched, now)
    outcome.rejected = [(chunk.rows[position], reasons[position]) for position in sorted(reasons)]
    return outcome


@dataclass
class RowResult:
    status: str  # created | updated | skipped | rejected
    contact_id: int | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


def _upsert_through_service(
    *,
    workspace: Workspace,
    rows: list[ImportRow],
    options: ImportOptions,
    consent: services.ConsentInput | None,
    now: dt.datetime,
) -> list[RowResult]:
    results = services.upsert_contacts(
        workspace=workspace,
        rows=[row.data for row in rows],
        source=Source.IMPORT,
        existing=options.existing,
        tags=options.tags,
        stage=options.stage,
        persona=options.persona,
        consent=consent,
        subscribe=consent is not None,
        now=now,
    )
    return [RowResult(r.status, r.contact.pk if r.contact else None, r.errors) for r in results]


def _apply_row_tags(workspace: Workspace, touched: list[tuple[int, ImportRow]]) -> None:
    names = {name for _, row in touched for name in row.tags}
    if not names:
        return
    tags = {
        t.name.lower(): t for t in services.get_or_create_tags(workspace=workspace, names=names)
    }
    by_tag: dict[str, list[int]] = defaultdict(list)
    for contact_id, row in touched:
        for name in row.tags:
            by_tag[name.lower()].append(contact_id)
    for name, contact_ids in by_tag.items():
        if name in tags:
            services.add_tags(workspace=workspace, contact_ids=contact_ids, tags=[tags[name]])


def _apply_row_statuses(
    workspace: Workspace, touched: list[tuple[int, ImportRow]], now: dt.datetime
) -> None:
    by_status: dict[str, list[int]] = defaultdict(list)
    for contact_id, row in touched:
        if row.status:
            by_status[row.status].append(contact_id)
    for status, contact_ids in by_status.items():
        services.set_subscription(
            workspace=workspace,
            contacts=Contact.objects.for_workspace(workspace).filter(pk__in=contact_ids),
            status=status,
            consent=services.ConsentInput(
                method=Source.IMPORT,
                kind=ConsentKind.OPT_OUT,
                text_shown=f"Marked {status} in the imported file.",
            ),
            at=now,
        )


# --- the PostgreSQL bulk path ------------------------------------------------------------
#
# upsert_contacts builds a model instance per contact, consent record, stage change and
# tag link; at a million rows that is most of the time an import takes. On PostgreSQL the
# import writes the same rows with COPY and set-based statements instead. Outcome and
# reasons are the same as upsert_contacts: rows checked by the same cleaners, erased
# addresses refused, a repeated address in a chunk counted once (the last wins), known
# contacts updated or skipped (matched by external id, then email), a consent record per
# new contact, stage changes recorded, tags and persona applied, contacts_changed sent.
# Every statement names the workspace.

BULK_PATH = True  # tests switch it off to check both paths behave alike


def use_bulk_path() -> bool:
    return BULK_PATH and connection.vendor == "postgresql"


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _skip_commit_flush() -> None:
    """Commit a chunk without waiting for the disk flush: a server crash may lose the last
    chunks, but each chunk and the job's counters go together, so the resumed import
    picks up exactly where the surviving counters say."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")


def _clean_fields(data: dict[str, Any]) -> dict[str, Any]:
    """clean_contact_fields, with valid time zones checked against a cached list (the
    cleaner lists the system's zones on every call)."""
    zone = data.get("timezone")
    if isinstance(zone, str) and zone.strip() in _known_timezones():
        fields = clean_contact_fields({k: v for k, v in data.items() if k != "timezone"})
        fields["timezone"] = zone.strip()
        return fields
    return clean_contact_fields(data)


@dataclass
class _Clean:
    index: int
    fields: dict[str, Any]
    attributes: dict[str, Any]


@dataclass
class _Known:
    pk: int
    stage_id: int | None


def bulk_upsert_contacts(
    *,
    workspace: Workspace,
    rows: list[ImportRow],
    options: ImportOptions,
    consent: services.ConsentInput | None,
    now: dt.datetime,
) -> list[RowResult]:
    results = [RowResult("rejected") for _ in rows]
    clean = _clean_bulk_rows(workspace, rows, results)
    for email in services.suppressed_emails(workspace, clean):
        results[clean.pop(email).index] = RowResult(
            "rejected", errors={"email": ["This address was erased and is suppressed."]}
        )
    known = _known_contacts(workspace, list(clean.values()))
    to_create: list[_Clean] = []
    to_update: list[tuple[_Clean, _Known]] = []
    for row in clean.values():
        external = row.fields.get("external_id")
        match = (known.get(f"x:{external}") if external else None) or known.get(
            f"e:{row.fields['email']}"
        )
        if match is None:
            to_create.append(row)
        elif options.existing == ExistingContacts.SKIP:
            results[row.index] = RowResult("skipped", match.pk)
        else:
            to_update.append((row, match))
    with transaction.atomic(), connection.cursor() as cursor:
        created = _insert_contacts(workspace, cursor, to_create, options, consent, now)
        _update_contacts(workspace, cursor, to_update, options, now)
        for row in to_create:
            results[row.index] = RowResult("created", created[row.fields["email"]])
        for row, match in to_update:
            results[row.index] = RowResult("updated", match.pk)
        created_ids = list(created.values())
        touched = [*created_ids, *(match.pk for _, match in to_update)]
        _link_tags(workspace, cursor, touched, options.tags)
        moved = _record_stage_changes(workspace, cursor, created_ids, to_update, options, now)
        if consent and created_ids:
            _insert_consents(workspace, cursor, created_ids, consent, now)
    changes = ({"created"} if created_ids else set()) | ({"attributes"} if to_update else set())
    _announce(workspace, touched, {"tags"} if options.tags else set())
    _announce(workspace, moved, {"stage"})
    _announce(workspace, touched, changes)
    return results


def _clean_bulk_rows(
    workspace: Workspace, rows: list[ImportRow], results: list[RowResult]
) -> dict[str, _Clean]:
    """Rows checked (prepare_chunk usually did it already); a repeated address in the
    chunk counts once, the last one winning, as in upsert_contacts."""
    definitions: Mapping[str, CustomField] | None = None
    clean: dict[str, _Clean] = {}
    for index, row in enumerate(rows):
        if row.fields is None:
            if definitions is None:
                definitions = field_definitions(workspace)
            try:
                row.check(definitions)
            except ValidationError as exc:
                results[index] = RowResult("rejected", errors=_error_dict(exc))
                continue
        assert row.fields is not None
        earlier = clean.pop(row.fields["email"], None)
        if earlier is not None:
            results[earlier.index] = RowResult(
                "skipped", errors={"email": ["Repeated later in the batch."]}
            )
        clean[row.fields["email"]] = _Clean(index, row.fields, row.attributes)
    return clean


def _known_contacts(workspace: Workspace, rows: list[_Clean]) -> dict[str, _Known]:
    emails = [r.fields["email"] for r in rows]
    external = [r.fields["external_id"] for r in rows if r.fields.get("external_id")]
    if not emails:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, email, external_id, lifecycle_stage_id FROM {Contact._meta.db_table} "
            "WHERE workspace_id = %s AND (email = ANY(%s) OR external_id = ANY(%s))",
            [workspace.pk, emails, external],
        )
        found = cursor.fetchall()
    index: dict[str, _Known] = {}
    for pk, email, external_id, stage_id in found:
        index[f"e:{email}"] = _Known(pk, stage_id)
        if external_id:
            index[f"x:{external_id}"] = _Known(pk, stage_id)
    return index


CONTACT_TEXT_FIELDS = ("first_name", "last_name", "phone", "timezone", "locale")


def _insert_contacts(
    workspace: Workspace,
    cursor: Any,
    rows: list[_Clean],
    options: ImportOptions,
    consent: services.ConsentInput | None,
    now: dt.datetime,
) -> dict[str, int]:
    if not rows:
        return {}
    status = SubscriptionStatus.SUBSCRIBED if consent else SubscriptionStatus.UNSUBSCRIBED
    stage_id = options.stage.pk if options.stage else None
    persona_id = options.persona.pk if options.persona else None
    _copy_insert(
        cursor,
        Contact,
        (
            {
                **_row_basics(workspace, now),
                "email": row.fields["email"],
                "external_id": row.fields.get("external_id"),
                **{name: row.fields.get(name, "") for name in CONTACT_TEXT_FIELDS},
                "birthday": row.fields.get("birthday"),
                "attributes": _jsonb(row.attributes),
                "status": status,
                "source": Source.IMPORT,
                "lifecycle_stage_id": stage_id,
                "persona_id": persona_id,
            }
            for row in rows
        ),
    )
    cursor.execute(
        f"SELECT email, id FROM {Contact._meta.db_table} "
        "WHERE workspace_id = %s AND email = ANY(%s)",
        [workspace.pk, [row.fields["email"] for row in rows]],
    )
    return dict(cursor.fetchall())


def _update_contacts(
    workspace: Workspace,
    cursor: Any,
    pairs: list[tuple[_Clean, _Known]],
    options: ImportOptions,
    now: dt.datetime,
) -> None:
    if not pairs:
        return
    table = Contact._meta.db_table
    texts = ", ".join(f"{name} = COALESCE(v.{name}, c.{name})" for name in CONTACT_TEXT_FIELDS)
    text_columns = ", ".join(CONTACT_TEXT_FIELDS)
    text_arrays = ", ".join("%s::text[]" for _ in CONTACT_TEXT_FIELDS)
    persona = "persona_id = %s," if options.persona else ""
    cursor.execute(
        f"""
        UPDATE {table} AS c SET
            email = v.email,
            external_id = COALESCE(v.external_id, c.external_id),
            {texts},
            birthday = COALESCE(v.birthday, c.birthday),
            attributes = c.attributes || v.attributes::jsonb,
            {persona}
            updated_at = %s
        FROM unnest(%s::bigint[], %s::text[], %s::text[], {text_arrays}, %s::date[], %s::text[])
            AS v(id, email, external_id, {text_columns}, birthday, attributes)
        WHERE c.id = v.id AND c.workspace_id = %s
        """,
        [
            *([options.persona.pk] if options.persona else []),
            now,
            [match.pk for _, match in pairs],
            [row.fields["email"] for row, _ in pairs],
            [row.fields.get("external_id") for row, _ in pairs],
            *([row.fields.get(name) for row, _ in pairs] for name in CONTACT_TEXT_FIELDS),
            [row.fields.get("birthday") for row, _ in pairs],
            [json.dumps(row.attributes) for row, _ in pairs],
            workspace.pk,
        ],
    )


def _link_tags(workspace: Workspace, cursor: Any, contact_ids: list[int], tags: list[Tag]) -> None:
    through = Contact.tags.through._meta.db_table
    for tag in tags:
        if tag.workspace_id != workspace.pk:
            raise ValidationError("A tag from another workspace.")
        cursor.execute(
            f"INSERT INTO {through} (contact_id, tag_id) SELECT unnest(%s::bigint[]), %s "
            "ON CONFLICT DO NOTHING",
            [contact_ids, tag.pk],
        )


def _record_stage_changes(
    workspace: Workspace,
    cursor: Any,
    created_ids: list[int],
    updated: list[tuple[_Clean, _Known]],
    options: ImportOptions,
    now: dt.datetime,
) -> list[int]:
    """New contacts were inserted in the stage; known ones move now. One StageChange per
    contact that changed stage, as change_stage records."""
    stage = options.stage
    if stage is None:
        return []
    moving = {m.pk: m.stage_id for _, m in updated if m.stage_id != stage.pk}
    if moving:
        Contact.objects.for_workspace(workspace).filter(pk__in=list(moving)).update(
            lifecycle_stage=stage, updated_at=now
        )
    moves = [(pk, None) for pk in created_ids] + list(moving.items())
    names = dict(LifecycleStage.objects.for_workspace(workspace).values_list("pk", "name"))
    _copy_insert(
        cursor,
        StageChange,
        (
            {
                **_row_basics(workspace, now),
                "contact_id": pk,
                "from_stage_id": old,
                "from_name": names.get(old, ""),
                "to_stage_id": stage.pk,
                "to_name": stage.name,
                "changed_at": now,
                "source": Source.IMPORT,
            }
            for pk, old in moves
        ),
    )
    return [pk for pk, _ in moves]


def _insert_consents(
    workspace: Workspace,
    cursor: Any,
    contact_ids: list[int],
    consent: services.ConsentInput,
    now: dt.datetime,
) -> None:
    _copy_insert(
        cursor,
        ConsentRecord,
        (
            {
                **_row_basics(workspace, now),
                "contact_id": pk,
                "kind": consent.kind,
                "method": consent.method,
                "source": consent.source[:255],
                "ip_address": consent.ip_address or None,
                "text_shown": consent.text_shown,
                "topic_id": None,
                "occurred_at": now,
            }
            for pk in contact_ids
        ),
    )


def _row_basics(workspace: Workspace, now: dt.datetime) -> dict[str, Any]:
    return {
        "workspace_id": workspace.pk,
        "public_id": _random_uuid(),
        "created_at": now,
        "updated_at": now,
    }


_random_pool: list[bytes] = []


def _random_uuid() -> uuid.UUID:
    """uuid4() without a system call per id: random bytes are drawn 64 KiB at a time."""
    if not _random_pool:
        block = os.urandom(16 * 4096)
        _random_pool.extend(block[i : i + 16] for i in range(0, len(block), 16))
    return uuid.UUID(bytes=_random_pool.pop(), version=4)


def _jsonb(value: Any) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _copy_insert(cursor: Any, model: type[Any], rows: Iterator[dict[str, Any]]) -> None:
    """COPY rows into the model's table. Columns a row leaves out take the field's default
    (or NULL), so a column added to the model later does not break the import."""
    first = next(rows, None)
    if first is None:
        return
    given = list(first)
    filled: dict[str, Any] = {}
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key or model_field.attname in first:
            continue
        value = model_field.get_default()  # "" for text fields without a default
        if model_field.unique or (value is None and not model_field.null):
            raise ImproperlyConfigured(
                f"The bulk import does not know what to put in {model.__name__}.{model_field.name}."
            )
        filled[model_field.column] = model_field.get_db_prep_save(value, connection)
    columns = [model._meta.get_field(name).column for name in given] + list(filled)
    constants = tuple(filled.values())
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with cursor.cursor.copy(sql) as copy:
        for row in itertools.chain([first], rows):
            copy.write_row((*(row[name] for name in given), *constants))


def _announce(workspace: Workspace, contact_ids: list[int], changes: set[str]) -> None:
    if not contact_ids or not changes:
        return
    transaction.on_commit(
        lambda: contacts_changed.send(
            sender=Contact, workspace_id=workspace.pk, contact_ids=contact_ids, changes=changes
        )
    )


# --- rejected rows -----------------------------------------------------------------------


class RejectsWriter:
    """Appends rejected rows (original cells + reason) to the job's rejects file, which
    lives on local storage so a resumed run can continue it. On resume it first cuts the
    file back to the rows the job's committed counter knows about."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.name = import_rejects_path(job, "")
        self.path = job.rejects_file.storage.path(self.name)
        self.handle: IO[str] | None = None
        self.writer: Any = None

    def __enter__(self) -> RejectsWriter:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if self.job.rejected_count and os.path.exists(self.path):
            self._truncate(self.job.rejected_count)
        else:
            with open(self.path, "w", encoding="utf-8-sig", newline="") as handle:
                csv.writer(handle).writerow([*self.job.headers, REASON_COLUMN])
        if self.job.rejects_file.name != self.name:
            self.job.rejects_file.name = self.name
            ImportJob.objects.for_workspace(self.job.workspace_id).filter(pk=self.job.pk).update(
                rejects_file=self.name
            )
        self.handle = open(self.path, "a", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle)
        return self

    def write(self, rows: list[tuple[list[str], str]]) -> None:
        width = len(self.job.headers)
        for cells, reason in rows:
            padded = [*cells, *[""] * (width - len(cells))]
            self.writer.writerow([*padded[:width], reason, *padded[width:]])
        if rows and self.handle:
            self.handle.flush()

    def _truncate(self, keep: int) -> None:
        temporary = f"{self.path}.partial"
        with (
            open(self.path, encoding="utf-8-sig", newline="") as source,
            open(temporary, "w", encoding="utf-8-sig", newline="") as target,
        ):
            writer = csv.writer(target)
            for row in itertools.islice(csv.reader(source), keep + 1):  # + the header
                writer.writerow(row)
        os.replace(temporary, self.path)

    def __exit__(self, *exc_info: object) -> None:
        if self.handle:
            self.handle.close()

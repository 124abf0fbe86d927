"""Reading an uploaded CSV file: its encoding, delimiter and header row, with a clear
error for a file we cannot import, and its rows streamed from storage one line at a time."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from django.core.exceptions import ValidationError

from ..models import ImportJob

SAMPLE_BYTES = 64 * 1024
READ_BYTES = 1024 * 1024
MAX_COLUMNS = 300
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class FileLayout:
    encoding: str
    delimiter: str
    headers: list[str]


def file_error(message: str) -> ValidationError:
    return ValidationError({"file": [message]})


def sniff_encoding(stream: IO[bytes]) -> str:
    """UTF-8 (with or without BOM), UTF-16 (BOM, or NUL-padded ASCII), else Windows-1252
    (which reads Latin-1 text too). Checks the whole file, so a stray byte on row 90,000
    is found now rather than half-way through the import."""
    stream.seek(0)
    head = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    if not head.strip():
        raise file_error("The file is empty.")
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise file_error(
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
    raise file_error(
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
    raise file_error(
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
        raise file_error("The file is empty.")
    cells = first[1]
    if any(_looks_like_email(cell) for cell in cells):
        raise file_error(
            "The first row holds an email address, not column names. Add a first row that "
            "names the columns, for example: email,first_name,last_name."
        )
    if len(cells) > MAX_COLUMNS:
        raise file_error(f"The file has {len(cells)} columns; at most {MAX_COLUMNS} are read.")
    if next(records, None) is None and len(sample.encode(encoding, "ignore")) < SAMPLE_BYTES:
        raise file_error("The file has a header row but no contacts below it.")
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

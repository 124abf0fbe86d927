"""The suppression list under /w/<workspace_slug>/suppressions/: addresses the workspace
never mails (hard bounces, spam complaints, erasures and addresses added by hand). Only a
SHA-256 hash of each address is stored, so the page lists hashes; to find an address, check
it. Everyone in the workspace reads and checks; owners and admins add, remove and import.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from workspaces.forms import add_service_errors
from workspaces.htmx import form_error_status
from workspaces.models import Role
from workspaces.roles import requires_role

from . import services
from .attributes import clean_email
from .models import Suppression, SuppressionReason

PER_PAGE = 50
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_ROWS = 100_000
MAX_PROBLEMS_SHOWN = 200
HEADER_NAMES = {"email", "e-mail", "email address", "address", "e-mail address"}
PAGE = "contacts/suppressions/list.html"

admins_write = requires_role(read=Role.VIEWER, write=Role.ADMIN)
everyone = requires_role(read=Role.VIEWER, write=Role.VIEWER)


class AddressForm(forms.Form):
    email = forms.CharField(max_length=254, label="Email address")

    def clean_email(self) -> str:
        return clean_email(self.cleaned_data["email"])


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="One address per row, in the first column (or a column headed “email”).",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError("The file is larger than 5 MB; split it into several files.")
        return upload


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    already: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # line, value, why
    problem_count: int = 0

    @property
    def hidden_problems(self) -> int:
        return self.problem_count - len(self.problems)


def read_addresses(upload: Any) -> tuple[list[str], ImportReport]:
    """The clean addresses of a one-column CSV and a report of the rows that are not one.
    Raises ValidationError when the file as a whole cannot be read."""
    raw = upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise ValidationError("This is not a CSV file.")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    report = ImportReport()
    emails: list[str] = []
    column = 0
    try:
        for line, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
            cells = [cell.strip() for cell in row]
            if line == 1:
                headers = [cell.lower() for cell in cells]
                named = [i for i, name in enumerate(headers) if name in HEADER_NAMES]
                if named or (cells and "@" not in cells[0]):
                    column = named[0] if named else 0
                    continue
            if not any(cells):
                continue
            report.rows += 1
            if report.rows > MAX_ROWS:
                raise ValidationError(f"At most {MAX_ROWS:,} rows per file.")
            value = cells[column] if column < len(cells) else ""
            try:
                emails.append(clean_email(value))
            except ValidationError as error:
                report.problem_count += 1
                if len(report.problems) < MAX_PROBLEMS_SHOWN:
                    report.problems.append((line, value[:120], " ".join(error.messages)))
    except csv.Error as error:
        raise ValidationError(f"The file is not valid CSV: {error}") from error
    return emails, report


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    workspace = request.workspace
    reason = request.GET.get("reason", "")
    entries = Suppression.objects.for_workspace(workspace).order_by("-created_at", "-pk")
    if reason in SuppressionReason.values:
        entries = entries.filter(reason=reason)
    page = Paginator(entries, PER_PAGE).get_page(request.GET.get("page"))
    return {
        "tab": "sending",
        "sending_tab": "suppressions",
        "page": page,
        "entries": page.object_list,
        "reason": reason,
        "reasons": SuppressionReason.choices,
        "add_form": AddressForm(prefix="add"),
        "remove_form": AddressForm(prefix="remove"),
        "check_form": AddressForm(prefix="check"),
        "import_form": ImportForm(),
        **extra,
    }


def _page(request: HttpRequest, *, invalid: bool = False, **extra: Any) -> HttpResponse:
    status = form_error_status(request) if invalid else 200
    return render(request, PAGE, _context(request, **extra), status=status)


@vary_on_headers("HX-Request")
@admins_write
def suppression_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """The list; a POST adds an address by hand."""
    if request.method != "POST":
        return _page(request)
    form = AddressForm(request.POST, prefix="add")
    if form.is_valid():
        try:
            services.suppress(
                workspace=request.workspace,
                email=form.cleaned_data["email"],
                reason=SuppressionReason.MANUAL,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{form.cleaned_data['email']} is suppressed.")
            return redirect("suppression_list", workspace_slug=workspace_slug)
    return _page(request, invalid=True, add_form=form)


@require_POST
@admins_write
def suppression_remove(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = AddressForm(request.POST, prefix="remove")
    if form.is_valid():
        email = form.cleaned_data["email"]
        if services.unsuppress(workspace=request.workspace, email=email):
            messages.success(request, f"{email} is no longer suppressed.")
            return redirect("suppression_list", workspace_slug=workspace_slug)
        form.add_error("email", "That address is not on the suppression list.")
    return _page(request, invalid=True, remove_form=form)


@require_POST
@everyone
@vary_on_headers("HX-Request")
def suppression_check(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """Is this address suppressed? A POST, so addresses stay out of URLs and logs."""
    form = AddressForm(request.POST, prefix="check")
    found = None
    if form.is_valid():
        found = services.suppression_for(
            workspace=request.workspace, email=form.cleaned_data["email"]
        )
    context = {"check_form": form, "checked": form.is_valid(), "found": found}
    invalid = not form.is_valid()
    if request.htmx:
        status = form_error_status(request) if invalid else 200
        return render(request, f"{PAGE}#check", context, status=status)
    return _page(request, invalid=invalid, **context)


@require_POST
@admins_write
def suppression_import(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, invalid=True, import_form=form)
    try:
        emails, report = read_addresses(form.cleaned_data["file"])
    except ValidationError as error:
        form.add_error("file", error)
        return _page(request, invalid=True, import_form=form)
    report.added, report.already = services.suppress_many(
        workspace=request.workspace, emails=emails
    )
    return _page(request, report=report)

"""CSV import pages under /w/<workspace_slug>/contacts/import/ (upload → columns → options
→ preview → run → progress and report) and the CSV export of the contact list."""

from __future__ import annotations

import csv
import itertools
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from workspaces.access import get_owned_or_404
from workspaces.forms import add_service_errors
from workspaces.models import Role
from workspaces.roles import requires_role

from . import exporting, importing
from .models import (
    CustomField,
    ExistingContacts,
    ImportJob,
    ImportStatus,
    LifecycleStage,
    Persona,
)

RECENT_IMPORTS = 50
SAMPLE_VALUES = 3
CONSENT_CHOICES = [
    ("website", "They signed up on our website or in our shop"),
    ("customers", "They are customers who agreed to hear from us when they bought"),
    ("in_person", "They gave us their address in person and agreed to hear from us"),
    ("other", "Another way (describe it below)"),
    ("none", "I can't say how they agreed: import them as not subscribed"),
]
CONSENT_STATEMENTS = dict(CONSENT_CHOICES[:3])


# --- forms -------------------------------------------------------------------------------


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="An export from Mailchimp, Mautic or listmonk, or any file with an email "
        "column. UTF-8, UTF-16 or Windows-1252; commas, semicolons or tabs.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv"}),
    )


class MappingForm(forms.Form):
    """One select per column of the file, preset to the automatic guess."""

    def __init__(
        self,
        *args: Any,
        job: ImportJob,
        custom_fields: list[CustomField],
        samples: list[list[str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.job = job
        choices = importing.target_choices(job.headers, custom_fields, job.mapping)
        for index, header in enumerate(job.headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header,
                choices=choices,
                required=False,
                initial=job.mapping.get(header, importing.IGNORE),
            )
        self.rows = [
            (header, self[f"column_{index}"], [row[index] for row in samples if index < len(row)])
            for index, header in enumerate(job.headers)
        ]

    def mapping(self) -> dict[str, str]:
        return {
            header: self.cleaned_data.get(f"column_{index}") or importing.IGNORE
            for index, header in enumerate(self.job.headers)
        }

    def add_mapping_errors(self, exc: ValidationError) -> None:
        columns = {header: f"column_{i}" for i, header in enumerate(self.job.headers)}
        for key, messages in exc.message_dict.items():
            self.add_error(columns.get(key), messages)


class OptionsForm(forms.Form):
    existing = forms.ChoiceField(
        label="Contacts you already have",
        choices=ExistingContacts.choices,
        initial=ExistingContacts.UPDATE,
        widget=forms.RadioSelect,
        help_text="Matched by email address (or external id). Empty cells never erase what "
        "you already know.",
    )
    tags = forms.CharField(
        label="Tags to add",
        required=False,
        max_length=500,
        help_text="Separate tags with commas; new tags are created.",
    )
    lifecycle_stage = forms.ModelChoiceField(
        label="Lifecycle stage",
        queryset=LifecycleStage.objects.none(),
        required=False,
        to_field_name="public_id",
        empty_label="Leave as it is",
    )
    persona = forms.ModelChoiceField(
        label="Persona",
        queryset=Persona.objects.none(),
        required=False,
        to_field_name="public_id",
        empty_label="None",
    )
    consent = forms.ChoiceField(
        label="How did these people agree to receive your emails?",
        choices=CONSENT_CHOICES,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Say how they agreed, or choose to import them as not subscribed."
        },
    )
    consent_other = forms.CharField(
        label="Describe how they agreed",
        required=False,
        max_length=500,
        help_text="Recorded with every new contact as the proof of their consent.",
    )

    def __init__(self, *args: Any, job: ImportJob, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        workspace = job.workspace
        self.fields["lifecycle_stage"].queryset = LifecycleStage.objects.for_workspace(workspace)
        self.fields["persona"].queryset = Persona.objects.for_workspace(workspace)
        if not self.is_bound:
            self.initial.update(
                existing=job.existing,
                tags=", ".join(job.tags.values_list("name", flat=True)),
                lifecycle_stage=job.lifecycle_stage.public_id if job.lifecycle_stage else None,
                persona=job.persona.public_id if job.persona else None,
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("consent") == "other" and not cleaned.get("consent_other", "").strip():
            self.add_error(
                "consent_other",
                "Describe how they agreed, or choose to import them as not subscribed.",
            )
        return cleaned

    def consent_basis(self) -> str:
        choice = self.cleaned_data["consent"]
        if choice == "other":
            return self.cleaned_data["consent_other"].strip()
        return CONSENT_STATEMENTS.get(choice, "")


# --- pages -------------------------------------------------------------------------------


def _job(request: HttpRequest, import_id: Any) -> ImportJob:
    return get_owned_or_404(ImportJob, request.workspace, import_id)


def _wizard_done(job: ImportJob) -> bool:
    return job.status != ImportStatus.UPLOADED


@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """Past imports and, for editors, the upload form that starts a new one."""
    posted = request.method == "POST"
    form = UploadForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        try:
            job = importing.create_import_job(
                workspace=request.workspace,
                upload=form.cleaned_data["file"],
                created_by=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("import_map", workspace_slug=workspace_slug, import_id=job.public_id)
    jobs = (
        ImportJob.objects.for_workspace(request.workspace)
        .select_related("created_by")
        .order_by("-created_at")[:RECENT_IMPORTS]
    )
    context = {
        "form": form,
        "jobs": jobs,
        "can_edit": Role.at_least(request.workspace_role, Role.EDITOR),
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/imports/list.html", context, status=status)


@require_http_methods(["GET", "POST"])
@requires_role(read=Role.EDITOR)
def import_map(request: HttpRequest, workspace_slug: str, import_id: Any) -> HttpResponse:
    job = _job(request, import_id)
    if _wizard_done(job):
        return redirect("import_detail", workspace_slug=workspace_slug, import_id=job.public_id)
    custom_fields = list(CustomField.objects.for_workspace(request.workspace))
    with importing.open_records(job) as records:
        samples = [cells for _, cells in itertools.islice(records, SAMPLE_VALUES)]
    data = request.POST if request.method == "POST" else None
    form = MappingForm(data, job=job, custom_fields=custom_fields, samples=samples)
    if request.method == "POST" and form.is_valid():
        try:
            importing.set_mapping(workspace=request.workspace, job=job, mapping=form.mapping())
        except ValidationError as exc:
            form.add_mapping_errors(exc)
        else:
            return redirect(
                "import_options", workspace_slug=workspace_slug, import_id=job.public_id
            )
    context = {
        "job": job,
        "form": form,
        "source": importing.detect_source(job.headers),
        "step": "map",
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/imports/map.html", context, status=status)


@require_http_methods(["GET", "POST"])
@requires_role(read=Role.EDITOR)
def import_options(request: HttpRequest, workspace_slug: str, import_id: Any) -> HttpResponse:
    job = _job(request, import_id)
    if _wizard_done(job):
        return redirect("import_detail", workspace_slug=workspace_slug, import_id=job.public_id)
    form = OptionsForm(request.POST if request.method == "POST" else None, job=job)
    if request.method == "POST" and form.is_valid():
        try:
            importing.set_options(
                workspace=request.workspace,
                job=job,
                existing=form.cleaned_data["existing"],
                tag_names=importing.split_tags(form.cleaned_data["tags"]),
                stage=form.cleaned_data["lifecycle_stage"],
                persona=form.cleaned_data["persona"],
                consent_basis=form.consent_basis(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect(
                "import_preview", workspace_slug=workspace_slug, import_id=job.public_id
            )
    status = 400 if form.is_bound and form.errors else 200
    context = {"job": job, "form": form, "step": "options"}
    return render(request, "contacts/imports/options.html", context, status=status)


@require_GET
@requires_role(read=Role.EDITOR)
def import_preview(request: HttpRequest, workspace_slug: str, import_id: Any) -> HttpResponse:
    job = _job(request, import_id)
    if _wizard_done(job):
        return redirect("import_detail", workspace_slug=workspace_slug, import_id=job.public_id)
    try:
        rows = importing.preview_import(workspace=request.workspace, job=job)
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        rows, error = [], str(exc)
    else:
        error = ""
    columns = [t for t in dict.fromkeys(job.mapping.values()) if t]
    context = {
        "job": job,
        "rows": rows,
        "error": error,
        "mapped": [(h, t) for h, t in job.mapping.items() if t],
        "columns": columns,
        "tags": list(job.tags.all()),
        "step": "preview",
    }
    return render(request, "contacts/imports/preview.html", context)


@require_POST
def import_run(request: HttpRequest, workspace_slug: str, import_id: Any) -> HttpResponse:
    """Start the import, or resume one that stopped."""
    job = _job(request, import_id)
    try:
        importing.start_import(workspace=request.workspace, job=job)
    except ValidationError:
        return redirect("import_map", workspace_slug=workspace_slug, import_id=job.public_id)
    return redirect("import_detail", workspace_slug=workspace_slug, import_id=job.public_id)


@require_GET
@vary_on_headers("HX-Request")
def import_detail(request: HttpRequest, workspace_slug: str, import_id: Any) -> HttpResponse:
    """Progress while it runs (the bar polls this page), then the report."""
    job = _job(request, import_id)
    if job.status == ImportStatus.UPLOADED:
        return redirect("import_map", workspace_slug=workspace_slug, import_id=job.public_id)
    context = {
        "job": job,
        "polling": job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING),
        "percent": int(100 * job.processed_rows / job.total_rows) if job.total_rows else 0,
        "can_edit": Role.at_least(request.workspace_role, Role.EDITOR),
        "step": "run",
    }
    template = "contacts/imports/detail.html"
    return render(request, f"{template}#progress" if request.htmx else template, context)


@require_GET
def import_rejects(request: HttpRequest, workspace_slug: str, import_id: Any) -> FileResponse:
    job = _job(request, import_id)
    if not job.rejects_file or not job.rejects_file.storage.exists(job.rejects_file.name):
        raise Http404("This import has no rejected rows.")
    stem = job.filename.rsplit(".", 1)[0] or "import"
    return FileResponse(
        job.rejects_file.open("rb"),
        as_attachment=True,
        filename=f"{stem}-rejected.csv",
        content_type="text/csv; charset=utf-8",
    )


# Editors and above: a bulk download of personal data is more than viewing a page of it.
@require_GET
@requires_role(read=Role.EDITOR)
def contact_export(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """The contact list as CSV, with the list's filters (status, stage, persona, tag, q)."""
    try:
        contacts = exporting.contacts_to_export(
            request.workspace, **exporting.filter_parameters(request.GET)
        )
    except ValidationError as exc:
        lines = [f"{name}: {' '.join(errors)}" for name, errors in exc.message_dict.items()]
        return HttpResponseBadRequest("\n".join(lines), content_type="text/plain; charset=utf-8")
    rows = exporting.export_rows(request.workspace, contacts)
    response = StreamingHttpResponse(
        exporting.csv_chunks(rows), content_type="text/csv; charset=utf-8"
    )
    filename = exporting.export_filename(request.workspace)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response

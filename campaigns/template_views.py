"""Template pages under /w/<workspace_slug>/templates/: the list, the gallery of starters,
the editor (block cards or MJML/HTML source, with a live preview beside it), test sends,
revision history with restore, duplicate, archive and delete.

Everyone in the workspace reads and previews; editors write. The preview never saves: it
compiles what the form holds right now, so the stored template stays the last good
revision until a save compiles.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from liquid.exceptions import LiquidError

from contacts.models import Contact
from workspaces.access import get_owned_or_404
from workspaces.forms import add_service_errors
from workspaces.htmx import form_error_status
from workspaces.models import Role, Workspace
from workspaces.roles import requires_role

from . import services
from .models import EmailTemplate, TemplateKind, TemplatePurpose, TemplateRevision
from .rendering.compile import Problem, TemplateContent, TemplateInvalid
from .rendering.liquid_env import TEXT_ENV
from .template_forms import (
    ALIGN_CHOICES,
    BLOCK_TYPES,
    INNER_BLOCK_TYPES,
    BlankTemplateForm,
    TemplateForm,
    apply_block_op,
    blank_content,
    block_cards,
    blocks_from_post,
)

editors_write = requires_role(read=Role.VIEWER, write=Role.EDITOR)
# The preview is a POST (it carries the unsaved form) but writes nothing: viewers may use it.
previewers = requires_role(read=Role.VIEWER, write=Role.VIEWER)
EDITOR = "campaigns/templates/editor.html"
CONTACT_MATCHES = 10


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    with timezone.override(request.workspace.timezone):
        return render(request, template, context, status=status)


def _template_or_404(request: HttpRequest, template_id: UUID) -> EmailTemplate:
    return get_owned_or_404(EmailTemplate, request.workspace, template_id)


def _edit_url(template: EmailTemplate) -> str:
    return reverse(
        "template_edit",
        kwargs={"workspace_slug": template.workspace.slug, "template_id": template.public_id},
    )


def _list_url(workspace: Workspace) -> str:
    return reverse("template_list", kwargs={"workspace_slug": workspace.slug})


# --- the list ---------------------------------------------------------------------------


@editors_write
@require_GET
def template_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    archived = request.GET.get("archived") == "1"
    templates = EmailTemplate.objects.for_workspace(workspace)
    context = {
        "templates": list(templates.filter(archived_at__isnull=not archived).order_by("name")),
        "archived": archived,
        "archived_count": templates.filter(archived_at__isnull=False).count(),
    }
    return _render(request, "campaigns/templates/list.html", context)


# --- the gallery and new templates ----------------------------------------------------------


@editors_write
@require_GET
def template_gallery(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    from . import gallery

    workspace = request.workspace
    cards = []
    for starter in gallery.STARTERS:
        content = TemplateContent(
            kind=TemplateKind.BLOCKS,
            subject=starter.subject,
            preheader=starter.preheader,
            blocks=starter.blocks,
        )
        result = services.preview(workspace, content, purpose=starter.purpose)
        cards.append({"starter": starter, "html": result.email.html if result.email else ""})
    context = {"cards": cards, "blank_form": BlankTemplateForm(), "kinds": TemplateKind.choices}
    return _render(request, "campaigns/templates/gallery.html", context)


@editors_write
@require_POST
def template_gallery_use(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """ "Use this template": a new template from a starter, opened in the editor."""
    from . import gallery

    workspace = request.workspace
    key = request.POST.get("starter", "")
    try:
        gallery.get_starter(key)
    except KeyError:
        messages.error(request, "That starter template does not exist (any more).")
        return redirect("template_gallery", workspace_slug=workspace.slug)
    try:
        template = gallery.create_from_starter(workspace, key, user=request.user)
    except (ValidationError, TemplateInvalid) as error:
        messages.error(request, f"Could not create the template: {_error_text(error)}")
        return redirect("template_gallery", workspace_slug=workspace.slug)
    messages.success(request, f"“{template.name}” is yours to edit.")
    return redirect(_edit_url(template))


@editors_write
@require_POST
def template_create_blank(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """ "Start blank": a new blocks, MJML or HTML template with a body that compiles."""
    workspace = request.workspace
    form = BlankTemplateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose blocks, MJML or HTML to start a blank template.")
        return redirect("template_gallery", workspace_slug=workspace.slug)
    kind = form.cleaned_data["kind"]
    label = dict(TemplateKind.choices)[kind]
    untitled = f"Untitled {label} template"
    name = form.cleaned_data["name"] or services.free_template_name(workspace, untitled)
    try:
        template = services.create_template(
            workspace, name=name, user=request.user, **blank_content(kind)
        )
    except (ValidationError, TemplateInvalid) as error:
        messages.error(request, f"Could not create the template: {_error_text(error)}")
        return redirect("template_gallery", workspace_slug=workspace.slug)
    messages.success(request, f"“{template.name}” created.")
    return redirect(_edit_url(template))


def _error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)


# --- the editor -----------------------------------------------------------------------------


def _posted_content(template: EmailTemplate, data: Any) -> tuple[TemplateContent, list]:
    """The unsaved content the editor form holds (the kind is the template's own)."""
    blocks = blocks_from_post(data) if template.kind == TemplateKind.BLOCKS else []
    content = TemplateContent(
        kind=template.kind,
        subject=str(data.get("subject", "")),
        preheader=str(data.get("preheader", "")),
        blocks=blocks,
        source=str(data.get("source", "")).replace("\r\n", "\n"),
    )
    return content, blocks


def _posted_purpose(template: EmailTemplate, data: Any) -> str:
    purpose = data.get("purpose")
    return purpose if purpose in TemplatePurpose.values else template.purpose


def _preview_contact(workspace: Workspace, data: Any) -> tuple[Contact | None, str]:
    """The contact "Preview as" names by email, or None for the sample data."""
    email = str(data.get("preview_as", "")).strip()
    if not email:
        return None, ""
    contact = Contact.objects.for_workspace(workspace).filter(email__iexact=email).first()
    return contact, email


def _contact_options(workspace: Workspace, typed: str) -> list[Contact]:
    """Suggestions for the "Preview as" picker: contacts whose email contains the text."""
    if len(typed) < 2:
        return []
    contacts = Contact.objects.for_workspace(workspace).filter(email__icontains=typed)
    return list(contacts.order_by("email")[:CONTACT_MATCHES])


def _preview_panel(
    workspace: Workspace,
    content: TemplateContent,
    purpose: str,
    contact: Contact | None,
    asked_email: str = "",
) -> dict[str, Any]:
    result = services.preview(workspace, content, purpose=purpose, contact=contact)
    return {
        "result": result,
        "contact": contact,
        "asked_email": asked_email,
        "preheader": _rendered_preheader(workspace, content.preheader, contact),
        "sender": services.brand_of(workspace).from_name or workspace.name,
    }


def _rendered_preheader(workspace: Workspace, preheader: str, contact: Contact | None) -> str:
    if not preheader.strip():
        return ""
    try:
        return TEXT_ENV.from_string(preheader).render(
            **services.preview_context(workspace, contact)
        )
    except LiquidError:
        return preheader


def _editor_page(
    request: HttpRequest,
    template: EmailTemplate,
    form: TemplateForm,
    content: TemplateContent,
    *,
    problems: list[Problem] | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace = request.workspace
    contact, asked = _preview_contact(workspace, request.POST or request.GET)
    purpose = _posted_purpose(template, request.POST) if request.POST else template.purpose
    panel = _preview_panel(workspace, content, purpose, contact, asked)
    problems = problems if problems is not None else panel["result"].problems
    context = {
        "template": template,
        "form": form,
        "cards": block_cards(content.blocks, problems),
        "problems": problems,
        "preview": panel,
        "preview_as": asked,
        **_editor_choices(),
    }
    name = f"{EDITOR}#editor" if request.htmx and status != 200 else EDITOR
    return _render(request, name, context, status=status)


def _editor_choices() -> dict[str, Any]:
    return {
        "block_types": BLOCK_TYPES,
        "inner_block_types": INNER_BLOCK_TYPES,
        "aligns": ALIGN_CHOICES,
        "levels": (1, 2, 3),
    }


def _initial_form(template: EmailTemplate) -> TemplateForm:
    initial = {
        "name": template.name,
        "subject": template.subject,
        "preheader": template.preheader,
        "purpose": template.purpose,
        "source": template.source,
    }
    return TemplateForm(initial=initial, kind=template.kind)


@editors_write
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, workspace_slug: str, template_id: UUID) -> HttpResponse:
    template = _template_or_404(request, template_id)
    if request.method == "GET":
        return _editor_page(
            request, template, _initial_form(template), TemplateContent.of(template)
        )
    form = TemplateForm(request.POST, kind=template.kind)
    content, blocks = _posted_content(template, request.POST)
    if not form.is_valid():
        return _editor_page(request, template, form, content, status=form_error_status(request))
    fields: dict[str, Any] = {
        "name": form.cleaned_data["name"],
        "purpose": form.cleaned_data["purpose"],
        "subject": content.subject,
        "preheader": content.preheader,
    }
    if template.kind == TemplateKind.BLOCKS:
        fields["blocks"] = blocks
    else:
        fields["source"] = content.source
    before = template.revision_number
    try:
        with transaction.atomic():
            services.update_template(
                template, user=request.user, note=form.cleaned_data["note"], **fields
            )
    except TemplateInvalid as invalid:
        template.refresh_from_db()
        form.add_error(
            None, "Not saved: fix the problems below. The last saved version is unchanged."
        )
        status = form_error_status(request)
        return _editor_page(
            request, template, form, content, problems=invalid.problems, status=status
        )
    except ValidationError as error:
        template.refresh_from_db()
        add_service_errors(form, error)
        return _editor_page(request, template, form, content, status=form_error_status(request))
    if template.revision_number != before:
        messages.success(request, f"Saved as revision {template.revision_number}.")
    else:
        messages.success(request, "Saved. The content had not changed, so no new revision.")
    if request.htmx:
        return HttpResponseClientRedirect(_edit_url(template))
    return redirect(_edit_url(template))


@previewers
@require_POST
def template_preview(request: HttpRequest, workspace_slug: str, template_id: UUID) -> HttpResponse:
    """The preview panel for the unsaved form: the email in a sandboxed frame, the inbox
    line, the plain-text part, the checks and any problems with line and column."""
    template = _template_or_404(request, template_id)
    workspace = request.workspace
    if request.POST.get("saved"):  # a viewer's page, whose form fields are read-only
        content, purpose = TemplateContent.of(template), template.purpose
    else:
        content, _ = _posted_content(template, request.POST)
        purpose = _posted_purpose(template, request.POST)
    contact, asked = _preview_contact(workspace, request.POST)
    context = {
        "template": template,
        "preview": _preview_panel(workspace, content, purpose, contact, asked),
        "contact_options": _contact_options(workspace, asked),
    }
    return _render(request, "campaigns/templates/_preview.html", context)


@editors_write
@require_POST
def template_blocks(request: HttpRequest, workspace_slug: str, template_id: UUID) -> HttpResponse:
    """The block cards after an add, move or delete, rebuilt from the posted form (so
    unsaved edits stay), and the preview of the result swapped in out of band."""
    template = _template_or_404(request, template_id)
    workspace = request.workspace
    blocks = apply_block_op(blocks_from_post(request.POST), request.POST)
    content, _ = _posted_content(template, request.POST)
    content = TemplateContent(
        kind=content.kind, subject=content.subject, preheader=content.preheader, blocks=blocks
    )
    contact, asked = _preview_contact(workspace, request.POST)
    panel = _preview_panel(
        workspace, content, _posted_purpose(template, request.POST), contact, asked
    )
    context = {
        "template": template,
        "cards": block_cards(blocks, panel["result"].problems),
        "preview": panel,
        "oob": True,
        "contact_options": _contact_options(workspace, asked),
        **_editor_choices(),
    }
    return _render(request, f"{EDITOR}#blocks", context)


def _sandbox_in_use() -> bool:
    return settings.EMAIL_BACKEND.endswith("SandboxEmailBackend")


@editors_write
@require_POST
def template_send_test(
    request: HttpRequest, workspace_slug: str, template_id: UUID
) -> HttpResponse:
    """Send the saved template to the signed-in user, as the chosen contact would get it."""
    template = _template_or_404(request, template_id)
    workspace = request.workspace
    contact, asked = _preview_contact(workspace, request.POST)
    result: dict[str, Any] = {"to": request.user.email, "sandbox": _sandbox_in_use()}
    try:
        services.send_test(template, to=request.user.email, contact=contact)
    except ValidationError as error:
        result["error"] = _error_text(error)
    result["contact"] = contact
    result["asked_email"] = asked
    if request.htmx:
        status = 200 if "error" not in result else form_error_status(request)
        return _render(request, f"{EDITOR}#send_result", {"send": result}, status=status)
    if "error" in result:
        messages.error(request, f"The test was not sent: {result['error']}")
    elif result["sandbox"]:
        messages.success(request, f"Test sent to {result['to']}; find it in the Sandbox inbox.")
    else:
        messages.success(request, f"Test sent to {result['to']}.")
    return redirect(_edit_url(template))


@editors_write
@require_GET
def template_preview_page(
    request: HttpRequest, workspace_slug: str, template_id: UUID
) -> HttpResponse:
    """The saved template at full width, as sample data or a chosen contact sees it."""
    template = _template_or_404(request, template_id)
    workspace = request.workspace
    contact, asked = _preview_contact(workspace, request.GET)
    panel = _preview_panel(
        workspace, TemplateContent.of(template), template.purpose, contact, asked
    )
    context = {"template": template, "preview": panel, "preview_as": asked}
    return _render(request, "campaigns/templates/preview_page.html", context)


# --- revisions ------------------------------------------------------------------------------


def _revision_or_404(
    request: HttpRequest, template: EmailTemplate, revision_id: UUID
) -> TemplateRevision:
    revision = get_owned_or_404(TemplateRevision, request.workspace, revision_id)
    if revision.template_id != template.pk:
        raise Http404("No such revision of this template.")
    return revision


@editors_write
@require_GET
def template_revisions(
    request: HttpRequest, workspace_slug: str, template_id: UUID
) -> HttpResponse:
    template = _template_or_404(request, template_id)
    revisions = (
        TemplateRevision.objects.for_workspace(request.workspace)
        .filter(template=template)
        .select_related("created_by")
        .order_by("-number")
    )
    context = {"template": template, "revisions": list(revisions)}
    return _render(request, "campaigns/templates/revisions.html", context)


@editors_write
@require_GET
def template_revision(
    request: HttpRequest, workspace_slug: str, template_id: UUID, revision_id: UUID
) -> HttpResponse:
    template = _template_or_404(request, template_id)
    revision = _revision_or_404(request, template, revision_id)
    panel = _preview_panel(request.workspace, TemplateContent.of(revision), template.purpose, None)
    context = {"template": template, "revision": revision, "preview": panel}
    return _render(request, "campaigns/templates/revision.html", context)


@editors_write
@require_POST
def template_revision_restore(
    request: HttpRequest, workspace_slug: str, template_id: UUID, revision_id: UUID
) -> HttpResponse:
    template = _template_or_404(request, template_id)
    revision = _revision_or_404(request, template, revision_id)
    try:
        services.restore_revision(template, revision, user=request.user)
    except (ValidationError, TemplateInvalid) as error:
        # A revision compiled when it was saved; the brand kit may have changed since.
        messages.error(
            request, f"Revision {revision.number} cannot be restored: {_error_text(error)}"
        )
        return redirect(
            "template_revisions", workspace_slug=workspace_slug, template_id=template.public_id
        )
    messages.success(
        request,
        f"Restored revision {revision.number} as revision {template.revision_number}.",
    )
    return redirect(_edit_url(template))


# --- duplicate, archive, delete ---------------------------------------------------------------


@editors_write
@require_POST
def template_duplicate(
    request: HttpRequest, workspace_slug: str, template_id: UUID
) -> HttpResponse:
    template = _template_or_404(request, template_id)
    try:
        copy = services.duplicate_template(template, user=request.user)
    except (ValidationError, TemplateInvalid) as error:
        messages.error(request, f"Could not duplicate “{template.name}”: {_error_text(error)}")
        return redirect(_edit_url(template))
    messages.success(request, f"Copied “{template.name}” to “{copy.name}”.")
    return redirect(_edit_url(copy))


@editors_write
@require_POST
def template_archive(request: HttpRequest, workspace_slug: str, template_id: UUID) -> HttpResponse:
    """Archive (archived=1) or bring back (archived=0) a template."""
    template = _template_or_404(request, template_id)
    archived = request.POST.get("archived", "1") != "0"
    services.archive_template(template, archived=archived)
    if archived:
        messages.success(request, f"Archived “{template.name}”. It stays in the archive list.")
        return redirect(_list_url(request.workspace))
    messages.success(request, f"“{template.name}” is back among the active templates.")
    return redirect(_edit_url(template))


@editors_write
@require_http_methods(["GET", "POST"])
def template_delete(request: HttpRequest, workspace_slug: str, template_id: UUID) -> HttpResponse:
    template = _template_or_404(request, template_id)
    if request.method == "GET":
        return _render(request, "campaigns/templates/delete.html", {"template": template})
    name = template.name
    services.delete_template(template)
    messages.success(request, f"Deleted “{name}” and its revision history.")
    return redirect(_list_url(request.workspace))

"""Contact pages under /w/<workspace_slug>/contacts/: the list with filters and bulk actions,
adding a contact, the profile (inline edits, stage, persona, tags, subscription, topics,
consent history, timeline) and the GDPR download and erasure. WorkspaceMiddleware has
already checked membership and role: viewers read, editors write."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from workspaces.access import get_owned_or_404
from workspaces.forms import add_service_errors
from workspaces.models import Role
from workspaces.roles import requires_role

from . import queries, services
from .forms import (
    BulkActionForm,
    ConsentBasisForm,
    ContactCreateForm,
    ContactEditForm,
    ContactFilterForm,
)
from .models import (
    Contact,
    LifecycleStage,
    Persona,
    Source,
    SubscriptionStatus,
    Tag,
    Topic,
)
from .timeline import TimelineCursor, contact_timeline

BULK_CHUNK = 5000
CHANGED = "contact-changed"  # the HTMX event that makes the timeline reload


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render with times in the workspace's time zone."""
    with timezone.override(request.workspace.timezone):
        return render(request, template, context, status=status)


def _htmx(status: int) -> int:
    """A fragment showing form errors answers 422, see workspaces.htmx.form_error_status."""
    return 422 if status == 400 else status


def _is_fragment(request: HttpRequest, target: str) -> bool:
    """An HTMX request that swaps `target` (a history restore wants the whole page)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


# --- the list --------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    workspace = request.workspace
    form = ContactFilterForm(request.GET)
    form.is_valid()
    filters, sort = form.filters(), form.chosen_sort()
    after = queries.ListCursor.from_token(request.GET.get("after", ""), sort)
    before = queries.ListCursor.from_token(request.GET.get("before", ""), sort)
    page = queries.list_contacts(
        workspace,
        filters,
        sort=sort,
        after=after,
        before=None if after else before,
        per_page=form.page_size(),
    )
    params = {**filters.as_params()}
    if sort != queries.DEFAULT_SORT:
        params["sort"] = sort
    if form.page_size() != queries.DEFAULT_PAGE_SIZE:
        params["per_page"] = str(form.page_size())
    return {
        "list_url": reverse("contact_list", kwargs={"workspace_slug": workspace.slug}),
        "filter_form": form,
        "filters": filters,
        "sort": sort,
        "page": page,
        "contacts": page.contacts,
        "query": urlencode(params),
        "filter_query": urlencode(filters.as_params()),
        "next_url": _page_url(request, params, "after", page.next_cursor),
        "previous_url": _page_url(request, params, "before", page.previous_cursor),
        "first_page": after is None and before is None,
        "is_new_workspace": not page.contacts
        and not filters.active
        and after is None
        and before is None,
        "sorts": queries.SORTS,
        "statuses": SubscriptionStatus.choices,
    }


def _page_url(
    request: HttpRequest, params: dict[str, str], direction: str, cursor: Any
) -> str | None:
    if cursor is None:
        return None
    url = reverse("contact_list", kwargs={"workspace_slug": request.workspace.slug})
    return f"{url}?{urlencode({**params, direction: cursor.token()})}"


@vary_on_headers("HX-Request")
def contact_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    context = _list_context(request)
    if _is_fragment(request, "contact-results"):
        return _render(request, "contacts/list.html#results", context)
    context["choices"] = queries.filter_choices(request.workspace)
    return _render(request, "contacts/list.html", context)


@require_GET
def contact_count(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """How many contacts match the filters; loaded after the list, so the page stays fast."""
    form = ContactFilterForm(request.GET)
    form.is_valid()
    total = queries.count_contacts(request.workspace, form.filters())
    return _render(request, "contacts/list.html#count", {"total": total})


@require_POST
@requires_role(read=Role.EDITOR, write=Role.EDITOR)
def contact_bulk(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    filter_form = ContactFilterForm(request.POST)
    filter_form.is_valid()
    filters = filter_form.filters()
    back = reverse("contact_list", kwargs={"workspace_slug": workspace_slug})
    back += f"?{urlencode(filters.as_params())}" if filters.active else ""
    form = BulkActionForm(request.POST, workspace=workspace)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect(back)
    data = form.cleaned_data
    if data["scope"] == "all":
        targets = queries.filter_contacts(workspace, filters)
    else:
        targets = queries.contacts_by_public_ids(workspace, data["contact"])
    if data["action"] == "delete" and not data["confirmed"]:
        context = {
            "form": form,
            "total": targets.count(),
            "filters": filters,
            "selected": data["contact"],
            "scope": data["scope"],
            "back": back,
        }
        return _render(request, "contacts/bulk_delete_confirm.html", context)
    try:
        done = _apply_bulk_action(workspace, targets, data, request.user.email)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
    return redirect(back)


def _apply_bulk_action(workspace: Any, targets: QuerySet[Contact], data: dict, actor: str) -> str:
    """One transaction: every chosen contact changes, or none does."""
    action = data["action"]
    with transaction.atomic():
        if action == "change_stage":
            moved = services.change_stage(
                workspace=workspace, contacts=targets, stage=data["stage"], source=Source.MANUAL
            )
            stage = data["stage"].name if data["stage"] else "no stage"
            return f"{moved} contacts moved to {stage}."
        if action == "unsubscribe":
            changed = services.unsubscribe(
                workspace=workspace,
                contacts=targets,
                method=Source.MANUAL,
                source=f"Bulk unsubscribe by {actor}",
            )
            return f"{changed} contacts unsubscribed."
        ids = list(targets.order_by().values_list("pk", flat=True))
        if action == "delete":
            _each_chunk(
                ids, lambda chunk: services.delete_contacts(workspace=workspace, contact_ids=chunk)
            )
            return f"{len(ids)} contacts deleted."
        tag_name = data["tag_name"].strip()
        if action == "add_tag":
            tags = services.get_or_create_tags(workspace=workspace, names=[tag_name])
            _each_chunk(
                ids,
                lambda chunk: services.add_tags(workspace=workspace, contact_ids=chunk, tags=tags),
            )
            return f"Tag “{tags[0].name}” added to {len(ids)} contacts."
        tag = Tag.objects.for_workspace(workspace).filter(name__iexact=tag_name).first()
        if tag is None:
            raise ValidationError(f"There is no tag called “{tag_name}”.")
        _each_chunk(
            ids,
            lambda chunk: services.remove_tags(workspace=workspace, contact_ids=chunk, tags=[tag]),
        )
        return f"Tag “{tag.name}” removed from {len(ids)} contacts."


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[start : start + BULK_CHUNK] for start in range(0, len(ids), BULK_CHUNK)]


def _each_chunk(ids: Sequence[int], apply: Callable[[Sequence[int]], Any]) -> None:
    for chunk in _chunks(ids):
        apply(chunk)


# --- adding a contact ------------------------------------------------------------------------


@requires_role(read=Role.EDITOR, write=Role.EDITOR)
def contact_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    form = ContactCreateForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        contact = _create_contact(request, form)
        if contact is not None:
            messages.success(request, f"{contact.email} added.")
            return redirect(
                "contact_profile", workspace_slug=workspace_slug, contact_id=contact.public_id
            )
    status = 400 if form.errors else 200
    return _render(request, "contacts/new.html", {"form": form}, status=status)


def _create_contact(request: HttpRequest, form: ContactCreateForm) -> Contact | None:
    workspace, data = request.workspace, form.cleaned_data
    consent = None
    if data["subscribe"]:
        consent = services.ConsentInput(
            method=Source.MANUAL,
            text_shown=data["consent_basis"].strip(),
            source=f"Added by {request.user.email}",
            ip_address=request.META.get("REMOTE_ADDR") or None,
        )
    with transaction.atomic():
        try:
            tags = services.get_or_create_tags(workspace=workspace, names=form.tag_names())
            [result] = services.upsert_contacts(
                workspace=workspace,
                rows=[form.contact_row()],
                source=Source.MANUAL,
                existing="skip",
                tags=tags,
                stage=data["lifecycle_stage"],
                persona=data["persona"],
                consent=consent,
                subscribe=bool(data["subscribe"]),
            )
        except ValidationError as exc:
            transaction.set_rollback(True)
            add_service_errors(form, exc)
            return None
        if result.status == "created":
            return result.contact
        transaction.set_rollback(True)  # no tag is left behind for a contact not added
    if result.status == "skipped":
        form.add_error("email", "This address is already a contact.")
        form.existing_contact = result.contact
    for field, errors in result.errors.items():
        form.add_error(field if field in form.fields else None, errors)
    return None


# --- the profile -----------------------------------------------------------------------------


def _get_contact(request: HttpRequest, contact_id: Any) -> Contact:
    contact = queries.get_contact_for_profile(request.workspace, contact_id)
    if contact is None:
        raise Http404("No such contact.")
    return contact


def _panel_context(request: HttpRequest, contact: Contact, **extra: Any) -> dict[str, Any]:
    workspace = request.workspace
    return {
        "contact": contact,
        "contact_tags": list(contact.tags.all()),
        "stages": list(LifecycleStage.objects.for_workspace(workspace)),
        "personas": list(Persona.objects.for_workspace(workspace).only("public_id", "name")),
        "topics": queries.topic_choices(workspace, contact),
        "consents": queries.consent_history(workspace, contact),
        "consent_form": extra.pop("consent_form", None) or ConsentBasisForm(),
        **extra,
    }


def _timeline_context(request: HttpRequest, contact: Contact, before: Any = None) -> dict:
    page = contact_timeline(workspace=request.workspace, contact=contact, before=before)
    return {"contact": contact, "timeline": page.items, "timeline_next": page.next_cursor}


@vary_on_headers("HX-Request")
def contact_profile(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    contact = _get_contact(request, contact_id)
    fields = queries.custom_fields(request.workspace)
    form = ContactEditForm(workspace=request.workspace, contact=contact, fields=fields)
    if _is_fragment(request, "contact-details"):
        return _render(request, "contacts/profile.html#details", {"contact": contact, "form": form})
    context = {
        **_panel_context(request, contact),
        **_timeline_context(request, contact),
        "form": form,
    }
    return _render(request, "contacts/profile.html", context)


@vary_on_headers("HX-Request")
@requires_role(read=Role.EDITOR, write=Role.EDITOR)
def contact_edit(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    workspace = request.workspace
    contact = _get_contact(request, contact_id)
    fields = queries.custom_fields(workspace)
    if request.method != "POST":
        form = ContactEditForm(workspace=workspace, contact=contact, fields=fields)
        return _render_details(request, contact, form, editing=True)
    form = ContactEditForm(data=request.POST, workspace=workspace, contact=contact, fields=fields)
    if form.is_valid():
        try:
            contact = services.update_contact(
                workspace=workspace, contact=contact, data=form.service_data()
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
            contact.refresh_from_db()
    if form.errors:
        return _render_details(request, contact, form, editing=True, status=400)
    if not request.htmx:
        messages.success(request, "Saved.")
        return redirect(
            "contact_profile", workspace_slug=workspace_slug, contact_id=contact.public_id
        )
    form = ContactEditForm(workspace=workspace, contact=contact, fields=fields)
    return _render_details(request, contact, form, editing=False, saved=True)


def _render_details(
    request: HttpRequest,
    contact: Contact,
    form: ContactEditForm,
    *,
    editing: bool,
    status: int = 200,
    saved: bool = False,
) -> HttpResponse:
    context = {"contact": contact, "form": form, "editing": editing, "saved": saved}
    if request.htmx:
        return _render(request, "contacts/profile.html#details", context, status=_htmx(status))
    context = {
        **_panel_context(request, contact),
        **_timeline_context(request, contact),
        **context,
    }
    return _render(request, "contacts/profile.html", context, status=status)


def _panel_response(
    request: HttpRequest, contact: Contact, *, error: str = "", notice: str = "", **extra: Any
) -> HttpResponse:
    """After a change on the side panel: the panel again (HTMX) or the whole page."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        elif notice:
            messages.success(request, notice)
        return redirect(
            "contact_profile",
            workspace_slug=request.workspace.slug,
            contact_id=contact.public_id,
        )
    contact = _get_contact(request, contact.public_id)  # fresh: status, stage, persona
    context = _panel_context(request, contact, panel_error=error, panel_notice=notice, **extra)
    if error:
        return _render(request, "contacts/profile.html#panel", context, status=_htmx(400))
    response = _render(request, "contacts/profile.html#panel", context)
    return trigger_client_event(response, CHANGED)


@require_POST
def contact_stage(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    workspace = request.workspace
    contact = _get_contact(request, contact_id)
    stage_id = request.POST.get("stage", "")
    stage = None
    if stage_id:
        stage = _owned_by_form_value(LifecycleStage, workspace, stage_id)
        if stage is None:
            return _panel_response(request, contact, error="Choose one of the listed stages.")
    services.change_stage(
        workspace=workspace,
        contacts=Contact.objects.for_workspace(workspace).filter(pk=contact.pk),
        stage=stage,
        source=Source.MANUAL,
    )
    return _panel_response(
        request, contact, notice=f"Moved to {stage.name if stage else 'no stage'}."
    )


@require_POST
def contact_persona(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    workspace = request.workspace
    contact = _get_contact(request, contact_id)
    persona_id = request.POST.get("persona", "")
    persona = None
    if persona_id:
        persona = _owned_by_form_value(Persona, workspace, persona_id)
        if persona is None:
            return _panel_response(request, contact, error="Choose one of the listed personas.")
    services.update_contact(workspace=workspace, contact=contact, data={"persona": persona})
    return _panel_response(request, contact, notice="Persona saved.")


@require_POST
def contact_tags(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    workspace = request.workspace
    contact = _get_contact(request, contact_id)
    if request.POST.get("remove"):
        tag = _owned_by_form_value(Tag, workspace, request.POST["remove"])
        if tag is None:
            return _panel_response(request, contact, error="That tag no longer exists.")
        services.remove_tags(workspace=workspace, contact_ids=[contact.pk], tags=[tag])
        return _panel_response(request, contact, notice=f"Tag “{tag.name}” removed.")
    names = [n.strip() for n in request.POST.get("names", "").split(",") if n.strip()]
    if not names:
        return _panel_response(request, contact, error="Type a tag name to add.")
    try:
        with transaction.atomic():
            tags = services.get_or_create_tags(workspace=workspace, names=names)
            services.add_tags(workspace=workspace, contact_ids=[contact.pk], tags=tags)
    except ValidationError as exc:
        return _panel_response(request, contact, error=" ".join(exc.messages))
    return _panel_response(request, contact, notice="Tags added.")


@require_POST
def contact_subscription(
    request: HttpRequest, workspace_slug: str, contact_id: Any
) -> HttpResponse:
    workspace = request.workspace
    contact = _get_contact(request, contact_id)
    one = Contact.objects.for_workspace(workspace).filter(pk=contact.pk)
    ip_address = request.META.get("REMOTE_ADDR") or None
    if request.POST.get("action") == "unsubscribe":
        services.unsubscribe(
            workspace=workspace,
            contacts=one,
            method=Source.MANUAL,
            source=f"Unsubscribed by {request.user.email}",
            ip_address=ip_address,
        )
        return _panel_response(request, contact, notice="Unsubscribed.")
    if request.POST.get("action") != "subscribe":
        return _panel_response(request, contact, error="Choose subscribe or unsubscribe.")
    if contact.status == SubscriptionStatus.COMPLAINED:
        return _panel_response(
            request,
            contact,
            error="This person reported your email as spam. Only they can subscribe again, "
            "through a signup form.",
        )
    form = ConsentBasisForm(request.POST)
    if not form.is_valid():
        return _panel_response(
            request, contact, error=" ".join(form.errors["consent_basis"]), consent_form=form
        )
    services.set_subscription(
        workspace=workspace,
        contacts=one,
        status=SubscriptionStatus.SUBSCRIBED,
        consent=services.ConsentInput(
            method=Source.MANUAL,
            text_shown=form.cleaned_data["consent_basis"],
            source=f"Subscribed by {request.user.email}",
            ip_address=ip_address,
        ),
    )
    return _panel_response(request, contact, notice="Subscribed.")


@require_POST
def contact_topic(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    workspace = request.workspace
    contact = _get_contact(request, contact_id)
    topic = _owned_by_form_value(Topic, workspace, request.POST.get("topic", ""))
    if topic is None:
        return _panel_response(request, contact, error="That topic no longer exists.")
    subscribed = request.POST.get("subscribed") == "yes"
    services.set_topic_preference(
        workspace=workspace,
        contact=contact,
        topic=topic,
        subscribed=subscribed,
        method=Source.MANUAL,
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )
    word = "in to" if subscribed else "out of"
    return _panel_response(request, contact, notice=f"Opted {word} {topic.name}.")


def _owned_by_form_value(model: type, workspace: Any, public_id: str) -> Any:
    """A row of this workspace named by a form value; None for a bad or foreign id."""
    try:
        return get_owned_or_404(model, workspace, public_id)
    except (Http404, ValidationError, ValueError):
        return None


@require_GET
def contact_timeline_page(
    request: HttpRequest, workspace_slug: str, contact_id: Any
) -> HttpResponse:
    contact = _get_contact(request, contact_id)
    before = TimelineCursor.from_token(request.GET.get("before", ""))
    context = _timeline_context(request, contact, before)
    partial = "timeline-items" if before else "timeline"
    return _render(request, f"contacts/profile.html#{partial}", context)


# --- GDPR --------------------------------------------------------------------------------------


@require_GET
def contact_data_export(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    contact = _get_contact(request, contact_id)
    data = queries.personal_data(request.workspace, contact)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.public_id}.json"'
    return response


@requires_role(read=Role.EDITOR, write=Role.EDITOR)
def contact_erase(request: HttpRequest, workspace_slug: str, contact_id: Any) -> HttpResponse:
    contact = _get_contact(request, contact_id)
    if request.method == "POST":
        if request.POST.get("confirm_email", "").strip().lower() != contact.email:
            error = "Type the contact's email address exactly to confirm."
            return _render(
                request, "contacts/erase.html", {"contact": contact, "error": error}, status=400
            )
        services.erase_contact(workspace=request.workspace, contact=contact)
        messages.success(
            request,
            "The contact and their data were erased. Their address is kept only as a hash, "
            "so imports, forms and the API cannot add it again.",
        )
        return redirect("contact_list", workspace_slug=workspace_slug)
    return _render(request, "contacts/erase.html", {"contact": contact})

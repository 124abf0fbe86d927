"""Audience settings under /w/<workspace_slug>/settings/audience/: lifecycle stages,
buyer personas, custom fields, tags and subscription topics. Everyone reads them; owners
and admins change them. Views parse a form, call a service, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Model
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget

from workspaces.access import get_owned_or_404
from workspaces.forms import add_service_errors
from workspaces.htmx import form_error_status
from workspaces.models import Role
from workspaces.roles import requires_role

from . import audience
from .models import (
    Contact,
    CustomField,
    LifecycleStage,
    Persona,
    Tag,
    Topic,
    TopicPreference,
)
from .segments.membership import (
    persona_rule_for_segment,
    segment_of_persona_rule,
    set_persona_rule,
)
from .services import create_stage, rename_stage
from .settings_forms import (
    CustomFieldForm,
    PersonaForm,
    StageDeleteForm,
    StageForm,
    TagMergeForm,
    TagRenameForm,
    TopicForm,
)

TAGS_PER_PAGE = 100
admin_only = requires_role(read=Role.ADMIN, write=Role.ADMIN)
admin_writes = requires_role(write=Role.ADMIN)


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], *, invalid: bool = False
) -> HttpResponse:
    """A form with errors answers 400 (422 as an HTMX swap, see form_error_status)."""
    status = form_error_status(request) if invalid else 200
    return render(request, template, context, status=status)


def _save_then_list(
    request: HttpRequest,
    form: Form,
    save: Callable[[dict[str, Any]], Any],
    *,
    success: Callable[[Any], str],
    list_url: str,
    editing: Model | None = None,
) -> HttpResponse | None:
    """What every create and edit page here does with its form: a valid form goes to the
    service; a ValidationError from it lands on the form (and the object being edited is
    read back, so the page shows what is saved); else a message and back to the list.
    None means: show the form page again."""
    if not form.is_valid():
        return None
    try:
        saved = save(form.cleaned_data)
    except ValidationError as exc:
        add_service_errors(form, exc)
        if editing is not None:
            editing.refresh_from_db()
        return None
    messages.success(request, success(saved))
    return redirect(list_url, workspace_slug=request.workspace.slug)


def _count_by(queryset: Any, field: str) -> dict[Any, int]:
    rows = queryset.values(field).annotate(n=Count("pk")).order_by()
    return {row[field]: row["n"] for row in rows}


# --- lifecycle stages -------------------------------------------------------------------


def _stages_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    workspace = request.workspace
    counts = _count_by(Contact.objects.for_workspace(workspace), "lifecycle_stage")
    stages = list(LifecycleStage.objects.for_workspace(workspace))
    for stage in stages:
        stage.contact_count = counts.get(stage.pk, 0)
    return {
        "stages": stages,
        "without_stage": counts.get(None, 0),
        "form": StageForm(workspace=workspace),
        "kind": "stages",
        **extra,
    }


@vary_on_headers("HX-Request")
@admin_writes
def stages(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    template = "contacts/settings/stages.html"
    if request.htmx:
        template += "#stage-table"
    return render(request, template, _stages_context(request))


@require_POST
@admin_only
def stage_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = StageForm(request.POST, workspace=request.workspace)
    if form.is_valid():
        try:
            stage = create_stage(workspace=request.workspace, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Stage “{stage.name}” added at the end.")
            if not request.htmx:
                return redirect("audience_stages", workspace_slug=workspace_slug)
            form = StageForm(workspace=request.workspace)
    template = "contacts/settings/stages.html"
    if request.htmx:
        template += "#stage-section"
    context = _stages_context(request, form=form)
    return _render(request, template, context, invalid=form.is_bound and bool(form.errors))


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
@admin_only
def stage_rename(request: HttpRequest, workspace_slug: str, stage_id: str) -> HttpResponse:
    """GET: the stage's row as an inline form; POST: save it and show the table again."""
    stage = get_owned_or_404(LifecycleStage, request.workspace, stage_id)
    data = request.POST if request.method == "POST" else None
    initial = {"name": stage.name, "description": stage.description}
    form = StageForm(data, workspace=request.workspace, stage=stage, initial=initial)
    if form.is_valid():
        try:
            rename_stage(workspace=request.workspace, stage=stage, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
            stage.refresh_from_db()
        else:
            if request.htmx:
                template = "contacts/settings/stages.html#stage-table"
                return render(request, template, _stages_context(request))
            messages.success(request, f"Stage renamed to “{stage.name}”.")
            return redirect("audience_stages", workspace_slug=workspace_slug)
    if request.htmx:
        context = {"stage": stage, "rename_form": form}
        response = render(request, "contacts/settings/stages.html#stage-edit-row", context)
        return reswap(retarget(response, f"#stage-{stage.public_id}"), "outerHTML")
    context = _stages_context(request, editing=stage, rename_form=form)
    return _render(request, "contacts/settings/stages.html", context, invalid=bool(form.errors))


@require_POST
@admin_only
def stage_move(request: HttpRequest, workspace_slug: str, stage_id: str) -> HttpResponse:
    stage = get_owned_or_404(LifecycleStage, request.workspace, stage_id)
    offset = {"up": -1, "down": 1}.get(request.POST.get("direction", ""), 0)
    try:
        audience.move_stage(workspace=request.workspace, stage=stage, offset=offset)
    except ValidationError:  # the list changed under us (a stage added in another tab)
        messages.error(request, "The stages changed meanwhile; here they are now. Try again.")
    if request.htmx:
        return render(
            request, "contacts/settings/stages.html#stage-table", _stages_context(request)
        )
    return redirect("audience_stages", workspace_slug=workspace_slug)


@require_http_methods(["GET", "POST"])
@admin_only
def stage_delete(request: HttpRequest, workspace_slug: str, stage_id: str) -> HttpResponse:
    workspace = request.workspace
    stage = get_owned_or_404(LifecycleStage, workspace, stage_id)
    in_use = Contact.objects.for_workspace(workspace).filter(lifecycle_stage=stage).count()
    others = list(LifecycleStage.objects.for_workspace(workspace).exclude(pk=stage.pk))
    data = request.POST if request.method == "POST" else None
    form = StageDeleteForm(data, stage=stage, others=others, in_use=in_use)
    if form.is_valid():
        move_to = form.cleaned_data["move_to"]
        try:
            moved = audience.remove_stage(workspace=workspace, stage=stage, move_to=move_to)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            note = f" {moved} contacts moved to “{move_to.name}”." if moved else ""
            messages.success(request, f"Stage “{stage.name}” deleted.{note}")
            return redirect("audience_stages", workspace_slug=workspace_slug)
    context = {"stage": stage, "form": form, "in_use": in_use, "others": others, "kind": "stages"}
    return _render(request, "contacts/settings/stage_delete.html", context, invalid=form.is_bound)


# --- buyer personas ---------------------------------------------------------------------


@admin_writes
def personas(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    counts = _count_by(Contact.objects.for_workspace(workspace), "persona")
    items = list(Persona.objects.for_workspace(workspace))
    for persona in items:
        persona.contact_count = counts.get(persona.pk, 0)
    context = {"personas": items, "without_persona": counts.get(None, 0), "kind": "personas"}
    return render(request, "contacts/settings/personas.html", context)


def _persona_form_page(
    request: HttpRequest, form: PersonaForm, persona: Persona | None
) -> HttpResponse:
    context = {"form": form, "persona": persona, "kind": "personas"}
    return _render(request, "contacts/settings/persona_form.html", context, invalid=form.is_bound)


@require_http_methods(["GET", "POST"])
@admin_only
def persona_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = PersonaForm(request.POST or None, workspace=request.workspace)
    done = _save_then_list(
        request,
        form,
        lambda data: _save_persona(request.workspace, data),
        success=lambda persona: f"Persona “{persona.name}” created.",
        list_url="audience_personas",
    )
    return done or _persona_form_page(request, form, None)


@require_http_methods(["GET", "POST"])
@admin_only
def persona_edit(request: HttpRequest, workspace_slug: str, persona_id: str) -> HttpResponse:
    persona = get_owned_or_404(Persona, request.workspace, persona_id)
    initial = {f: getattr(persona, f) for f in PersonaForm.base_fields if f != "assign_segment"}
    initial["assign_segment"] = segment_of_persona_rule(request.workspace, persona.rule)
    form = PersonaForm(request.POST or None, initial=initial, workspace=request.workspace)
    done = _save_then_list(
        request,
        form,
        lambda data: _save_persona(request.workspace, data, persona),
        success=lambda saved: f"Persona “{saved.name}” saved.",
        list_url="audience_personas",
        editing=persona,
    )
    return done or _persona_form_page(request, form, persona)


@transaction.atomic
def _save_persona(workspace: Any, data: dict[str, Any], persona: Persona | None = None) -> Persona:
    segment = data.pop("assign_segment", None)
    if persona is None:
        persona = audience.create_persona(workspace=workspace, **data)
    else:
        persona = audience.update_persona(workspace=workspace, persona=persona, **data)
    set_persona_rule(workspace=workspace, persona=persona, rule=persona_rule_for_segment(segment))
    return persona


@require_http_methods(["GET", "POST"])
@admin_only
def persona_delete(request: HttpRequest, workspace_slug: str, persona_id: str) -> HttpResponse:
    persona = get_owned_or_404(Persona, request.workspace, persona_id)
    if request.method == "POST":
        cleared = audience.delete_persona(workspace=request.workspace, persona=persona)
        note = f" {cleared} contacts no longer have a persona." if cleared else ""
        messages.success(request, f"Persona “{persona.name}” deleted.{note}")
        return redirect("audience_personas", workspace_slug=workspace_slug)
    in_use = Contact.objects.for_workspace(request.workspace).filter(persona=persona).count()
    return _confirm_delete(
        request,
        kind="personas",
        thing=f"the persona “{persona.name}”",
        consequence=f"{in_use} contacts have this persona; they stay, with no persona."
        if in_use
        else "No contact has this persona.",
        cancel="audience_personas",
    )


def _confirm_delete(
    request: HttpRequest, *, kind: str, thing: str, consequence: str, cancel: str
) -> HttpResponse:
    context = {"kind": kind, "thing": thing, "consequence": consequence, "cancel": cancel}
    return render(request, "contacts/settings/confirm_delete.html", context)


# --- custom fields ----------------------------------------------------------------------


@admin_writes
def fields(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    items = CustomField.objects.for_workspace(request.workspace)
    return render(request, "contacts/settings/fields.html", {"fields": items, "kind": "fields"})


def _field_form_page(
    request: HttpRequest, form: CustomFieldForm, field: CustomField | None
) -> HttpResponse:
    holders = audience.contacts_with_value(request.workspace, field.key) if field else 0
    context = {"form": form, "field": field, "holders": holders, "kind": "fields"}
    return _render(request, "contacts/settings/field_form.html", context, invalid=form.is_bound)


@require_http_methods(["GET", "POST"])
@admin_only
def field_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = CustomFieldForm(request.POST or None)
    done = _save_then_list(
        request,
        form,
        lambda data: audience.create_custom_field(workspace=request.workspace, **data),
        success=lambda field: f"Field “{field.label}” created; its key is {field.key}.",
        list_url="audience_fields",
    )
    return done or _field_form_page(request, form, None)


@require_http_methods(["GET", "POST"])
@admin_only
def field_edit(request: HttpRequest, workspace_slug: str, field_id: str) -> HttpResponse:
    field = get_owned_or_404(CustomField, request.workspace, field_id)
    form = CustomFieldForm(request.POST or None, field=field)

    def save(data: dict[str, Any]) -> CustomField:
        changes = {k: v for k, v in data.items() if k != "key"}  # the key never changes
        return audience.update_custom_field(workspace=request.workspace, field=field, **changes)

    done = _save_then_list(
        request,
        form,
        save,
        success=lambda saved: f"Field “{saved.label}” saved.",
        list_url="audience_fields",
        editing=field,
    )
    return done or _field_form_page(request, form, field)


@require_http_methods(["GET", "POST"])
@admin_only
def field_delete(request: HttpRequest, workspace_slug: str, field_id: str) -> HttpResponse:
    field = get_owned_or_404(CustomField, request.workspace, field_id)
    if request.method == "POST":
        audience.delete_custom_field(workspace=request.workspace, field=field)
        messages.success(request, f"Field “{field.label}” deleted.")
        return redirect("audience_fields", workspace_slug=workspace_slug)
    holders = audience.contacts_with_value(request.workspace, field.key)
    return _confirm_delete(
        request,
        kind="fields",
        thing=f"the field “{field.label}” ({field.key})",
        consequence=f"{holders} contacts have a value for it. They keep it as a plain "
        "attribute, no longer checked against a type."
        if holders
        else "No contact has a value for it.",
        cancel="audience_fields",
    )


# --- tags -------------------------------------------------------------------------------


@admin_writes
def tags(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    page = Paginator(Tag.objects.for_workspace(request.workspace), TAGS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    tag_list = list(page.object_list)
    counts = _count_by(
        Contact.tags.through.objects.filter(tag_id__in=[t.pk for t in tag_list]), "tag_id"
    )
    for tag in tag_list:
        tag.contact_count = counts.get(tag.pk, 0)
    context = {"tags": tag_list, "page": page, "kind": "tags"}
    return render(request, "contacts/settings/tags.html", context)


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
@admin_only
def tag_rename(request: HttpRequest, workspace_slug: str, tag_id: str) -> HttpResponse:
    tag = get_owned_or_404(Tag, request.workspace, tag_id)
    if request.htmx and "cancel" in request.GET:
        return _tag_row(request, tag)
    form = TagRenameForm(request.POST or None, initial={"name": tag.name})
    if form.is_valid():
        try:
            audience.rename_tag(workspace=request.workspace, tag=tag, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
            tag.refresh_from_db()
        else:
            if request.htmx:
                return _tag_row(request, tag)
            messages.success(request, f"Tag renamed to “{tag.name}”.")
            return redirect("audience_tags", workspace_slug=workspace_slug)
    context = {"tag": tag, "form": form, "kind": "tags"}
    if request.htmx:
        return render(request, "contacts/settings/tags.html#tag-edit-row", context)
    return _render(request, "contacts/settings/tag_rename.html", context, invalid=form.is_bound)


def _tag_row(request: HttpRequest, tag: Tag) -> HttpResponse:
    tag.contact_count = tag.contacts.count()
    return render(request, "contacts/settings/tags.html#tag-row", {"tag": tag})


@require_http_methods(["GET", "POST"])
@admin_only
def tag_merge(request: HttpRequest, workspace_slug: str, tag_id: str) -> HttpResponse:
    tag = get_owned_or_404(Tag, request.workspace, tag_id)
    others = list(Tag.objects.for_workspace(request.workspace).exclude(pk=tag.pk))
    form = TagMergeForm(request.POST or None, others=others)
    if form.is_valid():
        target = form.cleaned_data["target"]
        try:
            moved = audience.merge_tags(workspace=request.workspace, source=tag, target=target)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request, f"“{tag.name}” merged into “{target.name}” ({moved} contacts)."
            )
            return redirect("audience_tags", workspace_slug=workspace_slug)
    context = {"tag": tag, "form": form, "others": others, "kind": "tags"}
    context["contact_count"] = tag.contacts.count()
    return _render(request, "contacts/settings/tag_merge.html", context, invalid=form.is_bound)


@require_http_methods(["GET", "POST"])
@admin_only
def tag_delete(request: HttpRequest, workspace_slug: str, tag_id: str) -> HttpResponse:
    tag = get_owned_or_404(Tag, request.workspace, tag_id)
    if request.method == "POST":
        removed = audience.delete_tag(workspace=request.workspace, tag=tag)
        messages.success(request, f"Tag “{tag.name}” deleted from {removed} contacts.")
        return redirect("audience_tags", workspace_slug=workspace_slug)
    in_use = tag.contacts.count()
    return _confirm_delete(
        request,
        kind="tags",
        thing=f"the tag “{tag.name}”",
        consequence=f"It comes off the {in_use} contacts that have it; the contacts stay."
        if in_use
        else "No contact has this tag.",
        cancel="audience_tags",
    )


# --- subscription topics ----------------------------------------------------------------


@admin_writes
def topics(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    choices = (
        TopicPreference.objects.for_workspace(workspace)
        .values("topic", "subscribed")
        .annotate(n=Count("pk"))
        .order_by()
    )
    tally = {(row["topic"], row["subscribed"]): row["n"] for row in choices}
    items = list(Topic.objects.for_workspace(workspace))
    for topic in items:
        topic.opted_in = tally.get((topic.pk, True), 0)
        topic.opted_out = tally.get((topic.pk, False), 0)
    return render(request, "contacts/settings/topics.html", {"topics": items, "kind": "topics"})


def _topic_form_page(request: HttpRequest, form: TopicForm, topic: Topic | None) -> HttpResponse:
    context = {"form": form, "topic": topic, "kind": "topics"}
    return _render(request, "contacts/settings/topic_form.html", context, invalid=form.is_bound)


@require_http_methods(["GET", "POST"])
@admin_only
def topic_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = TopicForm(request.POST or None)
    done = _save_then_list(
        request,
        form,
        lambda data: audience.create_topic(workspace=request.workspace, **data),
        success=lambda topic: f"Topic “{topic.name}” created.",
        list_url="audience_topics",
    )
    return done or _topic_form_page(request, form, None)


@require_http_methods(["GET", "POST"])
@admin_only
def topic_edit(request: HttpRequest, workspace_slug: str, topic_id: str) -> HttpResponse:
    topic = get_owned_or_404(Topic, request.workspace, topic_id)
    initial = {f: getattr(topic, f) for f in TopicForm.base_fields}
    form = TopicForm(request.POST or None, initial=initial)
    done = _save_then_list(
        request,
        form,
        lambda data: audience.update_topic(workspace=request.workspace, topic=topic, **data),
        success=lambda saved: f"Topic “{saved.name}” saved.",
        list_url="audience_topics",
        editing=topic,
    )
    return done or _topic_form_page(request, form, topic)


@require_http_methods(["GET", "POST"])
@admin_only
def topic_delete(request: HttpRequest, workspace_slug: str, topic_id: str) -> HttpResponse:
    topic = get_owned_or_404(Topic, request.workspace, topic_id)
    if request.method == "POST":
        audience.delete_topic(workspace=request.workspace, topic=topic)
        messages.success(request, f"Topic “{topic.name}” deleted.")
        return redirect("audience_topics", workspace_slug=workspace_slug)
    chosen = TopicPreference.objects.for_workspace(request.workspace).filter(topic=topic).count()
    return _confirm_delete(
        request,
        kind="topics",
        thing=f"the topic “{topic.name}”",
        consequence=f"{chosen} contacts' choices about it are deleted; their consent records stay."
        if chosen
        else "No contact has made a choice about it yet.",
        cancel="audience_topics",
    )

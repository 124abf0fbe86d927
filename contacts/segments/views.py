"""Segment pages under /w/<workspace_slug>/segments/: the list with sizes, the builder
(conditions and nested groups, pickers, a live count, a sample and a summary in plain
words), the segment page (members, size over time) and static lists' add and remove.
Everyone reads; editors build, save and change members."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from workspaces.access import get_owned_or_404
from workspaces.forms import add_service_errors
from workspaces.htmx import form_error_status
from workspaces.models import Role, Workspace
from workspaces.roles import requires_role

from ..models import Contact, Segment, SegmentKind, SubscriptionStatus
from . import builder, membership, queries
from .compiler import matching_contacts
from .describe import describe_rules
from .rules import RuleError, validate_rules

SAMPLE_SIZE = 10
MAX_ADD_AT_ONCE = 1000
editors_only = requires_role(read=Role.EDITOR, write=Role.EDITOR)


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=membership.NAME_LIMIT)
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: what this segment is for.",
    )


class AddMembersForm(forms.Form):
    emails = forms.CharField(
        label="Email addresses",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "ann@example.com, bob@example.com"}),
        help_text="One or more, separated by commas, spaces or new lines.",
    )

    def clean_emails(self) -> list[str]:
        found = [e for e in re.split(r"[\s,;]+", self.cleaned_data["emails"]) if e]
        if len(found) > MAX_ADD_AT_ONCE:
            raise ValidationError(f"At most {MAX_ADD_AT_ONCE} addresses at a time.")
        return found


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], *, invalid: bool = False
) -> HttpResponse:
    status = form_error_status(request) if invalid else 200
    with timezone.override(request.workspace.timezone):
        return render(request, template, context, status=status)


def _segment_url(workspace: Workspace, segment: Segment, name: str = "segment_detail") -> str:
    return reverse(name, kwargs={"workspace_slug": workspace.slug, "segment_id": segment.public_id})


# --- the list -----------------------------------------------------------------------------


def segment_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    segments = list(Segment.objects.for_workspace(workspace).order_by("name"))
    for segment in segments:
        segment.summary = _summary(workspace, segment.rules) if segment.rules else ""
    return _render(request, "contacts/segments/list.html", {"segments": segments})


def _summary(workspace: Workspace, tree: Any) -> str:
    try:
        return describe_rules(workspace, tree)
    except (ValidationError, KeyError, TypeError, ValueError):
        return ""


# --- the builder --------------------------------------------------------------------------


@dataclass
class Preview:
    """What the builder shows under the rules: a count and a sample, or why not."""

    count: int | None = None
    sample: list[Contact] = field(default_factory=list)
    summary: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message)
    empty: bool = False


def _rule_errors(exc: RuleError) -> list[tuple[str, str]]:
    return list(
        getattr(exc, "errors", None) or [(getattr(exc, "path", ""), " ".join(exc.messages))]
    )


def preview_rules(workspace: Workspace, tree: Any, segment: Segment | None = None) -> Preview:
    if not (tree or {}).get("children"):
        return Preview(empty=True)
    try:
        clean = validate_rules(workspace, tree, segment=segment)
    except RuleError as exc:
        return Preview(errors=_rule_errors(exc))
    count, sample = queries.count_and_sample(matching_contacts(workspace, clean), SAMPLE_SIZE)
    return Preview(count=count, sample=sample, summary=_summary(workspace, clean))


def _builder_context(
    request: HttpRequest,
    tree: dict[str, Any],
    segment: Segment | None,
    form: SegmentForm,
    kind: str = SegmentKind.DYNAMIC,
    save_error: RuleError | None = None,
) -> dict[str, Any]:
    workspace = request.workspace
    pickers = queries.pickers(workspace, exclude=segment)
    preview = preview_rules(workspace, tree, segment) if kind == SegmentKind.DYNAMIC else Preview()
    if save_error is not None:
        preview.errors = _rule_errors(save_error)
    keys = {name: queries.property_keys(workspace, name) for name in builder.event_names_in(tree)}
    return {
        "segment": segment,
        "kind": kind,
        "form": form,
        "tree_json": json.dumps(tree),
        "root": builder.node_views(tree, pickers, preview.errors, keys),
        "preview": preview,
        "pickers": pickers,
        "standard_fields": builder.STANDARD_FIELDS,
        "condition_types": builder.CONDITION_TYPES,
        "matches": builder.MATCHES,
        "simple_ops": builder.SIMPLE_OPS,
        "count_ops": builder.COUNT_OPS,
        "windows": builder.WINDOWS,
        "event_time_ops": builder.EVENT_TIME_OPS,
        "revenue_ops": builder.REVENUE_OPS,
        "property_ops": builder.PROPERTY_OPS,
        "engagement_actions": builder.ENGAGEMENT_ACTIONS,
        "scopes": builder.SCOPES,
        "statuses": SubscriptionStatus.choices,
        "builder_url": reverse("segment_builder", kwargs={"workspace_slug": workspace.slug}),
    }


def _page(
    request: HttpRequest,
    tree: dict[str, Any],
    segment: Segment | None,
    form: SegmentForm,
    kind: str,
    *,
    invalid: bool = False,
    save_error: RuleError | None = None,
) -> HttpResponse:
    context = _builder_context(request, tree, segment, form, kind, save_error)
    context["event_names"] = queries.event_names(request.workspace)
    return _render(request, "contacts/segments/builder.html", context, invalid=invalid)


@editors_only
@require_http_methods(["GET", "POST"])
def segment_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    kind = request.POST.get("kind") or request.GET.get("kind") or SegmentKind.DYNAMIC
    kind = kind if kind in SegmentKind.values else SegmentKind.DYNAMIC
    if request.method == "GET":
        return _page(request, builder.empty_tree(), None, SegmentForm(), kind)
    form = SegmentForm(request.POST)
    tree = builder.parse_tree(request.POST.get("rules"))
    if form.is_valid():
        try:
            segment = membership.create_segment(
                workspace=workspace,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                kind=kind,
                rules=tree if kind == SegmentKind.DYNAMIC else None,
            )
        except RuleError as exc:
            return _page(request, tree, None, form, kind, invalid=True, save_error=exc)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Segment “{segment.name}” saved.")
            return redirect(_segment_url(workspace, segment))
    return _page(request, tree, None, form, kind, invalid=True)


@editors_only
@require_http_methods(["GET", "POST"])
def segment_edit(request: HttpRequest, workspace_slug: str, segment_id: Any) -> HttpResponse:
    workspace = request.workspace
    segment = get_owned_or_404(Segment, workspace, segment_id)
    if request.method == "GET":
        form = SegmentForm(initial={"name": segment.name, "description": segment.description})
        tree = segment.rules or builder.empty_tree()
        return _page(request, tree, segment, form, segment.kind)
    form = SegmentForm(request.POST)
    tree = builder.parse_tree(request.POST.get("rules"))
    if form.is_valid():
        try:
            membership.update_segment(
                workspace=workspace,
                segment=segment,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rules=tree if segment.kind == SegmentKind.DYNAMIC else None,
            )
        except RuleError as exc:
            return _page(request, tree, segment, form, segment.kind, invalid=True, save_error=exc)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Segment “{segment.name}” saved.")
            return redirect(_segment_url(workspace, segment))
    return _page(request, tree, segment, form, segment.kind, invalid=True)


@editors_only
@require_POST
def segment_builder(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """The builder partial for the posted form: the tree with the change applied, the
    live count, a sample of matching contacts and the rules in plain words."""
    workspace = request.workspace
    segment = None
    if request.POST.get("segment"):
        segment = get_owned_or_404(Segment, workspace, _uuid_or_404(request.POST["segment"]))
    pickers = queries.pickers(workspace, exclude=segment)
    names = queries.event_names(workspace) if request.POST.get("op") == "add_condition" else []
    tree = builder.tree_from_form(request.POST, pickers, names)
    context = _builder_context(request, tree, segment, SegmentForm())
    return _render(request, "contacts/segments/builder.html#builder", context)


def _uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Http404("No such segment.") from exc


# --- one segment --------------------------------------------------------------------------


@vary_on_headers("HX-Request")
def segment_detail(request: HttpRequest, workspace_slug: str, segment_id: Any) -> HttpResponse:
    workspace = request.workspace
    segment = get_owned_or_404(Segment, workspace, segment_id)
    page = queries.member_page(workspace, segment, after=request.GET.get("after", ""))
    context = {"segment": segment, "page": page, "members_url": _segment_url(workspace, segment)}
    if request.htmx and request.htmx.target == "segment-members":
        return _render(request, "contacts/segments/detail.html#members", context)
    sizes = queries.size_history(workspace, segment, current=segment)
    context.update(
        summary=_summary(workspace, segment.rules) if segment.rules else "",
        chart=queries.size_chart(sizes),
        add_form=AddMembersForm(),
        used_by=membership.segments_using(workspace, segment),
    )
    return _render(request, "contacts/segments/detail.html", context)


@require_POST
def segment_delete(request: HttpRequest, workspace_slug: str, segment_id: Any) -> HttpResponse:
    workspace = request.workspace
    segment = get_owned_or_404(Segment, workspace, segment_id)
    try:
        membership.delete_segment(workspace=workspace, segment=segment)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_segment_url(workspace, segment))
    messages.success(request, f"Segment “{segment.name}” deleted.")
    return redirect("segment_list", workspace_slug=workspace.slug)


@require_POST
def segment_refresh(request: HttpRequest, workspace_slug: str, segment_id: Any) -> HttpResponse:
    workspace = request.workspace
    segment = get_owned_or_404(Segment, workspace, segment_id)
    entered, exited = membership.refresh_segment_and_dependents(
        workspace=workspace, segment=segment
    )
    messages.success(request, f"Refreshed: {len(entered)} contacts entered, {len(exited)} left.")
    return redirect(_segment_url(workspace, segment))


@require_POST
def segment_members_add(request: HttpRequest, workspace_slug: str, segment_id: Any) -> HttpResponse:
    workspace = request.workspace
    segment = get_owned_or_404(Segment, workspace, segment_id)
    form = AddMembersForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("emails", ["Give an email address."])))
        return redirect(_segment_url(workspace, segment))
    ids, missing = queries.contacts_by_reference(workspace, form.cleaned_data["emails"])
    try:
        with transaction.atomic():
            added = membership.add_to_static(workspace=workspace, segment=segment, contact_ids=ids)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_segment_url(workspace, segment))
    already = len(ids) - len(added)
    if added:
        text = f"{len(added)} contact{'s' if len(added) != 1 else ''} added."
        messages.success(request, text + (f" {already} already on the list." if already else ""))
    elif already:
        messages.info(request, "They are already on the list.")
    if missing:
        shown = ", ".join(missing[:5]) + ("…" if len(missing) > 5 else "")
        messages.error(request, f"No contact has these addresses: {shown}")
    return redirect(_segment_url(workspace, segment))


@require_POST
def segment_member_remove(
    request: HttpRequest, workspace_slug: str, segment_id: Any, contact_id: Any
) -> HttpResponse:
    workspace = request.workspace
    segment = get_owned_or_404(Segment, workspace, segment_id)
    contact = get_owned_or_404(Contact, workspace, contact_id)
    try:
        membership.remove_from_static(
            workspace=workspace, segment=segment, contact_ids=[contact.pk]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_segment_url(workspace, segment))
    if request.htmx:
        return HttpResponse("")
    messages.success(request, f"{contact.email} removed from the list.")
    return redirect(_segment_url(workspace, segment))

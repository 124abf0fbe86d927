"""Every write to the brand kit and templates, and the reads that compile or preview them.

A template is saved only if it compiles: the fields of EmailTemplate are always the last
good revision, and each accepted save adds a TemplateRevision.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact
from workspaces.mail import send_workspace_email, workspace_sender
from workspaces.models import Workspace

from .models import (
    FONT_STACKS,
    SOCIAL_NETWORKS,
    BrandKit,
    EmailTemplate,
    SendingPolicy,
    TemplateKind,
    TemplatePurpose,
    TemplateRevision,
)
from .rendering.brand import Brand
from .rendering.checks import CheckReport, check_email
from .rendering.compile import (
    CompiledEmail,
    Problem,
    RenderedEmail,
    RenderFailed,
    TemplateContent,
    TemplateInvalid,
    compile_email,
)
from .rendering.context import SAMPLE_CONTACT, contact_data, event_data, render_context

HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIDE = 2400
LOGO_MIN_SIDE = 16
LOGO_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif"}
BRAND_FIELDS = (
    "primary_color", "text_color", "background_color", "content_background_color",
    "button_color", "button_text_color", "font", "heading_font", "footer_text",
    "social_links", "logo_width", "logo_alt",
)  # fmt: skip
COLOR_FIELDS = BRAND_FIELDS[:6]


class TemplateNotSendable(ValidationError):
    """The template fails the checks a marketing send requires."""


# --- brand kit -------------------------------------------------------------------------


def one_per_workspace(model: type, workspace: Workspace):  # type: ignore[no-untyped-def]
    """The workspace's single row of `model`, created with its defaults on first use."""
    row = model.objects.for_workspace(workspace).first()
    if row is None:
        try:
            with transaction.atomic():
                row = model.objects.create(workspace=workspace)
        except IntegrityError:  # created by a concurrent request
            row = model.objects.for_workspace(workspace).get()
    return row


def brand_kit_for(workspace: Workspace) -> BrandKit:
    return one_per_workspace(BrandKit, workspace)


def logo_url(kit: BrandKit) -> str:
    if not kit.logo:
        return ""
    path = reverse("brand_logo", args=[kit.public_id])
    return f"{settings.SITE_URL}{path}?v={int(kit.updated_at.timestamp())}"


def brand_of(workspace: Workspace, kit: BrandKit | None = None) -> Brand:
    kit = kit or brand_kit_for(workspace)
    return Brand(
        name=workspace.name,
        logo_url=logo_url(kit),
        logo_width=kit.logo_width,
        logo_alt=kit.logo_alt,
        primary_color=kit.primary_color,
        text_color=kit.text_color,
        background_color=kit.background_color,
        content_background_color=kit.content_background_color,
        button_color=kit.button_color,
        button_text_color=kit.button_text_color,
        font_stack=kit.font_stack,
        heading_font_stack=kit.heading_font_stack,
        footer_text=kit.footer_text,
        postal_address=workspace.postal_address,
        social_links=tuple((link["network"], link["url"]) for link in kit.social_links),
        from_name=workspace.default_from_name,
        from_email=workspace.default_from_email,
    )


def clean_social_links(links: object) -> list[dict]:
    networks = dict(SOCIAL_NETWORKS)
    if not isinstance(links, list) or len(links) > len(networks):
        raise ValidationError({"social_links": "Give a list of at most one link per network."})
    cleaned = []
    for index, link in enumerate(links, start=1):
        network = link.get("network") if isinstance(link, dict) else None
        url = (link.get("url") or "").strip() if isinstance(link, dict) else ""
        if network not in networks:
            raise ValidationError({"social_links": f"Link {index}: unknown network {network!r}."})
        if not url.startswith("https://") or len(url) > 500:
            raise ValidationError({"social_links": f"Link {index}: use an https:// address."})
        cleaned.append({"network": network, "url": url})
    return cleaned


def clean_brand_fields(fields: dict) -> dict:
    unknown = set(fields) - set(BRAND_FIELDS)
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))} in the brand kit.")
    errors = {}
    for name in COLOR_FIELDS:
        if name in fields and not HEX_COLOR.match(str(fields[name])):
            errors[name] = "Use a colour like #1d4ed8."
    for name in ("font", "heading_font"):
        if name in fields and fields[name] not in FONT_STACKS:
            errors[name] = f"Choose one of: {', '.join(FONT_STACKS)}."
    width = fields.get("logo_width", 160)
    if not isinstance(width, int) or not 40 <= width <= 600:
        errors["logo_width"] = "The logo width is from 40 to 600 pixels."
    if errors:
        raise ValidationError(errors)
    if "social_links" in fields:
        fields = {**fields, "social_links": clean_social_links(fields["social_links"])}
    return fields


@transaction.atomic
def update_brand_kit(workspace: Workspace, **fields: object) -> BrandKit:
    fields = clean_brand_fields(fields)
    kit = brand_kit_for(workspace)
    for name, value in fields.items():
        setattr(kit, name, value)
    kit.save()
    return kit


def read_logo(data: bytes) -> tuple[str, int, int]:
    """(content type, width, height) of an acceptable logo, or a ValidationError."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > LOGO_MAX_BYTES:
        raise ValidationError(
            {"logo": f"The logo is {len(data) / 1024:.0f} KB; the limit is 1 MB."}
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValidationError({"logo": "That file is not a PNG, JPEG or GIF image."}) from error
    if kind not in LOGO_FORMATS:
        message = f"{kind} images do not show in every inbox; use PNG, JPEG or GIF."
        raise ValidationError({"logo": message})
    if max(width, height) > LOGO_MAX_SIDE or min(width, height) < LOGO_MIN_SIDE:
        limits = f"{LOGO_MIN_SIDE} to {LOGO_MAX_SIDE} px a side"
        raise ValidationError({"logo": f"The logo is {width}x{height} px; use {limits}."})
    return LOGO_FORMATS[kind], width, height


@transaction.atomic
def set_logo(workspace: Workspace, data: bytes, alt: str | None = None) -> BrandKit:
    content_type, width, height = read_logo(data)
    kit = brand_kit_for(workspace)
    kit.logo, kit.logo_content_type = data, content_type
    kit.logo_height = round(height * kit.logo_width / width)
    if alt is not None:
        kit.logo_alt = alt[:120]
    kit.save()
    return kit


@transaction.atomic
def remove_logo(workspace: Workspace) -> BrandKit:
    kit = brand_kit_for(workspace)
    kit.logo, kit.logo_content_type, kit.logo_height = None, "", 0
    kit.save()
    return kit


# --- templates -------------------------------------------------------------------------


def compile_content(workspace: Workspace, content: TemplateContent) -> CompiledEmail:
    return compile_email(content, brand_of(workspace))


def compile_template(template: EmailTemplate, brand: Brand | None = None) -> CompiledEmail:
    """Compile once per send; personalise the result for each recipient."""
    return compile_email(TemplateContent.of(template), brand or brand_of(template.workspace))


def free_template_name(workspace: Workspace, base: str) -> str:
    """`base`, or "base 2", "base 3"... whichever no template of the workspace has yet."""
    taken = {
        name.lower()
        for name in EmailTemplate.objects.for_workspace(workspace)
        .filter(name__istartswith=base)
        .values_list("name", flat=True)
    }
    name, number = base, 2
    while name.lower() in taken:
        name, number = f"{base} {number}", number + 1
    return name


def _check_name(workspace: Workspace, name: str, exclude: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the template a name."})
    taken = EmailTemplate.objects.for_workspace(workspace).filter(name__iexact=name)
    if exclude:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ValidationError({"name": f"A template called {name!r} already exists."})
    return name[:120]


def _check_choice(value: str, choices: type, field: str) -> str:
    if value not in choices.values:
        raise ValidationError({field: f"Choose one of: {', '.join(choices.values)}."})
    return value


def _content_from(fields: dict, base: dict | None = None) -> TemplateContent:
    data = {**(base or {}), **{k: v for k, v in fields.items() if k in CONTENT_KEYS}}
    _check_choice(data.get("kind", ""), TemplateKind, "kind")
    return TemplateContent(
        kind=data["kind"],
        subject=str(data.get("subject") or ""),
        preheader=str(data.get("preheader") or ""),
        blocks=data.get("blocks") if data.get("blocks") is not None else [],
        source=str(data.get("source") or ""),
    )


CONTENT_KEYS = ("kind", "subject", "preheader", "blocks", "source")


def _add_revision(template: EmailTemplate, user, note: str) -> TemplateRevision:  # type: ignore[no-untyped-def]
    template.revision_number += 1
    template.save()
    return TemplateRevision.objects.create(
        workspace=template.workspace,
        template=template,
        number=template.revision_number,
        note=note[:200],
        created_by=user if getattr(user, "is_authenticated", False) else None,
        **template.content(),
    )


def _apply(template: EmailTemplate, content: TemplateContent) -> None:
    for key in CONTENT_KEYS:
        setattr(template, key, getattr(content, key))


@transaction.atomic
def create_template(
    workspace: Workspace,
    *,
    name: str,
    purpose: str = TemplatePurpose.MARKETING,
    starter: str = "",
    user=None,  # type: ignore[no-untyped-def]
    **content: object,
) -> EmailTemplate:
    """TemplateInvalid if the content does not compile; ValidationError for the rest."""
    template = EmailTemplate(
        workspace=workspace,
        name=_check_name(workspace, name),
        purpose=_check_choice(purpose, TemplatePurpose, "purpose"),
        starter=starter,
    )
    parsed = _content_from({"kind": TemplateKind.BLOCKS, **content})
    compile_content(workspace, parsed)
    _apply(template, parsed)
    _add_revision(template, user, "Created" if not starter else f"Created from {starter}")
    return template


@transaction.atomic
def update_template(
    template: EmailTemplate,
    *,
    user=None,  # type: ignore[no-untyped-def]
    note: str = "",
    **fields: object,
) -> EmailTemplate:
    """Save new content as a new revision, or change nothing at all if it does not compile."""
    workspace = template.workspace
    name, purpose = template.name, template.purpose
    if "name" in fields:
        name = _check_name(workspace, str(fields["name"]), exclude=template.pk)
    if "purpose" in fields:
        purpose = _check_choice(str(fields["purpose"]), TemplatePurpose, "purpose")
    content = _content_from(fields, base=template.content())
    compile_content(workspace, content)
    template.name, template.purpose = name, purpose  # only once the content compiles
    if content != TemplateContent.of(template):
        _apply(template, content)
        _add_revision(template, user, note or "Edited")
    else:
        template.save()
    return template


@transaction.atomic
def restore_revision(
    template: EmailTemplate,
    revision: TemplateRevision,
    user=None,  # type: ignore[no-untyped-def]
) -> EmailTemplate:
    if revision.template_id != template.pk:
        raise ValidationError("That revision belongs to another template.")
    return update_template(
        template, user=user, note=f"Restored revision {revision.number}", **revision.content()
    )


@transaction.atomic
def duplicate_template(template: EmailTemplate, user=None) -> EmailTemplate:  # type: ignore[no-untyped-def]
    name = free_template_name(template.workspace, f"{template.name} (copy)")
    return create_template(
        template.workspace, name=name, purpose=template.purpose, user=user, **template.content()
    )


def archive_template(template: EmailTemplate, archived: bool = True) -> EmailTemplate:
    template.archived_at = timezone.now() if archived else None
    template.save(update_fields=["archived_at", "updated_at"])
    return template


def delete_template(template: EmailTemplate) -> None:
    """Delete the template with its revisions."""
    template.delete()


# --- preview, checks and test sends ---------------------------------------------------


def sample_event() -> dict:
    from .rendering.context import SAMPLE_EVENT

    image = settings.SITE_URL + static("img/sample-product.png")
    products = [{**p, "image_url": image} for p in SAMPLE_EVENT["properties"]["products"]]
    return {**SAMPLE_EVENT, "properties": {**SAMPLE_EVENT["properties"], "products": products}}


def contact_context(contact: Contact) -> dict:
    tags = list(contact.tags.values_list("name", flat=True))
    return contact_data(contact, tags=tags)


def preview_context(
    workspace: Workspace, contact: Contact | None = None, event: dict | None = None
) -> dict:
    return render_context(
        contact=contact_context(contact) if contact else dict(SAMPLE_CONTACT),
        brand=brand_of(workspace),
        workspace={"name": workspace.name, "timezone": workspace.timezone},
        event=event if event is not None else sample_event(),
    )


def latest_event_for(contact: Contact) -> dict | None:
    """The contact's newest event with properties, to preview event-driven templates."""
    event = contact.events.exclude(properties={}).order_by("-occurred_at").first()
    return event_data(event.name, event.properties, event.occurred_at) if event else None


@dataclass
class Preview:
    email: RenderedEmail | None
    report: CheckReport
    problems: list[Problem]
    render_error: str = ""


def preview(
    workspace: Workspace,
    content: TemplateContent,
    *,
    purpose: str = TemplatePurpose.MARKETING,
    contact: Contact | None = None,
    event: dict | None = None,
) -> Preview:
    """Compile and personalise `content` without saving it: what the editor shows. The
    event is the given one, else the contact's latest, else the sample."""
    try:
        compiled = compile_content(workspace, content)
    except TemplateInvalid as invalid:
        return Preview(email=None, report=CheckReport(), problems=invalid.problems)
    if event is None:
        event = (latest_event_for(contact) if contact else None) or sample_event()
    try:
        email = compiled.personalise(preview_context(workspace, contact, event))
    except RenderFailed as failed:
        return Preview(email=None, report=CheckReport(), problems=[], render_error=str(failed))
    report = check_email(
        html_source=compiled.html_source,
        rendered_html=email.html,
        preheader=content.preheader,
        postal_address=workspace.postal_address,
        marketing=purpose == TemplatePurpose.MARKETING,
    )
    return Preview(email=email, report=report, problems=[])


def template_preview(
    template: EmailTemplate, contact: Contact | None = None, event: dict | None = None
) -> Preview:
    return preview(
        template.workspace,
        TemplateContent.of(template),
        purpose=template.purpose,
        contact=contact,
        event=event,
    )


def ensure_sendable(template: EmailTemplate) -> CheckReport:
    """The gate of every marketing send: TemplateNotSendable lists what to fix."""
    result = template_preview(template)
    blocking = [str(p) for p in result.problems]
    if result.render_error:
        blocking.append(result.render_error)
    if template.purpose == TemplatePurpose.MARKETING:
        blocking += result.report.errors
    if blocking:
        raise TemplateNotSendable(blocking)
    return result.report


def send_test(template: EmailTemplate, *, to: str, contact: Contact | None = None) -> RenderedEmail:
    """Send the template, personalised for `contact` (or the sample), to one address."""
    result = template_preview(template, contact=contact)
    if result.email is None:
        reasons = [str(p) for p in result.problems] or [result.render_error]
        raise ValidationError({"template": reasons})
    workspace = template.workspace
    send_workspace_email(
        workspace=workspace,
        to=[to],
        subject=f"[Test] {result.email.subject}",
        text=result.email.text,
        html=result.email.html,
        from_email=workspace_sender(workspace),
    )
    return result.email


# --- sending policy --------------------------------------------------------------------


def sending_policy_for(workspace: Workspace) -> SendingPolicy:
    return one_per_workspace(SendingPolicy, workspace)

"""Writes that shape the audience's vocabulary: personas, custom fields, topics, tags, and
the stage moves the settings pages need on top of contacts.services. Keyword-only,
workspace passed in, one transaction per call; a bad value raises ValidationError keyed
by the field it is about."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ManyToManyRel, Model
from django.utils.text import slugify

from workspaces.models import Workspace

from .attributes import clean_custom_value
from .models import (
    Contact,
    CustomField,
    FieldType,
    LifecycleStage,
    Persona,
    SignupForm,
    Tag,
    Topic,
)
from .services import STANDARD_FIELDS, delete_stage, reorder_stages
from .signals import contacts_changed

MAX_CHOICES = 100
MAX_CHOICE_LENGTH = 100
RESERVED_KEYS = frozenset(
    {*STANDARD_FIELDS, "id", "status", "tags", "lifecycle_stage", "persona", "source"}
)
BAD_VALUE_EXAMPLES = 3
CONVERT_BATCH = 2000


# --- names ------------------------------------------------------------------------------


def name_taken_error(
    model: type[Model], *, workspace: Workspace, name: str, instance: Model | None = None
) -> ValidationError | None:
    """The error for a name another row of this kind already has (case-insensitive)."""
    others = model.objects.for_workspace(workspace).filter(name__iexact=name.strip())
    if instance is not None and instance.pk:
        others = others.exclude(pk=instance.pk)
    clash = others.first()
    if clash is None:
        return None
    noun = model._meta.verbose_name
    return ValidationError({"name": f"There is already a {noun} called “{clash.name}”."})


def _require_name(name: str, limit: int) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A name is required."})
    if len(name) > limit:
        raise ValidationError({"name": f"A name has at most {limit} characters."})
    return name


def _save_named(instance: Model, workspace: Workspace) -> None:
    error = name_taken_error(
        type(instance), workspace=workspace, name=instance.name, instance=instance
    )
    if error:
        raise error
    instance.full_clean()
    instance.save()


# --- lifecycle stages -------------------------------------------------------------------


@transaction.atomic
def move_stage(*, workspace: Workspace, stage: LifecycleStage, offset: int) -> None:
    """Move a stage `offset` places up (negative) or down (positive) in the order."""
    ordered = [s.public_id for s in LifecycleStage.objects.for_workspace(workspace)]
    old = ordered.index(stage.public_id)
    new = max(0, min(len(ordered) - 1, old + offset))
    if new == old:
        return
    ordered.insert(new, ordered.pop(old))
    reorder_stages(workspace=workspace, ordered_ids=ordered)


@transaction.atomic
def remove_stage(
    *, workspace: Workspace, stage: LifecycleStage, move_to: LifecycleStage | None = None
) -> int:
    """Delete a stage, moving its contacts (and the signup forms that assign it) to
    `move_to`. Returns how many contacts moved."""
    if move_to is not None and move_to.workspace_id != workspace.pk:
        raise ValidationError({"move_to": "Choose one of this workspace's stages."})
    if move_to is not None and move_to.pk != stage.pk:
        SignupForm.objects.for_workspace(workspace).filter(lifecycle_stage=stage).update(
            lifecycle_stage=move_to
        )
    return delete_stage(workspace=workspace, stage=stage, move_to=move_to)


# --- personas ---------------------------------------------------------------------------


PERSONA_TEXTS = ("description", "goals", "pain_points")


@transaction.atomic
def create_persona(
    *,
    workspace: Workspace,
    name: str,
    description: str = "",
    goals: str = "",
    pain_points: str = "",
) -> Persona:
    persona = Persona(
        workspace=workspace,
        name=_require_name(name, 80),
        description=description.strip(),
        goals=goals.strip(),
        pain_points=pain_points.strip(),
    )
    _save_named(persona, workspace)
    return persona


@transaction.atomic
def update_persona(*, workspace: Workspace, persona: Persona, **changes: str) -> Persona:
    unknown = set(changes) - {"name", *PERSONA_TEXTS}
    if unknown:
        raise ValidationError(f"Personas have no {', '.join(sorted(unknown))}.")
    if "name" in changes:
        persona.name = _require_name(changes.pop("name"), 80)
    for field, value in changes.items():
        setattr(persona, field, (value or "").strip())
    _save_named(persona, workspace)
    return persona


@transaction.atomic
def delete_persona(*, workspace: Workspace, persona: Persona) -> int:
    """Delete a persona; its contacts stay, with no persona. Returns how many it had."""
    contact_ids = list(
        Contact.objects.for_workspace(workspace)
        .filter(persona=persona)
        .values_list("pk", flat=True)
    )
    Contact.objects.for_workspace(workspace).filter(pk__in=contact_ids).update(persona=None)
    persona.delete()
    _announce(workspace, contact_ids, "persona")
    return len(contact_ids)


# --- custom fields ----------------------------------------------------------------------


def clean_choices(field_type: str, choices: Iterable[Any]) -> list[str]:
    """Choices trimmed and de-duplicated in order; only a choice field keeps any."""
    if field_type != FieldType.CHOICE:
        return []
    cleaned = list(dict.fromkeys(str(c).strip() for c in choices if str(c).strip()))
    if not cleaned:
        raise ValidationError({"choices": "A choice field needs at least one choice."})
    if len(cleaned) > MAX_CHOICES:
        raise ValidationError({"choices": f"At most {MAX_CHOICES} choices."})
    long = [c for c in cleaned if len(c) > MAX_CHOICE_LENGTH]
    if long:
        raise ValidationError(
            {"choices": f"“{long[0][:20]}…” is longer than {MAX_CHOICE_LENGTH} characters."}
        )
    return cleaned


def key_from_label(label: str) -> str:
    """The API and template name a label suggests: "Shoe size" -> "shoe_size"."""
    return slugify(label).replace("-", "_")[:64]


def _clean_key(workspace: Workspace, key: str, label: str) -> str:
    key = (key or "").strip() or key_from_label(label)
    if not key:
        raise ValidationError({"key": "Give a key of letters, numbers and underscores."})
    if key in RESERVED_KEYS:
        raise ValidationError({"key": f"“{key}” is a standard contact field; choose another key."})
    if CustomField.objects.for_workspace(workspace).filter(key=key).exists():
        raise ValidationError({"key": f"Another field already has the key “{key}”."})
    return key


@transaction.atomic
def create_custom_field(
    *,
    workspace: Workspace,
    label: str,
    field_type: str = FieldType.TEXT,
    key: str = "",
    choices: Iterable[Any] = (),
) -> CustomField:
    label = (label or "").strip()
    if not label:
        raise ValidationError({"label": "A label is required."})
    field = CustomField(
        workspace=workspace,
        label=label,
        key=_clean_key(workspace, key, label),
        field_type=field_type,
        choices=clean_choices(field_type, choices),
    )
    field.full_clean()
    field.save()
    _convert_values(workspace, field)  # values stored before the field existed
    return field


@transaction.atomic
def update_custom_field(
    *,
    workspace: Workspace,
    field: CustomField,
    label: str | None = None,
    field_type: str | None = None,
    choices: Iterable[Any] | None = None,
) -> CustomField:
    """Change a field's label, type or choices. The key stays: contacts and templates use
    it. A new type or fewer choices are refused while contacts hold values that don't fit;
    values that fit are converted (the text "42" becomes the number 42)."""
    if label is not None:
        field.label = label.strip()
        if not field.label:
            raise ValidationError({"label": "A label is required."})
    before = (field.field_type, list(field.choices))
    if field_type is not None:
        field.field_type = field_type
    if choices is not None or field_type is not None:
        field.choices = clean_choices(
            field.field_type, field.choices if choices is None else choices
        )
    field.full_clean()
    field.save()
    if (field.field_type, field.choices) != before:
        _convert_values(workspace, field)
    return field


@transaction.atomic
def delete_custom_field(*, workspace: Workspace, field: CustomField) -> None:
    """Delete the definition; contacts keep their values as plain attributes."""
    field.delete()


def contacts_with_value(workspace: Workspace, key: str) -> int:
    return Contact.objects.for_workspace(workspace).filter(attributes__has_key=key).count()


def _convert_values(workspace: Workspace, field: CustomField) -> int:
    """Bring stored values in line with the field, or raise naming the ones that don't fit.
    Runs inside the caller's transaction, so a refusal leaves nothing converted."""
    holders = Contact.objects.for_workspace(workspace).filter(attributes__has_key=field.key)
    bad: list[tuple[str, Any]] = []
    bad_count = converted = 0
    last_pk = 0
    while True:
        # Keyset batches: safe to write between reads on every database, and memory stays flat.
        rows = list(
            holders.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "email", "attributes")[:CONVERT_BATCH]
        )
        if not rows:
            break
        last_pk = rows[-1][0]
        batch: dict[int, Any] = {}
        for pk, email, attributes in rows:
            value = attributes.get(field.key)
            try:
                cleaned = _fitted_value(field, value)
            except ValidationError:
                bad_count += 1
                if len(bad) < BAD_VALUE_EXAMPLES:
                    bad.append((email, value))
                continue
            if cleaned != value or type(cleaned) is not type(value):
                batch[pk] = cleaned
        if not bad_count:
            converted += _write_values(workspace, field.key, batch)
    if bad_count:
        raise ValidationError({"field_type": _misfit_message(field, bad, bad_count)})
    return converted


def _fitted_value(field: CustomField, value: Any) -> Any:
    if value is None or value == "":
        return value  # empty stays as it is, whatever the type
    if isinstance(value, dict | list):
        raise ValidationError("A nested value fits no field type.")
    return clean_custom_value(field, value)


def _write_values(workspace: Workspace, key: str, batch: dict[int, Any]) -> int:
    if not batch:
        return 0
    contacts = list(
        Contact.objects.for_workspace(workspace).filter(pk__in=list(batch)).only("attributes")
    )
    for contact in contacts:
        contact.attributes = {**contact.attributes, key: batch[contact.pk]}
    Contact.objects.for_workspace(workspace).bulk_update(contacts, ["attributes"])
    _announce(workspace, [c.pk for c in contacts], "attributes")
    return len(contacts)


def _misfit_message(field: CustomField, bad: list[tuple[str, Any]], count: int) -> str:
    kind = field.get_field_type_display().lower()
    if field.field_type == FieldType.CHOICE:
        kind = f"choice ({', '.join(field.choices)})"
    examples = "; ".join(f"{email}: “{value}”" for email, value in bad)
    people = "1 contact holds a value" if count == 1 else f"{count} contacts hold values"
    return (
        f"{people} that {'is' if count == 1 else 'are'} not a valid {kind} "
        f"(e.g. {examples}). Correct or clear {'it' if count == 1 else 'them'} first, "
        "or keep the current definition."
    )


# --- topics -----------------------------------------------------------------------------


@transaction.atomic
def create_topic(
    *, workspace: Workspace, name: str, description: str = "", default_subscribed: bool = True
) -> Topic:
    topic = Topic(
        workspace=workspace,
        name=_require_name(name, 80),
        description=(description or "").strip(),
        default_subscribed=default_subscribed,
    )
    _save_named(topic, workspace)
    return topic


@transaction.atomic
def update_topic(
    *,
    workspace: Workspace,
    topic: Topic,
    name: str | None = None,
    description: str | None = None,
    default_subscribed: bool | None = None,
) -> Topic:
    if name is not None:
        topic.name = _require_name(name, 80)
    if description is not None:
        topic.description = description.strip()
    if default_subscribed is not None:
        topic.default_subscribed = default_subscribed
    _save_named(topic, workspace)
    return topic


@transaction.atomic
def delete_topic(*, workspace: Workspace, topic: Topic) -> None:
    """Delete a topic and every contact's choice about it; consent records stay."""
    topic.delete()


# --- tags -------------------------------------------------------------------------------


@transaction.atomic
def rename_tag(*, workspace: Workspace, tag: Tag, name: str) -> Tag:
    name = _require_name(name, 80)
    error = name_taken_error(Tag, workspace=workspace, name=name, instance=tag)
    if error:
        raise ValidationError({"name": f"{error.messages[0]} Merge into it instead."})
    tag.name = name
    tag.full_clean()
    tag.save()
    return tag


@transaction.atomic
def delete_tag(*, workspace: Workspace, tag: Tag) -> int:
    """Delete a tag; it comes off every contact. Returns how many contacts had it."""
    contact_ids = list(tag.contacts.values_list("pk", flat=True))
    tag.delete()
    _announce(workspace, contact_ids, "tags")
    return len(contact_ids)


@transaction.atomic
def merge_tags(*, workspace: Workspace, source: Tag, target: Tag) -> int:
    """Give everything tagged `source` (contacts, signup forms, imports) the tag `target`,
    then delete `source`. Returns how many contacts carried `source`."""
    if source.workspace_id != workspace.pk or target.workspace_id != workspace.pk:
        raise ValidationError({"target": "Choose one of this workspace's tags."})
    if source.pk == target.pk:
        raise ValidationError({"target": "Choose a different tag to merge into."})
    contact_ids = list(source.contacts.values_list("pk", flat=True))
    for relation in _tag_relations():
        _repoint_tag(relation, source, target)
    source.delete()
    _announce(workspace, contact_ids, "tags")
    return len(contact_ids)


def _tag_relations() -> list[ManyToManyRel]:
    """Every many-to-many that points at Tag, so a merge misses none added later."""
    return [
        rel for rel in Tag._meta.get_fields(include_hidden=True) if isinstance(rel, ManyToManyRel)
    ]


def _repoint_tag(relation: ManyToManyRel, source: Tag, target: Tag) -> None:
    through = relation.through
    owner = relation.field.m2m_column_name()
    tag_column = relation.field.m2m_reverse_name()
    owner_ids = through.objects.filter(**{tag_column: source.pk}).values_list(owner, flat=True)
    through.objects.bulk_create(
        [through(**{owner: owner_id, tag_column: target.pk}) for owner_id in owner_ids],
        ignore_conflicts=True,
        batch_size=5000,
    )


def _announce(workspace: Workspace, contact_ids: list[int], change: str) -> None:
    if not contact_ids:
        return
    transaction.on_commit(
        lambda: contacts_changed.send(
            sender=Contact, workspace_id=workspace.pk, contact_ids=contact_ids, changes={change}
        )
    )

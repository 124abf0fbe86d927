"""Forms of the audience settings: stages, personas, custom fields, tags and topics. They
check the shape of the input; the services in contacts/audience.py check the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from workspaces.models import Workspace

from .audience import name_taken_error
from .models import CustomField, FieldType, LifecycleStage, Segment, Tag


def _choices_of(objects: Any) -> list[tuple[str, str]]:
    return [(str(obj.public_id), obj.name) for obj in objects]


class StageForm(forms.Form):
    name = forms.CharField(max_length=60, label="Stage name")
    description = forms.CharField(
        max_length=255, required=False, help_text="What it means to be in this stage."
    )

    def __init__(
        self,
        *args: Any,
        workspace: Workspace,
        stage: LifecycleStage | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.stage = stage

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        error = name_taken_error(
            LifecycleStage, workspace=self.workspace, name=name, instance=self.stage
        )
        if error:
            raise ValidationError(error.message_dict["name"])
        return name


class StageDeleteForm(forms.Form):
    """Where the contacts of a stage go when it is deleted (asked only if it has any)."""

    move_to = forms.ChoiceField(label="Move its contacts to", required=False)

    def __init__(
        self,
        *args: Any,
        stage: LifecycleStage,
        others: list[LifecycleStage],
        in_use: int,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.stage = stage
        self.others = {str(s.public_id): s for s in others}
        self.in_use = in_use
        self.fields["move_to"].choices = [("", "Choose a stage…"), *_choices_of(others)]
        self.fields["move_to"].required = bool(in_use)
        self.fields["move_to"].error_messages["required"] = (
            f"{in_use} contacts are in “{stage.name}”: choose the stage they move to."
        )

    def clean_move_to(self) -> LifecycleStage | None:
        return self.others.get(self.cleaned_data["move_to"])


class PersonaForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="e.g. “Weekend hiker”.")
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Who they are."
    )
    goals = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="What they want."
    )
    pain_points = forms.CharField(
        required=False,
        label="Pain points",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What gets in their way.",
    )
    assign_segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(),
        required=False,
        label="Assign automatically",
        empty_label="No, I assign it by hand",
        help_text="Contacts without a persona who are in this segment get this persona.",
    )

    def __init__(self, *args: Any, workspace: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assign_segment"].queryset = Segment.objects.for_workspace(workspace)


class CustomFieldForm(forms.Form):
    label = forms.CharField(max_length=120, help_text="e.g. “Shoe size”.")
    key = forms.SlugField(
        max_length=64,
        required=False,
        help_text="Its name in the API, imports and email templates. Leave blank to derive "
        "it from the label. It cannot change later.",
    )
    field_type = forms.ChoiceField(choices=FieldType.choices, label="Type")
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For a choice field: one choice per line.",
    )

    def __init__(self, *args: Any, field: CustomField | None = None, **kwargs: Any) -> None:
        if field is not None:
            kwargs.setdefault(
                "initial",
                {
                    "label": field.label,
                    "key": field.key,
                    "field_type": field.field_type,
                    "choices": "\n".join(field.choices),
                },
            )
        super().__init__(*args, **kwargs)
        if field is not None:
            self.fields["key"].disabled = True
            self.fields["key"].initial = field.key
            self.fields["key"].help_text = "Its name in the API, imports and email templates."

    def clean_choices(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["choices"].splitlines() if line.strip()]


class TagRenameForm(forms.Form):
    name = forms.CharField(max_length=80, label="Tag name")


class TagMergeForm(forms.Form):
    target = forms.ChoiceField(label="Merge into")

    def __init__(self, *args: Any, others: list[Tag], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.others = {str(t.public_id): t for t in others}
        self.fields["target"].choices = [("", "Choose a tag…"), *_choices_of(others)]

    def clean_target(self) -> Tag:
        return self.others[self.cleaned_data["target"]]


class TopicForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="e.g. “Newsletter” or “Offers”.")
    description = forms.CharField(
        max_length=255, required=False, help_text="Shown in the preference centre."
    )
    default_subscribed = forms.BooleanField(
        required=False,
        initial=True,
        label="Subscribed by default",
        help_text="New subscribers get this topic unless they opt out of it.",
    )

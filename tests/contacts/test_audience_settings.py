"""Audience settings: lifecycle stages, personas, custom fields, tags and topics, as an
owner or admin shapes them, and as everyone else may only read them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from contacts import audience
from contacts.models import (
    DEFAULT_STAGES,
    Contact,
    CustomField,
    LifecycleStage,
    Persona,
    StageChange,
    Tag,
    Topic,
    TopicPreference,
)
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    LifecycleStageFactory,
    PersonaFactory,
    SignupFormFactory,
    TagFactory,
    TopicFactory,
)
from workspaces import demo
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def url(name, workspace, *ids):
    return reverse(name, args=[workspace.slug, *ids])


def stage_names(workspace):
    return list(LifecycleStage.objects.for_workspace(workspace).values_list("name", flat=True))


@pytest.fixture
def stages(workspace_a):
    return [
        LifecycleStageFactory(workspace=workspace_a, name=name, position=i)
        for i, name in enumerate(DEFAULT_STAGES)
    ]


# --- default stages ---------------------------------------------------------------------


def test_a_new_signup_starts_with_the_five_default_stages(client):
    signup = {
        "full_name": "Nina New",
        "email": "nina@shop.example",
        "password": "a-long-enough-password",
        "workspace_name": "Nina's Shop",
        "agency_name": "",
    }
    assert client.post(reverse("signup"), signup).status_code == 302
    workspace = Workspace.objects.get(slug="ninas-shop")
    assert stage_names(workspace) == DEFAULT_STAGES
    page = client.get(url("audience_stages", workspace)).content.decode()
    assert all(f"<strong>{name}</strong>" in page for name in DEFAULT_STAGES)


def test_both_demo_workspaces_start_with_the_default_stages():
    for workspace in demo.seed_workspaces().values():
        assert stage_names(workspace) == DEFAULT_STAGES


# --- lifecycle stages -------------------------------------------------------------------


def test_the_stage_list_shows_each_stage_in_order_with_its_contacts(
    viewer_client, workspace_a, stages, django_assert_max_num_queries
):
    ContactFactory.create_batch(3, workspace=workspace_a, lifecycle_stage=stages[1])
    ContactFactory(workspace=workspace_a)
    with django_assert_max_num_queries(8):
        response = viewer_client.get(url("audience_stages", workspace_a))
    assert response.status_code == 200
    body = response.content.decode()
    positions = [body.index(f"<strong>{name}</strong>") for name in DEFAULT_STAGES]
    assert positions == sorted(positions)
    assert "<td>3</td>" in body
    assert "1 contact has no stage" in body
    assert "Rename" not in body and "Add stage" not in body  # a viewer only reads


def test_an_admin_adds_a_stage_at_the_end(admin_client_a, workspace_a, stages):
    response = admin_client_a.post(
        url("audience_stage_create", workspace_a), {"name": " Loyalty "}, headers=HTMX
    )
    assert response.status_code == 200
    assert "Loyalty" in response.content.decode()
    assert stage_names(workspace_a) == [*DEFAULT_STAGES, "Loyalty"]


def test_a_stage_name_in_use_is_a_form_error_whatever_its_case(owner_client, workspace_a, stages):
    response = owner_client.post(url("audience_stage_create", workspace_a), {"name": "DECISION"})
    assert response.status_code == 400
    assert "There is already a lifecycle stage called “Decision”." in response.content.decode()
    assert stage_names(workspace_a) == DEFAULT_STAGES


def test_a_stage_is_renamed_inline(owner_client, workspace_a, stages):
    rename = url("audience_stage_rename", workspace_a, stages[0].public_id)
    form_row = owner_client.get(rename, headers=HTMX).content.decode()
    assert 'name="name"' in form_row and "<html" not in form_row
    response = owner_client.post(rename, {"name": "Discovery"}, headers=HTMX)
    assert "Discovery" in response.content.decode()
    assert 'id="stage-table"' in response.content.decode()
    assert stage_names(workspace_a)[0] == "Discovery"


def test_renaming_a_stage_to_another_stages_name_shows_the_error_in_the_row(
    owner_client, workspace_a, stages
):
    rename = url("audience_stage_rename", workspace_a, stages[0].public_id)
    response = owner_client.post(rename, {"name": "retention"}, headers=HTMX)
    assert response.status_code == 200  # htmx swaps 2xx only
    assert response["HX-Retarget"] == f"#stage-{stages[0].public_id}"
    assert "already a lifecycle stage called “Retention”" in response.content.decode()
    assert stage_names(workspace_a) == DEFAULT_STAGES


def test_a_stage_may_keep_its_name_with_a_new_case(owner_client, workspace_a, stages):
    owner_client.post(
        url("audience_stage_rename", workspace_a, stages[0].public_id), {"name": "AWARENESS"}
    )
    assert stage_names(workspace_a)[0] == "AWARENESS"


def test_stages_move_up_and_down(owner_client, workspace_a, stages):
    owner_client.post(
        url("audience_stage_move", workspace_a, stages[2].public_id), {"direction": "up"}
    )
    assert stage_names(workspace_a)[:3] == ["Awareness", "Decision", "Consideration"]
    response = owner_client.post(
        url("audience_stage_move", workspace_a, stages[0].public_id),
        {"direction": "down"},
        headers=HTMX,
    )
    assert 'id="stage-table"' in response.content.decode()
    assert stage_names(workspace_a)[:3] == ["Decision", "Awareness", "Consideration"]
    owner_client.post(
        url("audience_stage_move", workspace_a, stages[3].public_id), {"direction": "down"}
    )
    owner_client.post(
        url("audience_stage_move", workspace_a, stages[3].public_id), {"direction": "down"}
    )
    assert stage_names(workspace_a)[-1] == "Retention"  # the last stays last


def test_an_empty_stage_is_deleted_without_a_question(owner_client, workspace_a, stages):
    delete = url("audience_stage_delete", workspace_a, stages[4].public_id)
    assert "No contact is in this stage" in owner_client.get(delete).content.decode()
    response = owner_client.post(delete)
    assert response.status_code == 302
    assert stage_names(workspace_a) == DEFAULT_STAGES[:4]


def test_deleting_a_stage_in_use_asks_where_its_contacts_go(owner_client, workspace_a, stages):
    ContactFactory.create_batch(2, workspace=workspace_a, lifecycle_stage=stages[1])
    delete = url("audience_stage_delete", workspace_a, stages[1].public_id)
    page = owner_client.get(delete).content.decode()
    assert "2 contacts are in this stage" in page and 'name="move_to"' in page
    response = owner_client.post(delete, {"move_to": ""})
    assert response.status_code == 400
    assert "choose the stage they move to" in response.content.decode()
    assert "Consideration" in stage_names(workspace_a)


def test_deleting_a_stage_moves_its_contacts_and_records_the_move(
    owner_client, workspace_a, stages
):
    moving = ContactFactory.create_batch(2, workspace=workspace_a, lifecycle_stage=stages[1])
    form = SignupFormFactory(workspace=workspace_a, lifecycle_stage=stages[1])
    response = owner_client.post(
        url("audience_stage_delete", workspace_a, stages[1].public_id),
        {"move_to": str(stages[2].public_id)},
    )
    assert response.status_code == 302
    assert "Consideration" not in stage_names(workspace_a)
    for contact in moving:
        contact.refresh_from_db()
        assert contact.lifecycle_stage == stages[2]
    changes = StageChange.objects.for_workspace(workspace_a).filter(to_stage=stages[2])
    assert sorted(c.contact_id for c in changes) == sorted(c.pk for c in moving)
    form.refresh_from_db()
    assert form.lifecycle_stage == stages[2]


def test_contacts_cannot_be_moved_to_another_workspaces_stage(
    owner_client, workspace_a, workspace_b, stages
):
    ContactFactory(workspace=workspace_a, lifecycle_stage=stages[0])
    foreign = LifecycleStageFactory(workspace=workspace_b)
    response = owner_client.post(
        url("audience_stage_delete", workspace_a, stages[0].public_id),
        {"move_to": str(foreign.public_id)},
    )
    assert response.status_code == 400
    assert "Awareness" in stage_names(workspace_a)
    with pytest.raises(ValidationError):
        audience.remove_stage(workspace=workspace_a, stage=stages[0], move_to=foreign)


# --- buyer personas ---------------------------------------------------------------------


def test_an_admin_creates_and_edits_a_persona(admin_client_a, workspace_a):
    response = admin_client_a.post(
        url("audience_persona_create", workspace_a),
        {"name": "Weekend hiker", "goals": "Get outside", "pain_points": "No time"},
    )
    assert response.status_code == 302
    persona = Persona.objects.for_workspace(workspace_a).get()
    assert (persona.name, persona.goals, persona.pain_points) == (
        "Weekend hiker",
        "Get outside",
        "No time",
    )
    admin_client_a.post(
        url("audience_persona_edit", workspace_a, persona.public_id),
        {"name": "Weekend hiker", "description": "Hikes on Saturdays", "goals": "Summits"},
    )
    persona.refresh_from_db()
    assert (persona.description, persona.goals, persona.pain_points) == (
        "Hikes on Saturdays",
        "Summits",
        "",
    )


def test_the_persona_list_shows_each_persona_with_its_contacts(viewer_client, workspace_a):
    persona = PersonaFactory(workspace=workspace_a, name="Busy parent", goals="Save time")
    ContactFactory.create_batch(2, workspace=workspace_a, persona=persona)
    body = viewer_client.get(url("audience_personas", workspace_a)).content.decode()
    assert "Busy parent" in body and "Save time" in body and "2 contacts" in body
    assert "New persona" not in body


def test_a_persona_name_in_use_is_a_form_error(owner_client, workspace_a):
    PersonaFactory(workspace=workspace_a, name="Busy parent")
    other = PersonaFactory(workspace=workspace_a, name="Student")
    created = owner_client.post(
        url("audience_persona_create", workspace_a), {"name": "busy PARENT"}
    )
    renamed = owner_client.post(
        url("audience_persona_edit", workspace_a, other.public_id), {"name": "Busy Parent"}
    )
    for response in (created, renamed):
        assert response.status_code == 400
        assert "There is already a persona called “Busy parent”." in response.content.decode()
    assert "Edit “Student”" in renamed.content.decode()  # the saved name, not the refused one
    assert Persona.objects.for_workspace(workspace_a).count() == 2


def test_deleting_a_persona_keeps_its_contacts(owner_client, workspace_a):
    persona = PersonaFactory(workspace=workspace_a)
    contact = ContactFactory(workspace=workspace_a, persona=persona)
    delete = url("audience_persona_delete", workspace_a, persona.public_id)
    assert "1 contacts have this persona" in owner_client.get(delete).content.decode()
    assert owner_client.post(delete).status_code == 302
    contact.refresh_from_db()
    assert contact.persona is None
    assert not Persona.objects.for_workspace(workspace_a).exists()


# --- custom fields ----------------------------------------------------------------------


def test_a_field_gets_its_key_from_its_label(owner_client, workspace_a):
    response = owner_client.post(
        url("audience_field_create", workspace_a), {"label": "Shoe size", "field_type": "number"}
    )
    assert response.status_code == 302
    field = CustomField.objects.for_workspace(workspace_a).get()
    assert (field.key, field.field_type, field.choices) == ("shoe_size", "number", [])


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"label": "Plan", "field_type": "choice"}, "A choice field needs at least one choice."),
        ({"label": "Size", "key": "size", "field_type": "text"}, "already has the key “size”"),
        ({"label": "Mail", "key": "email", "field_type": "text"}, "is a standard contact field"),
        ({"label": "Odd", "key": "not a slug", "field_type": "text"}, "Enter a valid “slug”"),
        ({"label": "Odd", "field_type": "colour"}, "Select a valid choice"),
    ],
)
def test_a_bad_field_is_a_form_error(owner_client, workspace_a, data, error):
    CustomFieldFactory(workspace=workspace_a, key="size", label="Size")
    response = owner_client.post(url("audience_field_create", workspace_a), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert CustomField.objects.for_workspace(workspace_a).count() == 1


def test_a_choice_field_keeps_its_choices_in_order(owner_client, workspace_a):
    owner_client.post(
        url("audience_field_create", workspace_a),
        {"label": "Plan", "field_type": "choice", "choices": "Free\n Pro \n\nFree\nTeam"},
    )
    assert CustomField.objects.for_workspace(workspace_a).get().choices == ["Free", "Pro", "Team"]


def test_a_fields_key_does_not_change_when_it_is_edited(owner_client, workspace_a):
    field = CustomFieldFactory(workspace=workspace_a, key="size", label="Size")
    owner_client.post(
        url("audience_field_edit", workspace_a, field.public_id),
        {"label": "Shoe size", "key": "other", "field_type": "text"},
    )
    field.refresh_from_db()
    assert (field.label, field.key) == ("Shoe size", "size")


def test_a_type_change_is_refused_while_values_do_not_fit(owner_client, workspace_a):
    field = CustomFieldFactory(workspace=workspace_a, key="size", label="Size")
    ContactFactory(workspace=workspace_a, email="ann@example.com", attributes={"size": "large"})
    ContactFactory(workspace=workspace_a, attributes={"size": "42"})
    response = owner_client.post(
        url("audience_field_edit", workspace_a, field.public_id),
        {"label": "Size", "field_type": "number"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "1 contact holds a value that is not a valid number" in body
    assert "ann@example.com: “large”" in body
    field.refresh_from_db()
    assert field.field_type == "text"
    values = Contact.objects.for_workspace(workspace_a).values_list("attributes", flat=True)
    assert sorted(v["size"] for v in values) == ["42", "large"]  # nothing converted


def test_a_type_change_converts_values_that_fit(owner_client, workspace_a):
    field = CustomFieldFactory(workspace=workspace_a, key="size", label="Size")
    contact = ContactFactory(workspace=workspace_a, attributes={"size": "42", "other": "x"})
    blank = ContactFactory(workspace=workspace_a, attributes={"size": ""})
    response = owner_client.post(
        url("audience_field_edit", workspace_a, field.public_id),
        {"label": "Size", "field_type": "number"},
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    blank.refresh_from_db()
    assert contact.attributes == {"size": 42, "other": "x"}
    assert blank.attributes == {"size": ""}


def test_removing_a_choice_that_contacts_hold_is_refused(workspace_a):
    field = CustomFieldFactory(
        workspace=workspace_a, key="plan", field_type="choice", choices=["Free", "Pro"]
    )
    ContactFactory(workspace=workspace_a, attributes={"plan": "Pro"})
    with pytest.raises(ValidationError, match="not a valid choice \\(Free\\)"):
        audience.update_custom_field(workspace=workspace_a, field=field, choices=["Free"])
    field.refresh_from_db()
    assert field.choices == ["Free", "Pro"]


def test_deleting_a_field_keeps_the_values(owner_client, workspace_a):
    field = CustomFieldFactory(workspace=workspace_a, key="size", label="Size")
    contact = ContactFactory(workspace=workspace_a, attributes={"size": "L"})
    delete = url("audience_field_delete", workspace_a, field.public_id)
    assert "1 contacts have a value" in owner_client.get(delete).content.decode()
    assert owner_client.post(delete).status_code == 302
    assert not CustomField.objects.for_workspace(workspace_a).exists()
    contact.refresh_from_db()
    assert contact.attributes == {"size": "L"}


# --- tags -------------------------------------------------------------------------------


def test_the_tag_list_counts_contacts(viewer_client, workspace_a):
    vip = TagFactory(workspace=workspace_a, name="vip")
    for contact in ContactFactory.create_batch(3, workspace=workspace_a):
        contact.tags.add(vip)
    body = viewer_client.get(url("audience_tags", workspace_a)).content.decode()
    assert ">vip<" in body and "<td>3</td>" in body
    assert "Merge…" not in body


def test_a_tag_is_renamed_inline(owner_client, workspace_a):
    tag = TagFactory(workspace=workspace_a, name="vip")
    rename = url("audience_tag_rename", workspace_a, tag.public_id)
    assert 'name="name"' in owner_client.get(rename, headers=HTMX).content.decode()
    response = owner_client.post(rename, {"name": "VIP customers"}, headers=HTMX)
    assert f'id="tag-{tag.public_id}"' in response.content.decode()
    assert "VIP customers" in response.content.decode()
    tag.refresh_from_db()
    assert tag.name == "VIP customers"


def test_renaming_a_tag_to_a_name_in_use_suggests_a_merge(owner_client, workspace_a):
    TagFactory(workspace=workspace_a, name="vip")
    tag = TagFactory(workspace=workspace_a, name="V.I.P.")
    response = owner_client.post(
        url("audience_tag_rename", workspace_a, tag.public_id), {"name": "VIP"}
    )
    assert response.status_code == 400
    assert (
        "There is already a tag called “vip”. Merge into it instead." in response.content.decode()
    )


def test_merging_a_tag_moves_its_contacts_and_forms(owner_client, workspace_a):
    source = TagFactory(workspace=workspace_a, name="V.I.P.")
    target = TagFactory(workspace=workspace_a, name="vip")
    both, only_source = ContactFactory.create_batch(2, workspace=workspace_a)
    both.tags.add(source, target)
    only_source.tags.add(source)
    form = SignupFormFactory(workspace=workspace_a)
    form.tags.add(source)
    response = owner_client.post(
        url("audience_tag_merge", workspace_a, source.public_id), {"target": str(target.public_id)}
    )
    assert response.status_code == 302
    assert not Tag.objects.for_workspace(workspace_a).filter(pk=source.pk).exists()
    assert list(both.tags.all()) == [target]
    assert list(only_source.tags.all()) == [target]
    assert list(form.tags.all()) == [target]


def test_a_tag_cannot_be_merged_into_itself_or_another_workspaces_tag(
    owner_client, workspace_a, workspace_b
):
    tag = TagFactory(workspace=workspace_a)
    foreign = TagFactory(workspace=workspace_b)
    merge = url("audience_tag_merge", workspace_a, tag.public_id)
    for target in (tag, foreign):
        response = owner_client.post(merge, {"target": str(target.public_id)})
        assert response.status_code == 400
    assert Tag.objects.for_workspace(workspace_a).filter(pk=tag.pk).exists()
    with pytest.raises(ValidationError):
        audience.merge_tags(workspace=workspace_a, source=tag, target=tag)


def test_deleting_a_tag_takes_it_off_contacts(owner_client, workspace_a):
    tag = TagFactory(workspace=workspace_a)
    contact = ContactFactory(workspace=workspace_a)
    contact.tags.add(tag)
    assert (
        owner_client.post(url("audience_tag_delete", workspace_a, tag.public_id)).status_code == 302
    )
    assert Contact.objects.for_workspace(workspace_a).filter(pk=contact.pk).exists()
    assert not contact.tags.exists()


# --- topics -----------------------------------------------------------------------------


def test_an_admin_creates_and_edits_a_topic(admin_client_a, workspace_a):
    admin_client_a.post(
        url("audience_topic_create", workspace_a),
        {"name": "Offers", "description": "Sales and discounts", "default_subscribed": "on"},
    )
    topic = Topic.objects.for_workspace(workspace_a).get()
    assert (topic.name, topic.default_subscribed) == ("Offers", True)
    admin_client_a.post(
        url("audience_topic_edit", workspace_a, topic.public_id),
        {"name": "Special offers", "description": ""},
    )
    topic.refresh_from_db()
    assert (topic.name, topic.description, topic.default_subscribed) == (
        "Special offers",
        "",
        False,
    )


def test_a_topic_name_in_use_is_a_form_error(owner_client, workspace_a):
    TopicFactory(workspace=workspace_a, name="Newsletter")
    response = owner_client.post(url("audience_topic_create", workspace_a), {"name": "NEWSLETTER"})
    assert response.status_code == 400
    assert "There is already a topic called “Newsletter”." in response.content.decode()


def test_the_topic_list_counts_choices_and_delete_removes_them(owner_client, workspace_a):
    topic = TopicFactory(workspace=workspace_a, name="Offers")
    for subscribed in (True, True, False):
        contact = ContactFactory(workspace=workspace_a)
        TopicPreference.objects.create(
            workspace=workspace_a, contact=contact, topic=topic, subscribed=subscribed
        )
    body = owner_client.get(url("audience_topics", workspace_a)).content.decode()
    assert "<td>2</td>" in body and "<td>1</td>" in body
    assert (
        owner_client.post(url("audience_topic_delete", workspace_a, topic.public_id)).status_code
        == 302
    )
    assert not TopicPreference.objects.for_workspace(workspace_a).exists()
    assert Contact.objects.for_workspace(workspace_a).count() == 3


# --- who may change what ----------------------------------------------------------------

WRITES = [
    ("audience_stage_create", None),
    ("audience_stage_rename", "stage"),
    ("audience_stage_move", "stage"),
    ("audience_stage_delete", "stage"),
    ("audience_persona_create", None),
    ("audience_persona_edit", "persona"),
    ("audience_persona_delete", "persona"),
    ("audience_field_create", None),
    ("audience_field_edit", "field"),
    ("audience_field_delete", "field"),
    ("audience_tag_rename", "tag"),
    ("audience_tag_merge", "tag"),
    ("audience_tag_delete", "tag"),
    ("audience_topic_create", None),
    ("audience_topic_edit", "topic"),
    ("audience_topic_delete", "topic"),
]
FACTORIES = {
    "stage": LifecycleStageFactory,
    "persona": PersonaFactory,
    "field": CustomFieldFactory,
    "tag": TagFactory,
    "topic": TopicFactory,
}


@pytest.mark.parametrize("client_name", ["viewer_client", "editor_client"])
@pytest.mark.parametrize(("route", "kind"), WRITES)
def test_viewers_and_editors_cannot_change_the_audience_settings(
    request, client_name, workspace_a, route, kind
):
    client = request.getfixturevalue(client_name)
    ids = [FACTORIES[kind](workspace=workspace_a).public_id] if kind else []
    response = client.post(url(route, workspace_a, *ids), {"name": "Changed", "label": "Changed"})
    assert response.status_code == 403
    assert not LifecycleStage.objects.for_workspace(workspace_a).filter(name="Changed").exists()


@pytest.mark.parametrize("client_name", ["viewer_client", "editor_client"])
@pytest.mark.parametrize(
    "route",
    ["audience_stages", "audience_personas", "audience_fields", "audience_tags", "audience_topics"],
)
def test_everyone_in_the_workspace_reads_the_audience_settings(
    request, client_name, workspace_a, route
):
    response = request.getfixturevalue(client_name).get(url(route, workspace_a))
    assert response.status_code == 200
    assert "Only owners and admins change these settings." in response.content.decode()


@pytest.mark.parametrize(("route", "kind"), [(r, k) for r, k in WRITES if k])
def test_another_workspaces_objects_answer_404(owner_client, workspace_a, workspace_b, route, kind):
    foreign = FACTORIES[kind](workspace=workspace_b)
    response = owner_client.post(url(route, workspace_a, foreign.public_id), {"name": "Mine"})
    assert response.status_code == 404
    assert owner_client.get(url(route, workspace_a, foreign.public_id)).status_code in (404, 405)


def test_an_outsider_gets_404_on_the_audience_pages(outsider_client, workspace_a, stages):
    for route in ("audience_stages", "audience_tags"):
        assert outsider_client.get(url(route, workspace_a)).status_code == 404
    delete = url("audience_stage_delete", workspace_a, stages[0].public_id)
    assert outsider_client.post(delete).status_code == 404
    assert len(stage_names(workspace_a)) == 5


def test_the_settings_tabs_link_the_audience(owner_client, workspace_a):
    body = owner_client.get(reverse("settings", args=[workspace_a.slug])).content.decode()
    assert url("audience_stages", workspace_a) in body


@pytest.mark.parametrize(
    "route",
    ["audience_stages", "audience_personas", "audience_fields", "audience_tags", "audience_topics"],
)
def test_each_list_takes_a_fixed_number_of_queries(
    owner_client, workspace_a, route, django_assert_max_num_queries
):
    for _ in range(20):
        persona = PersonaFactory(workspace=workspace_a)
        tag = TagFactory(workspace=workspace_a)
        TopicFactory(workspace=workspace_a)
        CustomFieldFactory(workspace=workspace_a)
        stage = LifecycleStageFactory(workspace=workspace_a)
        contact = ContactFactory(workspace=workspace_a, persona=persona, lifecycle_stage=stage)
        contact.tags.add(tag)
    with django_assert_max_num_queries(8):
        assert owner_client.get(url(route, workspace_a)).status_code == 200

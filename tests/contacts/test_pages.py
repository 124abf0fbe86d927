"""The contact pages a shop owner uses every day: the list (search, filters, sorting,
keyset pages, bulk actions), adding a contact, the profile (edits, stage, persona, tags,
subscription, topics, consent history, timeline), the GDPR download and erasure."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts import services
from contacts.models import (
    ConsentKind,
    ConsentRecord,
    Contact,
    Event,
    FieldType,
    Source,
    StageChange,
    SubscriptionStatus,
    Suppression,
    TopicPreference,
)
from contacts.timeline import (
    TimelineItem,
    _sources,
    contact_timeline,
    register_timeline_source,
)
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    EventFactory,
    LifecycleStageFactory,
    PersonaFactory,
    TagFactory,
    TopicFactory,
)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def _list_url(workspace, **params):
    url = reverse("contact_list", args=[workspace.slug])
    if params:
        from urllib.parse import urlencode

        url += "?" + urlencode(params)
    return url


def _profile_url(contact, name="contact_profile"):
    return reverse(name, args=[contact.workspace.slug, contact.public_id])


def _emails(response) -> list[str]:
    return [c.email for c in response.context["contacts"]]


def _contacts(workspace):
    return Contact.objects.for_workspace(workspace)


def _make_contacts(workspace, count, start=0, **kwargs):
    now = timezone.now()
    contacts = []
    for n in range(start, start + count):
        contact = ContactFactory(workspace=workspace, email=f"c{n:03}@example.com", **kwargs)
        Contact.all_workspaces.filter(pk=contact.pk).update(created_at=now - timedelta(minutes=n))
        contacts.append(contact)
    return contacts


# --- the list ----------------------------------------------------------------------------------


def test_a_new_workspace_shows_how_contacts_arrive(owner_client, workspace_a):
    body = owner_client.get(_list_url(workspace_a)).content.decode()
    assert 'data-testid="contacts-empty"' in body
    for way in ("Import a list", "signup form", "API", "By hand"):
        assert way in body
    assert f"/w/{workspace_a.slug}/contacts/import/" in body


def test_the_sidebar_links_contacts(owner_client, workspace_a):
    body = owner_client.get(reverse("dashboard", args=[workspace_a.slug])).content.decode()
    assert f'href="{_list_url(workspace_a)}"' in body


def test_the_list_shows_contacts_with_stage_and_tags(owner_client, workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a, name="Decision")
    contact = ContactFactory(
        workspace=workspace_a, email="ann@example.com", first_name="Ann", lifecycle_stage=stage
    )
    contact.tags.add(TagFactory(workspace=workspace_a, name="vip"))
    response = owner_client.get(_list_url(workspace_a))
    body = response.content.decode()
    assert response.status_code == 200
    assert "ann@example.com" in body and "Decision" in body and "vip" in body
    assert _profile_url(contact) in body
    assert response["Vary"].count("HX-Request") == 1


def test_search_matches_email_and_name(owner_client, workspace_a):
    ContactFactory(workspace=workspace_a, email="jane@shop.example", first_name="Jane")
    ContactFactory(
        workspace=workspace_a, email="bob@other.example", first_name="Robert", last_name="Stone"
    )
    ContactFactory(workspace=workspace_a, email="zed@other.example", first_name="Zed")
    assert _emails(owner_client.get(_list_url(workspace_a, q="JANE@"))) == ["jane@shop.example"]
    assert _emails(owner_client.get(_list_url(workspace_a, q="stone"))) == ["bob@other.example"]
    assert _emails(owner_client.get(_list_url(workspace_a, q="robert stone"))) == [
        "bob@other.example"
    ]
    assert _emails(owner_client.get(_list_url(workspace_a, q="100%"))) == []


def test_each_filter_narrows_the_list(owner_client, workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a)
    persona = PersonaFactory(workspace=workspace_a)
    tag = TagFactory(workspace=workspace_a)
    ContactFactory(workspace=workspace_a, email="plain@example.com")
    ContactFactory(
        workspace=workspace_a, email="gone@example.com", status=SubscriptionStatus.UNSUBSCRIBED
    )
    ContactFactory(workspace=workspace_a, email="staged@example.com", lifecycle_stage=stage)
    ContactFactory(workspace=workspace_a, email="persona@example.com", persona=persona)
    ContactFactory(workspace=workspace_a, email="tagged@example.com").tags.add(tag)

    def emails(**params):
        return _emails(owner_client.get(_list_url(workspace_a, **params)))

    assert emails(status="unsubscribed") == ["gone@example.com"]
    assert emails(stage=stage.public_id) == ["staged@example.com"]
    assert emails(persona=persona.public_id) == ["persona@example.com"]
    assert emails(tag=tag.public_id) == ["tagged@example.com"]
    assert emails(tag=tag.public_id, status="subscribed") == ["tagged@example.com"]
    assert len(emails()) == 5


def test_a_malformed_filter_is_reported_and_ignored(owner_client, workspace_a):
    ContactFactory(workspace=workspace_a, email="one@example.com")
    response = owner_client.get(_list_url(workspace_a, stage="not-a-uuid"))
    assert response.status_code == 200
    assert "Unknown stage." in response.content.decode()
    assert _emails(response) == ["one@example.com"]


def test_another_workspaces_tag_filters_to_nothing(owner_client, workspace_a, workspace_b):
    foreign = TagFactory(workspace=workspace_b)
    ContactFactory(workspace=workspace_a)
    ContactFactory(workspace=workspace_b).tags.add(foreign)
    assert _emails(owner_client.get(_list_url(workspace_a, tag=foreign.public_id))) == []


def test_sorting(owner_client, workspace_a):
    now = timezone.now()
    older = ContactFactory(workspace=workspace_a, email="b@example.com")
    newer = ContactFactory(workspace=workspace_a, email="c@example.com")
    never = ContactFactory(workspace=workspace_a, email="a@example.com")
    Contact.all_workspaces.filter(pk=older.pk).update(
        created_at=now - timedelta(days=3), last_activity_at=now
    )
    Contact.all_workspaces.filter(pk=newer.pk).update(
        created_at=now - timedelta(days=1), last_activity_at=now - timedelta(days=1)
    )
    Contact.all_workspaces.filter(pk=never.pk).update(created_at=now - timedelta(days=2))

    def emails(sort):
        return _emails(owner_client.get(_list_url(workspace_a, sort=sort)))

    assert emails("newest") == ["c@example.com", "a@example.com", "b@example.com"]
    assert emails("oldest") == ["b@example.com", "a@example.com", "c@example.com"]
    assert emails("activity") == ["b@example.com", "c@example.com", "a@example.com"]
    assert emails("email") == ["a@example.com", "b@example.com", "c@example.com"]


@pytest.mark.parametrize("sort", ["newest", "oldest", "activity", "email"])
def test_keyset_pages_follow_on_without_overlap(owner_client, workspace_a, sort):
    contacts = _make_contacts(workspace_a, 60)
    # Same created_at and last activity for a block: the id must break the ties.
    same = timezone.now() - timedelta(days=30)
    Contact.all_workspaces.filter(pk__in=[c.pk for c in contacts[10:40]]).update(
        created_at=same, last_activity_at=same
    )
    seen: list[str] = []
    url = _list_url(workspace_a, sort=sort, per_page=25)
    pages = 0
    while url:
        response = owner_client.get(url)
        seen.extend(_emails(response))
        url = response.context["next_url"]
        pages += 1
        assert "offset" not in (url or "").lower()
    assert pages == 3
    assert len(seen) == len(set(seen)) == 60
    if sort == "email":
        assert seen == sorted(seen)


def test_previous_page_returns_the_same_rows(owner_client, workspace_a):
    _make_contacts(workspace_a, 30)
    first = owner_client.get(_list_url(workspace_a, per_page=25))
    second = owner_client.get(first.context["next_url"])
    assert _emails(second) == [f"c{n:03}@example.com" for n in range(25, 30)]
    back = owner_client.get(second.context["previous_url"])
    assert _emails(back) == _emails(first)
    assert back.context["previous_url"] is None


def test_a_tampered_cursor_starts_from_the_first_page(owner_client, workspace_a):
    _make_contacts(workspace_a, 3)
    response = owner_client.get(_list_url(workspace_a, after="forged:cursor"))
    assert _emails(response) == ["c000@example.com", "c001@example.com", "c002@example.com"]


def _decorate(workspace, contacts):
    stage = LifecycleStageFactory(workspace=workspace)
    persona = PersonaFactory(workspace=workspace)
    tags = [TagFactory(workspace=workspace) for _ in range(3)]
    for contact in contacts:
        contact.tags.add(*tags)
    _contacts(workspace).update(lifecycle_stage=stage, persona=persona)


@pytest.mark.parametrize("params", [{}, {"sort": "activity", "q": "example"}])
def test_the_query_count_does_not_grow_with_the_page(
    owner_client, workspace_a, django_assert_num_queries, params
):
    _decorate(workspace_a, _make_contacts(workspace_a, 10))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ten:
        owner_client.get(_list_url(workspace_a, **params))
    _decorate(workspace_a, _make_contacts(workspace_a, 50, start=10))
    assert _contacts(workspace_a).count() == 60
    with django_assert_num_queries(len(ten.captured_queries)):
        response = owner_client.get(_list_url(workspace_a, **params))
    assert len(response.context["contacts"]) == 50
    next_url = response.context["next_url"]
    with django_assert_num_queries(len(ten.captured_queries)):
        owner_client.get(next_url)


def test_filters_answer_htmx_with_the_rows_only(owner_client, workspace_a):
    ContactFactory(workspace=workspace_a, email="jane@example.com")
    response = owner_client.get(
        _list_url(workspace_a, q="jane"), headers={**HTMX, "HX-Target": "contact-results"}
    )
    body = response.content.decode()
    assert "jane@example.com" in body
    assert "<html" not in body and 'id="contact-results"' in body
    # A history restore asks for the whole page.
    restore = owner_client.get(
        _list_url(workspace_a),
        headers={**HTMX, "HX-Target": "contact-results", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.content.decode()


def test_export_and_count_links_carry_the_filters(owner_client, workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a)
    tag = TagFactory(workspace=workspace_a)
    ContactFactory(workspace=workspace_a, lifecycle_stage=stage).tags.add(tag)
    ContactFactory(workspace=workspace_a)
    response = owner_client.get(
        _list_url(
            workspace_a, status="subscribed", stage=stage.public_id, tag=tag.public_id, q="ex"
        )
    )
    body = response.content.decode()
    href = re.search(r'href="([^"]*export\.csv[^"]*)"', body).group(1).replace("&amp;", "&")
    assert href.startswith(f"/w/{workspace_a.slug}/contacts/export.csv?")
    for part in ("q=ex", "status=subscribed", f"stage={stage.public_id}", f"tag={tag.public_id}"):
        assert part in href
    count_url = reverse("contact_count", args=[workspace_a.slug])
    assert count_url in body
    count = owner_client.get(count_url + f"?stage={stage.public_id}")
    assert count.content.decode().strip() == "1 contact"
    assert owner_client.get(count_url).content.decode().strip() == "2 contacts"


# --- bulk actions --------------------------------------------------------------------------------


def _bulk(client, workspace, **data):
    return client.post(reverse("contact_bulk", args=[workspace.slug]), data)


def test_bulk_add_and_remove_a_tag_on_ticked_contacts(editor_client, workspace_a):
    picked, other = ContactFactory(workspace=workspace_a), ContactFactory(workspace=workspace_a)
    response = _bulk(
        editor_client,
        workspace_a,
        action="add_tag",
        scope="selected",
        contact=[picked.public_id],
        tag_name="VIP",
    )
    assert response.status_code == 302
    assert [t.name for t in picked.tags.all()] == ["VIP"]
    assert not other.tags.exists()
    _bulk(
        editor_client,
        workspace_a,
        action="remove_tag",
        scope="selected",
        contact=[picked.public_id],
        tag_name="vip",
    )
    assert not picked.tags.exists()


def test_bulk_remove_of_an_unknown_tag_says_so(editor_client, workspace_a):
    picked = ContactFactory(workspace=workspace_a)
    response = _bulk(
        editor_client,
        workspace_a,
        action="remove_tag",
        scope="selected",
        contact=[picked.public_id],
        tag_name="nope",
    )
    page = editor_client.get(response.url).content.decode()
    assert "There is no tag called “nope”." in page


def test_bulk_change_stage_records_each_move(editor_client, workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a, name="Retention")
    picked = [ContactFactory(workspace=workspace_a) for _ in range(2)]
    _bulk(
        editor_client,
        workspace_a,
        action="change_stage",
        scope="selected",
        contact=[c.public_id for c in picked],
        stage=stage.public_id,
    )
    assert _contacts(workspace_a).filter(lifecycle_stage=stage).count() == 2
    assert StageChange.objects.for_workspace(workspace_a).filter(to_stage=stage).count() == 2
    missing = _bulk(
        editor_client,
        workspace_a,
        action="change_stage",
        scope="selected",
        contact=[picked[0].public_id],
    )
    assert "Choose the stage" in editor_client.get(missing.url).content.decode()
    _bulk(
        editor_client,
        workspace_a,
        action="change_stage",
        scope="selected",
        contact=[picked[0].public_id],
        stage="none",
    )
    assert _contacts(workspace_a).filter(lifecycle_stage=stage).count() == 1


def test_bulk_unsubscribe_keeps_a_consent_record(editor_client, workspace_a):
    picked = ContactFactory(workspace=workspace_a)
    _bulk(
        editor_client,
        workspace_a,
        action="unsubscribe",
        scope="selected",
        contact=[picked.public_id],
    )
    picked.refresh_from_db()
    assert picked.status == SubscriptionStatus.UNSUBSCRIBED
    record = ConsentRecord.objects.for_workspace(workspace_a).get(contact=picked)
    assert record.kind == ConsentKind.OPT_OUT and "editor@acme.example" in record.source


def test_bulk_delete_asks_for_confirmation_first(editor_client, workspace_a):
    picked = [ContactFactory(workspace=workspace_a) for _ in range(2)]
    kept = ContactFactory(workspace=workspace_a)
    ids = [c.public_id for c in picked]
    confirm = _bulk(editor_client, workspace_a, action="delete", scope="selected", contact=ids)
    assert confirm.status_code == 200
    assert "Delete 2 contacts?" in confirm.content.decode()
    assert _contacts(workspace_a).count() == 3
    done = _bulk(
        editor_client, workspace_a, action="delete", scope="selected", contact=ids, confirmed="true"
    )
    assert done.status_code == 302
    assert list(_contacts(workspace_a)) == [kept]


def test_bulk_on_all_matching_contacts_follows_the_filters(editor_client, workspace_a):
    tag = TagFactory(workspace=workspace_a)
    matching = _make_contacts(workspace_a, 60)
    for contact in matching:
        contact.tags.add(tag)
    outside = ContactFactory(workspace=workspace_a, email="outside@example.com")
    response = _bulk(
        editor_client, workspace_a, action="unsubscribe", scope="all", tag=tag.public_id
    )
    assert response.url == _list_url(workspace_a, tag=tag.public_id)
    assert _contacts(workspace_a).filter(status=SubscriptionStatus.UNSUBSCRIBED).count() == 60
    outside.refresh_from_db()
    assert outside.status == SubscriptionStatus.SUBSCRIBED
    confirm = _bulk(editor_client, workspace_a, action="delete", scope="all", tag=tag.public_id)
    assert "Delete 60 contacts?" in confirm.content.decode()
    _bulk(
        editor_client,
        workspace_a,
        action="delete",
        scope="all",
        tag=tag.public_id,
        confirmed="true",
    )
    assert list(_contacts(workspace_a)) == [outside]


def test_bulk_needs_a_choice_of_contacts(editor_client, workspace_a):
    ContactFactory(workspace=workspace_a)
    response = _bulk(editor_client, workspace_a, action="unsubscribe", scope="selected")
    page = editor_client.get(response.url).content.decode()
    assert "Tick at least one contact" in page


def test_bulk_ignores_another_workspaces_contacts(editor_client, workspace_a, workspace_b):
    foreign = ContactFactory(workspace=workspace_b)
    _bulk(
        editor_client,
        workspace_a,
        action="delete",
        scope="selected",
        contact=[foreign.public_id],
        confirmed="true",
    )
    assert Contact.objects.for_workspace(workspace_b).filter(pk=foreign.pk).exists()


# --- adding a contact ---------------------------------------------------------------------------


def _create(client, workspace, **data):
    return client.post(reverse("contact_create", args=[workspace.slug]), data)


def test_adding_a_contact_with_consent_subscribes_and_records_it(editor_client, workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a)
    response = _create(
        editor_client,
        workspace_a,
        email="New@Example.com",
        first_name="Nina",
        lifecycle_stage=stage.public_id,
        tags="vip, shop",
        subscribe="on",
        consent_basis="Ticked the box at the till",
    )
    contact = _contacts(workspace_a).get(email="new@example.com")
    assert response.status_code == 302 and response.url == _profile_url(contact)
    assert contact.status == SubscriptionStatus.SUBSCRIBED
    assert contact.source == Source.MANUAL and contact.lifecycle_stage == stage
    assert sorted(t.name for t in contact.tags.all()) == ["shop", "vip"]
    record = ConsentRecord.objects.for_workspace(workspace_a).get(contact=contact)
    assert record.text_shown == "Ticked the box at the till"
    assert record.method == Source.MANUAL


def test_adding_without_consent_leaves_the_contact_unsubscribed(editor_client, workspace_a):
    _create(editor_client, workspace_a, email="quiet@example.com")
    contact = _contacts(workspace_a).get(email="quiet@example.com")
    assert contact.status == SubscriptionStatus.UNSUBSCRIBED
    assert not ConsentRecord.objects.for_workspace(workspace_a).exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"email": "a@example.com", "subscribe": "on"}, "consent_basis", "Say how"),
    ],
)
def test_adding_with_bad_input_shows_errors(editor_client, workspace_a, data, field, message):
    response = _create(editor_client, workspace_a, tags="left-behind", **data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not _contacts(workspace_a).exists()
    from contacts.models import Tag

    assert not Tag.objects.for_workspace(workspace_a).exists()


def test_adding_an_existing_address_points_to_the_contact(editor_client, workspace_a):
    existing = ContactFactory(workspace=workspace_a, email="twice@example.com")
    response = _create(editor_client, workspace_a, email="TWICE@example.com", first_name="Changed")
    assert response.status_code == 400
    assert "already a contact" in response.content.decode()
    assert _profile_url(existing) in response.content.decode()
    existing.refresh_from_db()
    assert existing.first_name != "Changed"


# --- the profile --------------------------------------------------------------------------------


def test_the_profile_shows_fields_attributes_and_consent_history(viewer_client, workspace_a):
    CustomFieldFactory(
        workspace=workspace_a, key="shoe_size", label="Shoe size", field_type=FieldType.NUMBER
    )
    contact = ContactFactory(
        workspace=workspace_a,
        email="pat@example.com",
        first_name="Pat",
        attributes={"shoe_size": 42, "loyalty": "gold"},
    )
    services.record_consents(
        workspace=workspace_a,
        contacts=[contact],
        consent=services.ConsentInput(method=Source.FORM, text_shown="Yes, send me emails"),
    )
    body = viewer_client.get(_profile_url(contact)).content.decode()
    assert "pat@example.com" in body and "Shoe size" in body and "42" in body
    assert "loyalty" in body and "gold" in body
    assert "Yes, send me emails" in body and "Opted in" in body


def test_the_timeline_merges_events_stage_changes_and_consents_newest_first(
    owner_client, workspace_a
):
    now = timezone.now()
    contact = ContactFactory(workspace=workspace_a)
    EventFactory(
        workspace=workspace_a,
        contact=contact,
        name="order_completed",
        occurred_at=now - timedelta(hours=3),
    )
    stage = LifecycleStageFactory(workspace=workspace_a, name="Decision")
    services.change_stage(
        workspace=workspace_a,
        contacts=_contacts(workspace_a).filter(pk=contact.pk),
        stage=stage,
        source=Source.MANUAL,
        at=now - timedelta(hours=2),
    )
    services.record_consents(
        workspace=workspace_a,
        contacts=[contact],
        consent=services.ConsentInput(method=Source.FORM),
        at=now - timedelta(hours=1),
    )
    body = owner_client.get(_profile_url(contact)).content.decode()
    consent, moved, ordered = (
        body.index("Opted in"),
        body.index("Moved to Decision"),
        body.index("Order completed"),
    )
    assert consent < moved < ordered


def test_the_timeline_loads_more_without_repeating(owner_client, workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    same_time = timezone.now()
    for n in range(40):  # all at one moment: the cursor must still move on
        EventFactory(
            workspace=workspace_a, contact=contact, name=f"event_{n:02}", occurred_at=same_time
        )
    response = owner_client.get(_profile_url(contact))
    first = [item.title for item in response.context["timeline"]]
    cursor = response.context["timeline_next"]
    assert len(first) == 25 and cursor is not None
    more = owner_client.get(
        reverse("contact_timeline", args=[workspace_a.slug, contact.public_id]),
        {"before": cursor.token()},
        headers=HTMX,
    )
    body = more.content.decode()
    second = re.findall(r"<strong>(Event \d+)</strong>", body)
    assert len(second) == 15 and 'data-testid="load-more"' not in body
    assert set(first).isdisjoint(second)
    assert "<html" not in body


def test_other_apps_add_timeline_items(workspace_a):
    contact = ContactFactory(workspace=workspace_a)

    def emails_sent(*, workspace, contact, before, limit):
        return [TimelineItem(time=timezone.now(), kind="email", title="Email sent: Welcome", ref=1)]

    register_timeline_source(emails_sent)
    try:
        page = contact_timeline(workspace=workspace_a, contact=contact)
    finally:
        _sources.remove(emails_sent)
    assert [item.title for item in page.items] == ["Email sent: Welcome"]


def _edit(client, contact, **data):
    fields = {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
    }
    return client.post(_profile_url(contact, "contact_edit"), {**fields, **data}, headers=HTMX)


def test_editing_fields_and_custom_attributes(editor_client, workspace_a):
    CustomFieldFactory(
        workspace=workspace_a, key="shoe_size", label="Shoe size", field_type=FieldType.NUMBER
    )
    CustomFieldFactory(workspace=workspace_a, key="vip", label="VIP", field_type=FieldType.BOOLEAN)
    contact = ContactFactory(workspace=workspace_a, attributes={"loyalty": "gold"})
    response = _edit(
        editor_client,
        contact,
        first_name="Ada",
        timezone="Europe/Paris",
        birthday="1990-04-01",
        attr__shoe_size="42",
        attr__vip="yes",
    )
    assert response.status_code == 200
    assert "Saved." in response.content.decode()
    contact.refresh_from_db()
    assert contact.first_name == "Ada" and contact.timezone == "Europe/Paris"
    assert str(contact.birthday) == "1990-04-01"
    assert contact.attributes == {"loyalty": "gold", "shoe_size": 42, "vip": True}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "nope"}, "email", "valid email"),
        ({"attr__shoe_size": "forty"}, "attr__shoe_size", "is not a number"),
        ({"birthday": "someday"}, "birthday", "is not a date"),
    ],
)
def test_bad_edits_show_on_the_field_and_save_nothing(
    editor_client, workspace_a, data, field, message
):
    CustomFieldFactory(
        workspace=workspace_a, key="shoe_size", label="Shoe size", field_type=FieldType.NUMBER
    )
    contact = ContactFactory(
        workspace=workspace_a, first_name="Before", attributes={"shoe_size": 40}
    )
    response = _edit(editor_client, contact, first_name="After", **data)
    assert response.status_code == 422  # swapped by htmx, even under DEBUG
    assert message in " ".join(response.context["form"].errors[field])
    assert 'class="field-error"' in response.content.decode()
    contact.refresh_from_db()
    assert contact.first_name == "Before" and contact.attributes == {"shoe_size": 40}
    plain = editor_client.post(
        _profile_url(contact, "contact_edit"), {"email": contact.email, **data}
    )
    assert plain.status_code == 400


def test_an_address_another_contact_has_is_refused(editor_client, workspace_a):
    ContactFactory(workspace=workspace_a, email="taken@example.com")
    contact = ContactFactory(workspace=workspace_a)
    response = _edit(editor_client, contact, email="taken@example.com")
    assert "Another contact already has this address." in response.content.decode()


def test_stage_and_persona_pickers(editor_client, workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a, name="Retention")
    persona = PersonaFactory(workspace=workspace_a, name="Weekend hiker")
    contact = ContactFactory(workspace=workspace_a)
    response = editor_client.post(
        _profile_url(contact, "contact_stage"), {"stage": stage.public_id}, headers=HTMX
    )
    assert response.status_code == 200 and "contact-changed" in response["HX-Trigger"]
    editor_client.post(
        _profile_url(contact, "contact_persona"), {"persona": persona.public_id}, headers=HTMX
    )
    contact.refresh_from_db()
    assert contact.lifecycle_stage == stage and contact.persona == persona
    assert StageChange.objects.for_workspace(workspace_a).filter(contact=contact).count() == 1


def test_a_stage_of_another_workspace_is_refused(editor_client, workspace_a, workspace_b):
    foreign = LifecycleStageFactory(workspace=workspace_b)
    contact = ContactFactory(workspace=workspace_a)
    response = editor_client.post(
        _profile_url(contact, "contact_stage"), {"stage": foreign.public_id}, headers=HTMX
    )
    assert "Choose one of the listed stages." in response.content.decode()
    contact.refresh_from_db()
    assert contact.lifecycle_stage is None


def test_tags_are_added_and_removed_on_the_profile(editor_client, workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    url = _profile_url(contact, "contact_tags")
    editor_client.post(url, {"names": "vip, hiking"}, headers=HTMX)
    assert sorted(t.name for t in contact.tags.all()) == ["hiking", "vip"]
    vip = contact.tags.get(name="vip")
    response = editor_client.post(url, {"remove": vip.public_id}, headers=HTMX)
    assert [t.name for t in contact.tags.all()] == ["hiking"]
    assert "Tag “vip” removed." in response.content.decode()


def test_unsubscribe_and_subscribe_again_with_a_consent_basis(editor_client, workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    url = _profile_url(contact, "contact_subscription")
    editor_client.post(url, {"action": "unsubscribe"}, headers=HTMX)
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.UNSUBSCRIBED
    refused = editor_client.post(url, {"action": "subscribe"}, headers=HTMX)
    assert "Say how this person agreed" in refused.content.decode()
    assert refused.status_code == 422 and "HX-Trigger" not in refused
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.UNSUBSCRIBED
    editor_client.post(
        url, {"action": "subscribe", "consent_basis": "Asked by phone"}, headers=HTMX
    )
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.SUBSCRIBED
    kinds = ConsentRecord.objects.for_workspace(workspace_a).filter(contact=contact)
    assert [r.kind for r in kinds.order_by("occurred_at", "id")] == [
        ConsentKind.OPT_OUT,
        ConsentKind.OPT_IN,
    ]


def test_a_complaint_cannot_be_resubscribed_by_hand(editor_client, workspace_a):
    contact = ContactFactory(workspace=workspace_a, status=SubscriptionStatus.COMPLAINED)
    editor_client.post(
        _profile_url(contact, "contact_subscription"),
        {"action": "subscribe", "consent_basis": "They said so"},
        headers=HTMX,
    )
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.COMPLAINED


def test_topic_preferences(editor_client, workspace_a):
    topic = TopicFactory(workspace=workspace_a, name="Offers", default_subscribed=True)
    contact = ContactFactory(workspace=workspace_a)
    response = editor_client.post(
        _profile_url(contact, "contact_topic"),
        {"topic": topic.public_id, "subscribed": "no"},
        headers=HTMX,
    )
    assert "Opted out of Offers." in response.content.decode()
    preference = TopicPreference.objects.for_workspace(workspace_a).get(contact=contact)
    assert preference.subscribed is False
    assert ConsentRecord.objects.for_workspace(workspace_a).get(contact=contact).topic == topic


# --- GDPR --------------------------------------------------------------------------------------


def test_download_data_holds_everything_about_the_contact(owner_client, workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a, name="Decision")
    topic = TopicFactory(workspace=workspace_a, name="Newsletter")
    contact = ContactFactory(
        workspace=workspace_a, email="gdpr@example.com", attributes={"shoe_size": 42}
    )
    contact.tags.add(TagFactory(workspace=workspace_a, name="vip"))
    EventFactory(
        workspace=workspace_a, contact=contact, name="order_completed", properties={"total": 10}
    )
    services.change_stage(
        workspace=workspace_a,
        contacts=_contacts(workspace_a).filter(pk=contact.pk),
        stage=stage,
        source=Source.MANUAL,
    )
    services.set_topic_preference(
        workspace=workspace_a, contact=contact, topic=topic, subscribed=True, method=Source.FORM
    )
    EventFactory(workspace=workspace_a, name="someone_else")
    response = owner_client.get(_profile_url(contact, "contact_data_export"))
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["contact"]["email"] == "gdpr@example.com"
    assert data["contact"]["lifecycle_stage"] == "Decision"
    assert data["attributes"] == {"shoe_size": 42}
    assert data["tags"] == ["vip"]
    assert [e["name"] for e in data["events"]] == ["order_completed"]
    assert data["events"][0]["properties"] == {"total": 10}
    assert data["stage_changes"][0]["to"] == "Decision"
    assert data["topic_preferences"] == [{"topic": "Newsletter", "subscribed": True}]
    assert data["consents"][0]["kind"] == ConsentKind.TOPIC_IN


def test_erase_asks_for_the_address_then_suppresses_it(editor_client, workspace_a):
    contact = ContactFactory(workspace=workspace_a, email="forget@example.com")
    EventFactory(workspace=workspace_a, contact=contact)
    url = _profile_url(contact, "contact_erase")
    assert "Erase this contact?" in editor_client.get(url).content.decode()
    wrong = editor_client.post(url, {"confirm_email": "someone@example.com"})
    assert wrong.status_code == 400
    assert _contacts(workspace_a).filter(pk=contact.pk).exists()
    done = editor_client.post(url, {"confirm_email": "Forget@example.com "})
    assert done.status_code == 302 and done.url == _list_url(workspace_a)
    assert not _contacts(workspace_a).exists()
    assert not Event.objects.for_workspace(workspace_a).exists()
    assert Suppression.objects.for_workspace(workspace_a).count() == 1
    assert editor_client.get(_profile_url(contact)).status_code == 404


def test_an_erased_address_cannot_be_added_again(editor_client, workspace_a):
    contact = ContactFactory(workspace=workspace_a, email="forget@example.com")
    services.erase_contact(workspace=workspace_a, contact=contact)
    response = _create(
        editor_client, workspace_a, email="FORGET@example.com", subscribe="on", consent_basis="x"
    )
    assert response.status_code == 400
    assert "erased" in " ".join(response.context["form"].errors["email"])
    [result] = services.upsert_contacts(
        workspace=workspace_a, rows=[{"email": "forget@example.com"}], source=Source.IMPORT
    )
    assert result.status == "rejected"
    assert not _contacts(workspace_a).exists()


# --- roles and tenancy --------------------------------------------------------------------------


def test_viewers_read_everything_without_edit_controls(viewer_client, workspace_a):
    topic = TopicFactory(workspace=workspace_a)
    contact = ContactFactory(workspace=workspace_a)
    contact.tags.add(TagFactory(workspace=workspace_a))
    listing = viewer_client.get(_list_url(workspace_a)).content.decode()
    assert contact.email in listing
    assert 'data-testid="bulk-bar"' not in listing and "Add contact" not in listing
    profile = viewer_client.get(_profile_url(contact)).content.decode()
    assert "Download data" in profile
    for control in ("Edit</a>", "Erase", "Unsubscribe", 'name="names"', "Opt out", "<select"):
        assert control not in profile, control
    assert topic.name in profile


@pytest.mark.parametrize(
    "name",
    [
        "contact_edit",
        "contact_stage",
        "contact_persona",
        "contact_tags",
        "contact_subscription",
        "contact_topic",
        "contact_erase",
    ],
)
def test_viewers_cannot_write(viewer_client, workspace_a, name):
    contact = ContactFactory(workspace=workspace_a)
    assert (
        viewer_client.post(_profile_url(contact, name), {"action": "unsubscribe"}).status_code
        == 403
    )
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.SUBSCRIBED


def test_viewers_cannot_add_or_bulk_change(viewer_client, workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    assert viewer_client.get(reverse("contact_create", args=[workspace_a.slug])).status_code == 403
    response = _bulk(viewer_client, workspace_a, action="unsubscribe", scope="all")
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.SUBSCRIBED


@pytest.mark.parametrize(
    "name",
    ["contact_profile", "contact_edit", "contact_timeline", "contact_data_export", "contact_erase"],
)
def test_another_workspaces_contact_is_404(outsider_client, workspace_a, workspace_b, name):
    contact = ContactFactory(workspace=workspace_a)
    url = reverse(name, args=[workspace_b.slug, contact.public_id])
    assert outsider_client.get(url).status_code == 404
    assert outsider_client.get(_profile_url(contact, name)).status_code == 404

"""The REST API for the audience: contacts (list, filters, search, pages, writes, bulk),
a contact's events, tags, custom fields, personas, stages, and the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from contacts.models import (
    ConsentKind,
    ConsentRecord,
    Contact,
    CustomField,
    FieldType,
    LifecycleStage,
    Persona,
    StageChange,
    SubscriptionStatus,
    Tag,
)
from contacts.services import ensure_default_stages
from tests.factories import (
    ApiKeyFactory,
    ContactFactory,
    CustomFieldFactory,
    EventFactory,
    PersonaFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db


class KeyClient:
    """A client that sends the workspace's API key and JSON, against /api/v1/."""

    def __init__(self, key):
        self.client = Client(headers={"Authorization": f"Bearer {key.secret}"})

    def __getattr__(self, method):
        def call(path, data=None, **params):
            url = path if path.startswith("http") else f"/api/v1/{path}"
            if method == "get":
                return self.client.get(url, data or params)
            body = "" if data is None else data
            return getattr(self.client, method)(url, body, content_type="application/json")

        return call


@pytest.fixture
def api(workspace_a):
    ensure_default_stages(workspace=workspace_a)
    return KeyClient(ApiKeyFactory(workspace=workspace_a))


@pytest.fixture
def outsider_api(workspace_b):
    return KeyClient(ApiKeyFactory(workspace=workspace_b))


def stage(workspace, name):
    return LifecycleStage.objects.for_workspace(workspace).get(name=name)


def contacts(workspace):
    return Contact.objects.for_workspace(workspace)


# --- list, filters, search, pages -------------------------------------------------------


def test_contacts_are_listed_newest_first_in_cursor_pages(api, workspace_a):
    for n in range(120):
        with time_machine.travel(dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n)):
            ContactFactory(workspace=workspace_a, email=f"c{n:03d}@example.com")

    first = api.get("contacts/").json()
    second = api.get(first["next"]).json()

    assert len(first["results"]) == 100
    assert first["results"][0]["email"] == "c119@example.com"
    assert [c["email"] for c in second["results"]][-1] == "c000@example.com"
    assert second["next"] is None
    emails = [c["email"] for c in first["results"] + second["results"]]
    assert len(set(emails)) == 120


def test_a_page_of_contacts_costs_the_same_queries_whatever_its_size(
    api, workspace_a, django_assert_max_num_queries
):
    tags = [TagFactory(workspace=workspace_a) for _ in range(3)]
    for n in range(60):
        contact = ContactFactory(
            workspace=workspace_a, persona=PersonaFactory(workspace=workspace_a)
        )
        contact.tags.set(tags[: n % 4])

    with django_assert_max_num_queries(4):  # key, contacts with stage and persona, tags
        response = api.get("contacts/")

    assert len(response.json()["results"]) == 60


def test_contact_filters_and_search(api, workspace_a):
    decision = stage(workspace_a, "Decision")
    founder = PersonaFactory(workspace=workspace_a, name="Founder")
    vip = TagFactory(workspace=workspace_a, name="VIP")
    ana = ContactFactory(
        workspace=workspace_a,
        email="ana@shop.example",
        first_name="Ana",
        last_name="Lima",
        lifecycle_stage=decision,
        persona=founder,
    )
    ana.tags.add(vip)
    ContactFactory(
        workspace=workspace_a,
        email="bo@else.example",
        first_name="Bo",
        last_name="Ek",
        status=SubscriptionStatus.UNSUBSCRIBED,
    )

    def emails(**params):
        response = api.get("contacts/", **params)
        assert response.status_code == 200, response.json()
        return [c["email"] for c in response.json()["results"]]

    assert emails(status="unsubscribed") == ["bo@else.example"]
    assert emails(stage=str(decision.public_id)) == ["ana@shop.example"]
    assert emails(stage="decision") == ["ana@shop.example"]
    assert emails(persona="Founder") == ["ana@shop.example"]
    assert emails(tag="vip") == ["ana@shop.example"]
    assert emails(tag=str(vip.public_id)) == ["ana@shop.example"]
    assert emails(search="LIMA") == ["ana@shop.example"]
    assert emails(search="else.example") == ["bo@else.example"]
    assert emails(created_since="2999-01-01T00:00:00Z") == []
    assert len(emails(updated_since="2000-01-01")) == 2


def test_bad_filters_get_400_naming_the_parameter(api):
    assert "status" in api.get("contacts/", status="maybe").json()
    assert "stage" in api.get("contacts/", stage="Nowhere").json()
    assert "created_since" in api.get("contacts/", created_since="last week").json()


# --- one contact ------------------------------------------------------------------------


def test_a_contact_is_read_by_id(api, workspace_a):
    contact = ContactFactory(
        workspace=workspace_a, email="read@example.com", attributes={"plan": "pro"}
    )
    contact.tags.add(TagFactory(workspace=workspace_a, name="beta"))

    body = api.get(f"contacts/{contact.public_id}/").json()

    assert body["id"] == str(contact.public_id)
    assert body["email"] == "read@example.com"
    assert body["attributes"] == {"plan": "pro"}
    assert body["tags"] == ["beta"]
    assert body["lifecycle_stage"] is None


def test_another_workspaces_contact_answers_404(api, outsider_api, workspace_a):
    contact = ContactFactory(workspace=workspace_a)

    for call in (
        outsider_api.get(f"contacts/{contact.public_id}/"),
        outsider_api.patch(f"contacts/{contact.public_id}/", {"first_name": "X"}),
        outsider_api.delete(f"contacts/{contact.public_id}/"),
        outsider_api.get(f"contacts/{contact.public_id}/events/"),
    ):
        assert call.status_code == 404
    assert contacts(workspace_a).filter(pk=contact.pk, first_name=contact.first_name).exists()


def test_a_contact_is_created_with_tags_stage_persona_and_a_consent_record(
    api, workspace_a, write_path
):
    PersonaFactory(workspace=workspace_a, name="Maker")
    CustomFieldFactory(workspace=workspace_a, key="shoe_size", field_type=FieldType.NUMBER)

    response = api.post(
        "contacts/",
        {
            "email": " New@Example.com ",
            "first_name": "Nia",
            "external_id": "crm-7",
            "attributes": {"shoe_size": "42", "colour": "green"},
            "tags": ["lead", "newsletter"],
            "lifecycle_stage": "Awareness",
            "persona": "maker",
            "consent_text": "Yes, send me the newsletter.",
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "new@example.com"
    assert body["attributes"] == {"shoe_size": 42, "colour": "green"}
    assert body["tags"] == ["lead", "newsletter"]
    assert body["lifecycle_stage"]["name"] == "Awareness"
    assert body["persona"]["name"] == "Maker"
    assert body["status"] == "subscribed"
    assert body["source"] == "api"
    consent = ConsentRecord.objects.for_workspace(workspace_a).get()
    assert consent.text_shown == "Yes, send me the newsletter."
    assert consent.source.startswith("API key ")
    assert StageChange.objects.for_workspace(workspace_a).count() == 1


def test_creating_a_contact_with_bad_values_gets_field_errors(api, workspace_a):
    CustomFieldFactory(workspace=workspace_a, key="age", field_type=FieldType.NUMBER)
    ContactFactory(workspace=workspace_a, email="taken@example.com")

    invalid = api.post("contacts/", {"email": "not-an-email", "timezone": "Mars/Olympus"})
    unknown = api.post("contacts/", {"email": "a@example.com", "firstname": "Typo"})
    typed = api.post("contacts/", {"email": "a@example.com", "attributes": {"age": "old"}})
    taken = api.post("contacts/", {"email": "TAKEN@example.com"})
    missing = api.post("contacts/", {"first_name": "No email"})
    wrong_stage = api.post("contacts/", {"email": "a@example.com", "lifecycle_stage": "Nope"})

    assert set(invalid.json()) == {"email", "timezone"}
    assert "Unknown field" in unknown.json()["firstname"][0]
    assert "attributes.age" in typed.json()
    assert "email" in taken.json()
    assert "email" in missing.json()
    assert "lifecycle_stage" in wrong_stage.json()
    for response in (invalid, unknown, typed, taken, missing, wrong_stage):
        assert response.status_code == 400
    assert contacts(workspace_a).count() == 1
    assert not Tag.objects.for_workspace(workspace_a).exists()


def test_a_contact_is_updated_field_by_field(api, workspace_a):
    contact = ContactFactory(
        workspace=workspace_a, email="up@example.com", attributes={"plan": "free", "old": 1}
    )
    contact.tags.add(TagFactory(workspace=workspace_a, name="stale"))

    response = api.patch(
        f"contacts/{contact.public_id}/",
        {
            "last_name": "Updated",
            "attributes": {"plan": "pro", "old": None},
            "tags": ["fresh"],
            "lifecycle_stage": "Retention",
            "status": "unsubscribed",
        },
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["last_name"] == "Updated"
    assert body["attributes"] == {"plan": "pro"}
    assert body["tags"] == ["fresh"]
    assert body["lifecycle_stage"]["name"] == "Retention"
    assert body["status"] == "unsubscribed"
    assert ConsentRecord.objects.for_workspace(workspace_a).get().kind == ConsentKind.OPT_OUT
    assert StageChange.objects.for_workspace(workspace_a).filter(contact=contact).count() == 1


def test_a_bad_update_changes_nothing(api, workspace_a):
    contact = ContactFactory(workspace=workspace_a, email="keep@example.com", first_name="Kim")
    ContactFactory(workspace=workspace_a, email="other@example.com")

    taken = api.patch(f"contacts/{contact.public_id}/", {"email": "other@example.com"})
    invalid = api.patch(
        f"contacts/{contact.public_id}/", {"first_name": "Changed", "birthday": "someday"}
    )

    assert taken.status_code == invalid.status_code == 400
    assert "birthday" in invalid.json()
    contact.refresh_from_db()
    assert (contact.email, contact.first_name) == ("keep@example.com", "Kim")


def test_a_contact_is_deleted(api, workspace_a):
    contact = ContactFactory(workspace=workspace_a)

    assert api.delete(f"contacts/{contact.public_id}/").status_code == 204
    assert not contacts(workspace_a).exists()


def test_viewers_read_and_editors_write_contacts(viewer_client, editor_client, workspace_a):
    url = f"/api/v1/w/{workspace_a.slug}/contacts/"

    assert viewer_client.get(url).status_code == 200
    refused = viewer_client.post(url, {"email": "v@example.com"}, content_type="application/json")
    created = editor_client.post(url, {"email": "e@example.com"}, content_type="application/json")

    assert refused.status_code == 403
    assert created.status_code == 201
    assert (
        ConsentRecord.objects.for_workspace(workspace_a).get().source == "API: editor@acme.example"
    )


# --- bulk -------------------------------------------------------------------------------


def test_bulk_upsert_reports_each_contact(api, workspace_a, write_path):
    existing = ContactFactory(workspace=workspace_a, email="old@example.com", first_name="Old")

    response = api.post(
        "contacts/bulk/",
        {
            "contacts": [
                {"email": "one@example.com", "first_name": "One"},
                {"email": "OLD@example.com", "first_name": "Renewed"},
                {"email": "broken"},
                {"email": "two@example.com", "tags": ["per-row"]},
                "not an object",
                {"email": "three@example.com", "attributes": {"plan": "pro"}},
            ],
            "tags": ["imported"],
            "lifecycle_stage": "Consideration",
        },
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert {k: body[k] for k in ("created", "updated", "skipped", "rejected")} == {
        "created": 2,
        "updated": 1,
        "skipped": 0,
        "rejected": 3,
    }
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "created"),
        (1, "updated"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "created"),
    ]
    assert "email" in body["results"][2]["errors"]
    assert "tags" in body["results"][3]["errors"]
    assert body["results"][1]["id"] == str(existing.public_id)
    existing.refresh_from_db()
    assert existing.first_name == "Renewed"
    assert set(contacts(workspace_a).values_list("email", flat=True)) == {
        "old@example.com",
        "one@example.com",
        "three@example.com",
    }
    tagged = contacts(workspace_a).filter(
        tags__name="imported", lifecycle_stage__name="Consideration"
    )
    assert tagged.count() == 3


def test_bulk_can_skip_existing_contacts(api, workspace_a, write_path):
    ContactFactory(workspace=workspace_a, email="old@example.com", first_name="Old")

    body = api.post(
        "contacts/bulk/",
        {"contacts": [{"email": "old@example.com", "first_name": "New"}], "existing": "skip"},
    ).json()

    assert body["results"][0]["status"] == "skipped"
    assert contacts(workspace_a).get().first_name == "Old"


def test_bulk_of_more_than_1000_contacts_is_refused_whole(api, workspace_a):
    rows = [{"email": f"p{n}@example.com"} for n in range(1001)]

    response = api.post("contacts/bulk/", {"contacts": rows})

    assert response.status_code == 400
    assert response.json() == {"contacts": ["At most 1000 contacts per call, got 1001."]}
    assert not contacts(workspace_a).exists()


def test_bulk_of_1000_contacts_is_accepted(api, workspace_a, write_path):
    rows = [{"email": f"p{n}@example.com"} for n in range(1000)]

    response = api.post("contacts/bulk/", {"contacts": rows})

    assert response.json()["created"] == 1000
    assert contacts(workspace_a).count() == 1000


# --- a contact's events -----------------------------------------------------------------


def test_a_contacts_events_newest_first(api, workspace_a):
    contact = ContactFactory(workspace=workspace_a)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for n, name in enumerate(["Signed Up", "page_viewed", "Order Completed"]):
        EventFactory(
            workspace=workspace_a,
            contact=contact,
            name=name,
            occurred_at=now + dt.timedelta(days=n),
        )
    EventFactory(workspace=workspace_a)  # someone else's

    every = api.get(f"contacts/{contact.public_id}/events/").json()["results"]
    orders = api.get(f"contacts/{contact.public_id}/events/", name="Order Completed").json()

    assert [e["name"] for e in every] == ["Order Completed", "page_viewed", "Signed Up"]
    assert len(orders["results"]) == 1


# --- tags, custom fields, personas ------------------------------------------------------


def test_tags_are_created_renamed_listed_and_deleted(api, workspace_a):
    created = api.post("tags/", {"name": "Winter sale"})
    duplicate = api.post("tags/", {"name": "winter SALE"})
    tag_id = created.json()["id"]
    renamed = api.patch(f"tags/{tag_id}/", {"name": "Winter 2026"})
    ContactFactory(workspace=workspace_a).tags.add(Tag.objects.for_workspace(workspace_a).get())
    listed = api.get("tags/").json()["results"]
    deleted = api.delete(f"tags/{tag_id}/")

    assert created.status_code == 201
    assert duplicate.status_code == 400 and "name" in duplicate.json()
    assert renamed.json()["name"] == "Winter 2026"
    assert listed == [{**renamed.json(), "contact_count": 1}]
    assert deleted.status_code == 204
    assert not Tag.objects.for_workspace(workspace_a).exists()


def test_custom_fields_are_typed_and_bad_definitions_get_field_errors(api, workspace_a):
    created = api.post("custom-fields/", {"label": "Shoe size", "field_type": "number"})
    unknown_type = api.post("custom-fields/", {"label": "Colour", "field_type": "colour"})
    no_choices = api.post("custom-fields/", {"label": "Plan", "field_type": "choice"})
    reserved = api.post("custom-fields/", {"label": "Mail", "key": "email"})
    field_id = created.json()["id"]
    key_change = api.patch(f"custom-fields/{field_id}/", {"key": "size"})
    relabelled = api.patch(f"custom-fields/{field_id}/", {"label": "EU shoe size"})

    assert created.status_code == 201
    assert created.json()["key"] == "shoe_size"
    assert unknown_type.status_code == 400 and "field_type" in unknown_type.json()
    assert no_choices.status_code == 400 and "choices" in no_choices.json()
    assert reserved.status_code == 400 and "key" in reserved.json()
    assert key_change.status_code == 400 and "key" in key_change.json()
    assert relabelled.json()["label"] == "EU shoe size"
    assert api.delete(f"custom-fields/{field_id}/").status_code == 204
    assert not CustomField.objects.for_workspace(workspace_a).exists()


def test_personas_are_managed(api, workspace_a):
    created = api.post(
        "personas/", {"name": "Busy founder", "goals": "Save time", "pain_points": "No staff"}
    )
    persona_id = created.json()["id"]
    updated = api.patch(f"personas/{persona_id}/", {"description": "Runs a shop alone"})
    clash = api.post("personas/", {"name": "busy founder"})

    assert created.status_code == 201
    assert updated.json()["description"] == "Runs a shop alone"
    assert updated.json()["goals"] == "Save time"
    assert clash.status_code == 400
    assert api.delete(f"personas/{persona_id}/").status_code == 204
    assert not Persona.objects.for_workspace(workspace_a).exists()


def test_editors_cannot_change_the_workspace_vocabulary(editor_client, workspace_a):
    response = editor_client.post(
        f"/api/v1/w/{workspace_a.slug}/custom-fields/",
        {"label": "Size"},
        content_type="application/json",
    )

    assert response.status_code == 403


# --- stages -----------------------------------------------------------------------------


def test_stages_are_listed_in_order_created_renamed_and_reordered(api, workspace_a):
    names = [s["name"] for s in api.get("stages/").json()["results"]]
    assert names == ["Awareness", "Consideration", "Decision", "Retention", "Advocacy"]

    created = api.post("stages/", {"name": "Churned"})
    renamed = api.patch(f"stages/{created.json()['id']}/", {"name": "Lapsed"})
    ids = [s["id"] for s in api.get("stages/").json()["results"]]
    reordered = api.post("stages/reorder/", {"order": list(reversed(ids))})
    incomplete = api.post("stages/reorder/", {"order": ids[:2]})

    assert created.status_code == 201
    assert renamed.json()["name"] == "Lapsed"
    assert [s["name"] for s in reordered.json()][:2] == ["Lapsed", "Advocacy"]
    assert incomplete.status_code == 400 and "order" in incomplete.json()
    assert api.post("stages/", {"name": "lapsed"}).status_code == 400


def test_a_stage_in_use_is_deleted_only_with_somewhere_to_move_its_contacts(api, workspace_a):
    decision = stage(workspace_a, "Decision")
    ContactFactory(workspace=workspace_a, lifecycle_stage=decision)

    refused = api.delete(f"stages/{decision.public_id}/")
    moved = api.client.delete(f"/api/v1/stages/{decision.public_id}/?move_to=Retention")

    assert refused.status_code == 400 and "move_to" in refused.json()
    assert moved.status_code == 200 and moved.json() == {"moved": 1}
    assert contacts(workspace_a).get().lifecycle_stage.name == "Retention"
    assert not LifecycleStage.objects.for_workspace(workspace_a).filter(pk=decision.pk).exists()


# --- the schema and its docs page ---------------------------------------------------------


def test_the_openapi_schema_describes_the_rest_and_ingest_apis(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/contacts/" in schema["paths"]
    assert "/api/v1/contacts/bulk/" in schema["paths"]
    assert "/v1/batch" in schema["paths"]
    assert not any(path.startswith("/api/v1/w/") for path in schema["paths"])


def test_the_api_docs_page_loads_without_a_cdn(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in page
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert cdn not in page

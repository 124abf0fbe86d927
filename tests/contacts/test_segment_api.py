"""The segments REST API: CRUD, preview of unsaved rules, members, static list changes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from contacts.models import Segment, SegmentMembership
from contacts.segments import membership
from tests.factories import ApiKeyFactory, ContactFactory, SegmentFactory, TagFactory
from workspaces.pagination import WorkspaceCursorPagination

pytestmark = pytest.mark.django_db

ANN = {
    "type": "group",
    "match": "all",
    "children": [{"type": "field", "field": "first_name", "op": "equals", "value": "Ann"}],
}


@pytest.fixture
def api(workspace_a):
    client = APIClient()
    key = ApiKeyFactory(workspace=workspace_a)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.secret}")
    return client


@pytest.fixture
def anns(workspace_a):
    return [ContactFactory(workspace=workspace_a, first_name="Ann") for _ in range(12)]


def url(*parts):
    return "/api/v1/segments/" + "".join(f"{part}/" for part in parts)


def test_create_read_update_delete(api, workspace_a, anns):
    ContactFactory(workspace=workspace_a, first_name="Bob")
    response = api.post(url(), {"name": "Anns", "rules": ANN}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["member_count"] == 12
    assert body["kind"] == "dynamic"
    assert "first name" in body["summary"].lower()
    segment_id = body["id"]

    listed = api.get(url()).json()["results"]
    assert [s["name"] for s in listed] == ["Anns"]
    assert api.get(url(segment_id)).json()["rules"]["children"][0]["value"] == "Ann"

    bob_rules = {**ANN, "children": [{**ANN["children"][0], "value": "Bob"}]}
    changed = api.patch(url(segment_id), {"name": "Bobs", "rules": bob_rules}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["name"] == "Bobs"
    assert changed.json()["member_count"] == 1

    assert api.delete(url(segment_id)).status_code == 204
    assert not Segment.objects.for_workspace(workspace_a).exists()


def test_bad_rules_answer_400_with_the_path_of_the_condition(api, workspace_a):
    tree = {
        "type": "group",
        "match": "all",
        "children": [
            ANN["children"][0],
            {"type": "field", "field": "first_name", "op": "gt", "value": 3},
        ],
    }
    response = api.post(url(), {"name": "Bad", "rules": tree}, format="json")
    assert response.status_code == 400
    [error] = response.json()["rules"]
    assert error["path"] == "children.1"
    assert "Condition 2" in error["message"]
    assert not Segment.objects.for_workspace(workspace_a).exists()


def test_a_field_name_from_the_request_never_reaches_sql(api):
    tree = {
        "type": "group",
        "match": "all",
        "children": [
            {"type": "field", "field": "email; DROP TABLE x", "op": "equals", "value": "a"}
        ],
    }
    response = api.post(url("preview"), {"rules": tree}, format="json")
    assert response.status_code == 400
    assert response.json()["rules"][0]["path"] == "children.0"


def test_preview_counts_an_unsaved_tree_and_shows_ten(api, workspace_a, anns):
    response = api.post(url("preview"), {"rules": ANN}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 12
    assert len(body["sample"]) == 10
    assert {row["first_name"] for row in body["sample"]} == {"Ann"}
    assert body["summary"]
    assert not Segment.objects.for_workspace(workspace_a).exists()


def test_preview_refuses_an_empty_group(api):
    response = api.post(
        url("preview"), {"rules": {"type": "group", "match": "all", "children": []}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["rules"][0]["path"] == ""


def test_members_come_in_cursor_pages(api, workspace_a, anns, monkeypatch):
    monkeypatch.setattr(WorkspaceCursorPagination, "page_size", 5)
    segment = membership.create_segment(workspace=workspace_a, name="Anns", rules=ANN)
    page = api.get(url(segment.public_id, "members")).json()
    seen = []
    while True:
        seen += [row["contact"]["id"] for row in page["results"]]
        if not page["next"]:
            break
        page = api.get(page["next"]).json()
    assert sorted(seen) == sorted(str(c.public_id) for c in anns)
    assert len(set(seen)) == 12


def test_static_lists_take_ids_and_emails(api, workspace_a):
    ann, bob = ContactFactory.create_batch(2, workspace=workspace_a)
    segment = SegmentFactory(workspace=workspace_a)
    response = api.post(
        url(segment.public_id, "members", "add"),
        {"contacts": [str(ann.public_id), bob.email.upper(), "nobody@example.com"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "changed": 2,
        "member_count": 2,
        "not_found": ["nobody@example.com"],
    }
    response = api.post(
        url(segment.public_id, "members", "remove"), {"contacts": [bob.email]}, format="json"
    )
    assert response.json()["changed"] == 1
    assert response.json()["member_count"] == 1
    current = SegmentMembership.objects.for_workspace(workspace_a).filter(exited_at__isnull=True)
    assert list(current.values_list("contact_id", flat=True)) == [ann.pk]


def test_a_dynamic_segment_refuses_hand_picked_members(api, workspace_a):
    ann = ContactFactory(workspace=workspace_a)
    segment = membership.create_segment(workspace=workspace_a, name="Anns", rules=ANN)
    response = api.post(
        url(segment.public_id, "members", "add"), {"contacts": [ann.email]}, format="json"
    )
    assert response.status_code == 400
    assert "dynamic" in response.json()["detail"][0]


def test_a_segment_in_use_cannot_be_deleted(api, workspace_a):
    base = membership.create_segment(workspace=workspace_a, name="Base", rules=ANN)
    membership.create_segment(
        workspace=workspace_a,
        name="On base",
        rules={
            "type": "group",
            "match": "all",
            "children": [{"type": "segment", "op": "member", "value": str(base.public_id)}],
        },
    )
    response = api.delete(url(base.public_id))
    assert response.status_code == 400
    assert "On base" in response.json()["detail"]


def test_a_loop_through_segments_is_refused(api, workspace_a):
    base = membership.create_segment(workspace=workspace_a, name="Base", rules=ANN)
    on_base = {
        "type": "group",
        "match": "all",
        "children": [{"type": "segment", "op": "member", "value": str(base.public_id)}],
    }
    top = membership.create_segment(workspace=workspace_a, name="Top", rules=on_base)
    loop = {
        "type": "group",
        "match": "all",
        "children": [{"type": "segment", "op": "member", "value": str(top.public_id)}],
    }
    response = api.patch(url(base.public_id), {"rules": loop}, format="json")
    assert response.status_code == 400
    assert "loop" in response.json()["rules"][0]["message"]


def test_another_workspaces_segments_answer_404(api, workspace_b):
    theirs = SegmentFactory(workspace=workspace_b)
    tag = TagFactory(workspace=workspace_b)
    assert api.get(url(theirs.public_id)).status_code == 404
    assert api.get(url(theirs.public_id, "members")).status_code == 404
    response = api.post(url(theirs.public_id, "members", "add"), {"contacts": ["a@b.c"]})
    assert response.status_code == 404
    assert api.delete(url(theirs.public_id)).status_code == 404
    # another workspace's tag in a rule is refused, not matched
    tree = {
        "type": "group",
        "match": "all",
        "children": [{"type": "tag", "op": "has", "value": str(tag.public_id)}],
    }
    response = api.post(url("preview"), {"rules": tree}, format="json")
    assert response.status_code == 400
    assert "does not exist" in response.json()["rules"][0]["message"]


def test_viewers_read_and_cannot_write(viewer_client, workspace_a):
    segment = SegmentFactory(workspace=workspace_a)
    base = f"/api/v1/w/{workspace_a.slug}/segments/"
    assert viewer_client.get(base).status_code == 200
    assert viewer_client.get(f"{base}{segment.public_id}/members/").status_code == 200
    response = viewer_client.post(base, {"name": "Mine"}, content_type="application/json")
    assert response.status_code == 403
    response = viewer_client.post(
        f"{base}{segment.public_id}/members/add/",
        {"contacts": ["a@b.c"]},
        content_type="application/json",
    )
    assert response.status_code == 403

"""Segment pages: the list, the builder (a changed tree comes back with a count, a sample
and a summary), saving, the segment page with members and size chart, static lists, and
who may do what."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse

from contacts.models import Segment, SegmentMembership, SegmentSize
from contacts.segments import membership
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    EventFactory,
    SegmentFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

ANN = {
    "type": "group",
    "match": "all",
    "children": [{"type": "field", "field": "first_name", "op": "equals", "value": "Ann"}],
}


def page(name, workspace, **kwargs):
    return reverse(name, kwargs={"workspace_slug": workspace.slug, **kwargs})


def builder_post(client, workspace, tree, **extra):
    data = {"rules": json.dumps(tree), "name": "", "kind": "dynamic", **extra}
    return client.post(page("segment_builder", workspace), data, headers={"HX-Request": "true"})


def test_the_list_shows_segments_with_their_sizes(owner_client, workspace_a):
    ContactFactory.create_batch(3, workspace=workspace_a, first_name="Ann")
    membership.create_segment(workspace=workspace_a, name="The Anns", rules=ANN)
    SegmentFactory(workspace=workspace_a, name="Hand picked")
    response = owner_client.get(page("segment_list", workspace_a))
    assert response.status_code == 200
    body = response.content.decode()
    assert "The Anns" in body and "Hand picked" in body and "Static list" in body
    assert 'data-testid="member-count">3<' in body
    assert 'href="/w/acme/segments/"' in body  # the sidebar links the section


def test_an_empty_list_explains_the_two_kinds(owner_client, workspace_a):
    response = owner_client.get(page("segment_list", workspace_a))
    assert b"No segments yet" in response.content
    assert b"New static list" in response.content


def test_the_builder_page_renders_with_pickers(owner_client, workspace_a):
    TagFactory(workspace=workspace_a, name="vip")
    CustomFieldFactory(workspace=workspace_a, key="shoe_size", label="Shoe size")
    EventFactory(workspace=workspace_a, name="order_placed")
    response = owner_client.get(page("segment_create", workspace_a))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="builder"' in body
    assert "Add a condition to see who matches." in body
    assert '<option value="order_placed">' in body  # the event-name picker
    assert "+ Add a condition" in body and "+ Add a group" in body


def test_a_changed_tree_comes_back_with_count_sample_and_summary(owner_client, workspace_a):
    ContactFactory(workspace=workspace_a, first_name="Ann", email="ann@example.com")
    ContactFactory(workspace=workspace_a, first_name="Bob")
    data = {"r:children.0:field": "first_name", "r:children.0:op": "equals"}
    data["r:children.0:value"] = "Ann"
    tree = {**ANN, "children": [{**ANN["children"][0], "value": "Bob"}]}
    response = builder_post(owner_client, workspace_a, tree, **data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body  # the partial only
    assert 'data-testid="preview-count">1<' in body
    assert "ann@example.com" in body
    assert 'data-testid="preview-summary"' in body and "Ann" in body
    assert '"value": "Ann"' in body.replace("&quot;", '"')  # the hidden tree follows


def test_builder_buttons_add_and_remove_conditions_and_groups(owner_client, workspace_a):
    tree = {"type": "group", "match": "all", "children": []}
    response = builder_post(
        owner_client, workspace_a, tree, op="add_condition", at="", **{"add:": "tag"}
    )
    body = response.content.decode()
    assert 'data-type="tag"' in body
    tree = {"type": "group", "match": "all", "children": [ANN["children"][0]]}
    response = builder_post(owner_client, workspace_a, tree, op="add_group", at="")
    assert 'id="rule-children-1"' in response.content.decode()
    response = builder_post(owner_client, workspace_a, tree, op="remove", at="children.0")
    assert "No conditions yet." in response.content.decode()


def test_changing_a_conditions_kind_resets_it(owner_client, workspace_a):
    response = builder_post(owner_client, workspace_a, ANN, **{"r:children.0:type": "event"})
    body = response.content.decode()
    assert 'data-type="event"' in body
    assert "did not do" in body


def test_an_invalid_condition_is_marked_where_it_is(owner_client, workspace_a):
    tree = {
        "type": "group",
        "match": "all",
        "children": [
            ANN["children"][0],
            {"type": "event", "name": "", "performed": True},
        ],
    }
    response = builder_post(owner_client, workspace_a, tree)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Condition 2 in group 1" in body
    error_at = body.index('data-testid="rule-error"')
    assert body.rindex('id="rule-children-1"', 0, error_at) > body.rindex(
        'id="rule-children-0"', 0, error_at
    )


def test_every_invalid_condition_is_marked(owner_client, workspace_a):
    bad = {"type": "field", "field": "first_name", "op": "gt", "value": 1}
    tree = {"type": "group", "match": "all", "children": [bad, ANN["children"][0], bad]}
    body = builder_post(owner_client, workspace_a, tree).content.decode()
    assert body.count('data-testid="rule-error"') == 2
    assert "Condition 1 in group 1" in body and "Condition 3 in group 1" in body
    assert "Fix the conditions marked in red" in body


def test_saving_a_segment_and_its_page(owner_client, workspace_a):
    ann = ContactFactory(workspace=workspace_a, first_name="Ann")
    response = owner_client.post(
        page("segment_create", workspace_a),
        {"name": "The Anns", "description": "", "kind": "dynamic", "rules": json.dumps(ANN)},
    )
    segment = Segment.objects.for_workspace(workspace_a).get()
    assert response.status_code == 302
    assert response["Location"] == page("segment_detail", workspace_a, segment_id=segment.public_id)
    SegmentSize.objects.create(
        workspace=workspace_a, segment=segment, day=dt.date(2026, 1, 1), member_count=0
    )
    SegmentSize.objects.create(
        workspace=workspace_a, segment=segment, day=dt.date(2026, 1, 2), member_count=1
    )
    detail = owner_client.get(response["Location"]).content.decode()
    assert ann.email in detail
    assert 'data-testid="size-chart"' in detail and "<polyline" in detail
    assert 'data-testid="segment-summary"' in detail


def test_saving_refuses_bad_rules_and_keeps_the_tree(owner_client, workspace_a):
    tree = {"type": "group", "match": "all", "children": [{"type": "tag", "op": "has"}]}
    response = owner_client.post(
        page("segment_create", workspace_a),
        {"name": "Broken", "kind": "dynamic", "rules": json.dumps(tree)},
    )
    assert response.status_code == 400
    assert b"Condition 1 in group 1" in response.content
    assert not Segment.objects.for_workspace(workspace_a).exists()
    response = owner_client.post(
        page("segment_create", workspace_a), {"name": "", "kind": "dynamic", "rules": "{}"}
    )
    assert response.status_code == 400


def test_editing_the_rules(owner_client, workspace_a):
    bob = ContactFactory(workspace=workspace_a, first_name="Bob")
    segment = membership.create_segment(workspace=workspace_a, name="People", rules=ANN)
    edit = page("segment_edit", workspace_a, segment_id=segment.public_id)
    assert owner_client.get(edit).status_code == 200
    tree = {**ANN, "children": [{**ANN["children"][0], "value": "Bob"}]}
    response = owner_client.post(edit, {"name": "Bobs", "rules": json.dumps(tree)})
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "Bobs" and segment.member_count == 1
    assert SegmentMembership.objects.for_workspace(workspace_a).get().contact == bob


def test_static_lists_add_by_email_and_remove(owner_client, workspace_a):
    ann = ContactFactory(workspace=workspace_a, email="ann@example.com")
    segment = SegmentFactory(workspace=workspace_a, name="Friends")
    add = page("segment_members_add", workspace_a, segment_id=segment.public_id)
    response = owner_client.post(add, {"emails": "ANN@example.com, ghost@example.com"}, follow=True)
    body = response.content.decode()
    assert "1 contact added." in body
    assert "ghost@example.com" in body
    assert ann.email in body
    remove = page(
        "segment_member_remove",
        workspace_a,
        segment_id=segment.public_id,
        contact_id=ann.public_id,
    )
    response = owner_client.post(remove, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.content == b""
    segment.refresh_from_db()
    assert segment.member_count == 0


def test_a_new_static_list_has_no_builder(owner_client, workspace_a):
    response = owner_client.get(page("segment_create", workspace_a) + "?kind=static")
    assert b'id="builder"' not in response.content
    response = owner_client.post(
        page("segment_create", workspace_a), {"name": "VIP guests", "kind": "static"}
    )
    assert response.status_code == 302
    assert Segment.objects.for_workspace(workspace_a).get().kind == "static"


def test_delete_refreshes_and_pages_of_members(owner_client, workspace_a):
    ContactFactory.create_batch(3, workspace=workspace_a, first_name="Ann")
    segment = membership.create_segment(workspace=workspace_a, name="Anns", rules=ANN)
    refresh = page("segment_refresh", workspace_a, segment_id=segment.public_id)
    assert owner_client.post(refresh).status_code == 302
    delete = page("segment_delete", workspace_a, segment_id=segment.public_id)
    assert owner_client.post(delete).status_code == 302
    assert not Segment.objects.for_workspace(workspace_a).exists()


def test_viewers_read_but_do_not_build(viewer_client, workspace_a):
    ContactFactory(workspace=workspace_a, first_name="Ann")
    segment = membership.create_segment(workspace=workspace_a, name="Anns", rules=ANN)
    static = SegmentFactory(workspace=workspace_a)
    assert viewer_client.get(page("segment_list", workspace_a)).status_code == 200
    detail = viewer_client.get(page("segment_detail", workspace_a, segment_id=segment.public_id))
    assert detail.status_code == 200
    assert b"Edit rules" not in detail.content and b"Delete" not in detail.content
    assert viewer_client.get(page("segment_create", workspace_a)).status_code == 403
    assert builder_post(viewer_client, workspace_a, ANN).status_code == 403
    add = page("segment_members_add", workspace_a, segment_id=static.public_id)
    assert viewer_client.post(add, {"emails": "a@example.com"}).status_code == 403
    delete = page("segment_delete", workspace_a, segment_id=segment.public_id)
    assert viewer_client.post(delete).status_code == 403


def test_another_workspaces_segment_answers_404(outsider_client, workspace_a, workspace_b):
    segment = SegmentFactory(workspace=workspace_a)
    theirs = page("segment_detail", workspace_b, segment_id=segment.public_id)
    assert outsider_client.get(theirs).status_code == 404
    response = outsider_client.post(
        page("segment_builder", workspace_b),
        {"rules": json.dumps(ANN), "segment": str(segment.public_id)},
    )
    assert response.status_code == 404

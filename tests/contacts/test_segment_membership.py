"""Segment membership: the full refresh as a diff, incremental updates that only touch the
segments a change can affect, static lists, persona rules and the size history."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from contacts import services
from contacts.models import Contact, Segment, SegmentMembership, SegmentSize
from contacts.segments import membership, tasks
from contacts.segments.rules import RuleError
from tests.factories import (
    ContactFactory,
    EventFactory,
    PersonaFactory,
    SegmentFactory,
    TagFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def group(*children, match="all"):
    return {"type": "group", "match": match, "children": list(children)}


def named(first_name):
    return group({"type": "field", "field": "first_name", "op": "equals", "value": first_name})


def ordered(days=30):
    return group(
        {
            "type": "event",
            "name": "order_placed",
            "performed": True,
            "window": {"kind": "last_days", "days": days},
        }
    )


def tagged(tag):
    return group({"type": "tag", "op": "has", "value": str(tag.public_id)})


def current_ids(workspace, segment):
    return set(
        SegmentMembership.objects.for_workspace(workspace)
        .filter(segment=segment, exited_at__isnull=True)
        .values_list("contact_id", flat=True)
    )


def dynamic(workspace, rules, name="Segment"):
    return membership.create_segment(workspace=workspace, name=name, rules=rules)


def record(workspace, contact, name="order_placed", **kwargs):
    services.record_events(
        workspace=workspace,
        events=[services.EventInput(name=name, contact_id=contact.pk, **kwargs)],
    )


# --- full refresh -------------------------------------------------------------------------


def test_saving_a_segment_fills_it_and_a_refresh_records_who_entered_and_left(workspace_a):
    ann = ContactFactory(workspace=workspace_a, first_name="Ann")
    bob = ContactFactory(workspace=workspace_a, first_name="Bob")
    segment = dynamic(workspace_a, named("Ann"))
    assert current_ids(workspace_a, segment) == {ann.pk}
    assert segment.member_count == 1 and segment.refreshed_at is not None

    Contact.objects.for_workspace(workspace_a).filter(pk=ann.pk).update(first_name="Zoe")
    Contact.objects.for_workspace(workspace_a).filter(pk=bob.pk).update(first_name="Ann")
    entered, exited = membership.refresh_segment(workspace=workspace_a, segment=segment)

    assert (entered, exited) == ([bob.pk], [ann.pk])
    assert current_ids(workspace_a, segment) == {bob.pk}
    left = SegmentMembership.objects.for_workspace(workspace_a).get(contact=ann)
    assert left.exited_at is not None and left.entered_at <= left.exited_at
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_a_refresh_without_changes_moves_nobody_and_a_returning_contact_gets_a_new_stay(
    workspace_a,
):
    ann = ContactFactory(workspace=workspace_a, first_name="Ann")
    segment = dynamic(workspace_a, named("Ann"))
    assert membership.refresh_segment(workspace=workspace_a, segment=segment) == ([], [])

    contacts = Contact.objects.for_workspace(workspace_a).filter(pk=ann.pk)
    contacts.update(first_name="Zoe")
    membership.refresh_segment(workspace=workspace_a, segment=segment)
    contacts.update(first_name="Ann")
    membership.refresh_segment(workspace=workspace_a, segment=segment)

    stays = SegmentMembership.objects.for_workspace(workspace_a).filter(contact=ann)
    assert stays.count() == 2
    assert stays.filter(exited_at__isnull=True).count() == 1


def test_time_windows_move_on_with_the_periodic_refresh(workspace_a):
    ann = ContactFactory(workspace=workspace_a)
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), tick=False):
        EventFactory(workspace=workspace_a, contact=ann, name="order_placed")
        segment = dynamic(workspace_a, ordered(days=7))
        assert current_ids(workspace_a, segment) == {ann.pk}
    with time_machine.travel(dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC), tick=False):
        tasks.refresh_workspace_segments_task(workspace_a.pk)
    assert current_ids(workspace_a, segment) == set()
    sizes = SegmentSize.objects.for_workspace(workspace_a).filter(segment=segment)
    assert list(sizes.values_list("day", "member_count")) == [
        (dt.date(2026, 3, 1), 1),
        (dt.date(2026, 3, 10), 0),
    ]


def test_the_refresh_stays_inside_the_workspace(workspace_a, workspace_b):
    ContactFactory(workspace=workspace_b, first_name="Ann")
    mine = ContactFactory(workspace=workspace_a, first_name="Ann")
    segment = dynamic(workspace_a, named("Ann"))
    assert current_ids(workspace_a, segment) == {mine.pk}


# --- saving -------------------------------------------------------------------------------


def test_bad_rules_are_refused_with_the_condition_they_point_at(workspace_a):
    tree = group(
        named("Ann")["children"][0],
        {"type": "field", "field": "shoe_size", "op": "equals", "value": 1},
    )
    with pytest.raises(RuleError) as caught:
        dynamic(workspace_a, tree)
    assert caught.value.path == "children.1"
    assert "shoe_size" in str(caught.value)
    assert not Segment.objects.for_workspace(workspace_a).exists()


def test_names_kinds_and_rules_are_checked(workspace_a):
    dynamic(workspace_a, named("Ann"), name="Ann's")
    with pytest.raises(ValidationError, match="already a segment"):
        dynamic(workspace_a, named("Bob"), name="ANN'S")
    with pytest.raises(ValidationError, match="needs at least one condition"):
        dynamic(workspace_a, None, name="Empty")
    with pytest.raises(ValidationError, match="static list has members, not rules"):
        membership.create_segment(
            workspace=workspace_a, name="List", kind="static", rules=named("Ann")
        )
    with pytest.raises(ValidationError, match="not a kind"):
        membership.create_segment(workspace=workspace_a, name="Odd", kind="magic")


def test_changing_the_rules_refills_the_segment(workspace_a):
    ann = ContactFactory(workspace=workspace_a, first_name="Ann")
    bob = ContactFactory(workspace=workspace_a, first_name="Bob")
    segment = dynamic(workspace_a, named("Ann"))
    membership.update_segment(workspace=workspace_a, segment=segment, rules=named("Bob"))
    assert current_ids(workspace_a, segment) == {bob.pk}
    assert (
        SegmentMembership.objects.for_workspace(workspace_a).get(contact=ann).exited_at is not None
    )


def test_a_segment_used_by_another_cannot_be_deleted(workspace_a):
    base = dynamic(workspace_a, named("Ann"), name="Base")
    dynamic(
        workspace_a,
        group({"type": "segment", "op": "member", "value": str(base.public_id)}),
        name="Uses base",
    )
    with pytest.raises(ValidationError, match="Uses base"):
        membership.delete_segment(workspace=workspace_a, segment=base)
    assert Segment.objects.for_workspace(workspace_a).count() == 2


# --- incremental --------------------------------------------------------------------------


def test_a_new_event_updates_only_the_segments_that_read_it(
    workspace_a, monkeypatch, django_capture_on_commit_callbacks
):
    ann = ContactFactory(workspace=workspace_a)
    vip = TagFactory(workspace=workspace_a)
    buyers = dynamic(workspace_a, ordered(), name="Buyers")
    viewers = dynamic(
        workspace_a,
        group({"type": "event", "name": "page_viewed", "performed": True}),
        name="Viewers",
    )
    tagged_vip = dynamic(workspace_a, tagged(vip), name="VIP")
    touched = []
    original = membership._refresh_contacts
    monkeypatch.setattr(
        membership,
        "_refresh_contacts",
        lambda ws, segment, *args: touched.append(segment.pk) or original(ws, segment, *args),
    )
    with django_capture_on_commit_callbacks(execute=True):
        record(workspace_a, ann)

    assert touched == [buyers.pk]
    assert current_ids(workspace_a, buyers) == {ann.pk}
    assert current_ids(workspace_a, viewers) == current_ids(workspace_a, tagged_vip) == set()
    buyers.refresh_from_db()
    assert buyers.member_count == 1


def test_an_incremental_update_is_a_handful_of_queries(
    workspace_a, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    ann = ContactFactory(workspace=workspace_a)
    for number in range(5):
        dynamic(workspace_a, named(f"Name {number}"), name=f"By name {number}")
    dynamic(workspace_a, ordered(), name="Buyers")
    with django_assert_max_num_queries(12):
        membership.refresh_for_contacts(
            workspace=workspace_a, contact_ids=[ann.pk], changes={"event:order_placed"}
        )


def test_contact_changes_reach_the_segments_that_read_them(
    workspace_a, django_capture_on_commit_callbacks
):
    ann = ContactFactory(workspace=workspace_a)
    vip = TagFactory(workspace=workspace_a)
    segment = dynamic(workspace_a, tagged(vip))
    with django_capture_on_commit_callbacks(execute=True):
        services.add_tags(workspace=workspace_a, contact_ids=[ann.pk], tags=[vip])
    assert current_ids(workspace_a, segment) == {ann.pk}
    with django_capture_on_commit_callbacks(execute=True):
        services.remove_tags(workspace=workspace_a, contact_ids=[ann.pk], tags=[vip])
    assert current_ids(workspace_a, segment) == set()


def test_a_persona_set_on_the_profile_reaches_persona_segments(
    workspace_a, django_capture_on_commit_callbacks
):
    ann = ContactFactory(workspace=workspace_a)
    hiker = PersonaFactory(workspace=workspace_a)
    segment = dynamic(
        workspace_a, group({"type": "persona", "op": "is", "value": str(hiker.public_id)})
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.update_contact(workspace=workspace_a, contact=ann, data={"persona": hiker})
    assert current_ids(workspace_a, segment) == {ann.pk}


def test_a_new_contact_is_checked_against_every_segment(
    workspace_a, django_capture_on_commit_callbacks
):
    segment = dynamic(workspace_a, named("Ann"))
    with django_capture_on_commit_callbacks(execute=True):
        [result] = services.upsert_contacts(
            workspace=workspace_a,
            rows=[{"email": "ann@example.com", "first_name": "Ann"}],
            source="api",
        )
    assert current_ids(workspace_a, segment) == {result.contact.pk}


def test_moves_in_one_segment_reach_the_segments_built_on_it(
    workspace_a, django_capture_on_commit_callbacks
):
    ann = ContactFactory(workspace=workspace_a)
    buyers = dynamic(workspace_a, ordered(), name="Buyers")
    not_buyers = dynamic(
        workspace_a,
        group({"type": "segment", "op": "not_member", "value": str(buyers.public_id)}),
        name="Not buyers",
    )
    assert current_ids(workspace_a, not_buyers) == {ann.pk}
    with django_capture_on_commit_callbacks(execute=True):
        record(workspace_a, ann)
    assert current_ids(workspace_a, buyers) == {ann.pk}
    assert current_ids(workspace_a, not_buyers) == set()


def test_big_batches_go_to_celery_in_chunks(workspace_a, monkeypatch):
    dynamic(workspace_a, named("Ann"))
    sent = []
    monkeypatch.setattr(tasks.refresh_contacts_task, "delay", lambda *args: sent.append(args))
    ids = list(range(1, 2502))
    membership.on_contacts_changed(
        sender=Contact, workspace_id=workspace_a.pk, contact_ids=ids, changes={"attributes"}
    )
    assert [len(chunk) for _, chunk, _ in sent] == [1000, 1000, 501]
    assert all(changes == ["attributes"] for _, _, changes in sent)


def test_a_workspace_without_rules_costs_one_query_per_change(
    workspace_a, django_assert_num_queries
):
    ann = ContactFactory(workspace=workspace_a)
    SegmentFactory(workspace=workspace_a)  # a static list has no rules to re-check
    with django_assert_num_queries(2):
        membership.on_contacts_changed(
            sender=Contact, workspace_id=workspace_a.pk, contact_ids=[ann.pk], changes={"tags"}
        )


def test_dependencies_of_a_tree():
    tag = "9b7a0c1e-4b5f-4a7e-9a3b-0d5c1e2f3a4b"
    tree = group(
        {"type": "field", "field": "attributes.size", "op": "gt", "value": 3},
        {"type": "field", "field": "last_activity_at", "op": "within_last_days", "value": 3},
        group({"type": "tag", "op": "has", "value": tag}, match="any"),
        {"type": "revenue", "op": "gt", "value": 10},
        {"type": "engagement", "action": "opened", "days": 30},
    )
    assert membership.rule_dependencies(tree) == {
        "attributes",
        "event:*",
        "tags",
        "event:email_opened",
    }
    assert membership.reached_dependencies({"created"}) is None
    assert "fields" in membership.reached_dependencies({"attributes"})


# --- static lists -------------------------------------------------------------------------


def test_static_lists_are_filled_by_hand(workspace_a, workspace_b):
    ann, bob = ContactFactory.create_batch(2, workspace=workspace_a)
    stranger = ContactFactory(workspace=workspace_b)
    segment = SegmentFactory(workspace=workspace_a)

    added = membership.add_to_static(
        workspace=workspace_a, segment=segment, contact_ids=[ann.pk, bob.pk, stranger.pk]
    )
    assert sorted(added) == sorted([ann.pk, bob.pk])
    assert (
        membership.add_to_static(workspace=workspace_a, segment=segment, contact_ids=[ann.pk]) == []
    )
    assert segment.member_count == 2

    removed = membership.remove_from_static(
        workspace=workspace_a, segment=segment, contact_ids=[ann.pk, stranger.pk]
    )
    assert removed == [ann.pk]
    assert current_ids(workspace_a, segment) == {bob.pk}
    segment.refresh_from_db()
    assert segment.member_count == 1
    # a refresh leaves a static list's members alone
    assert membership.refresh_segment(workspace=workspace_a, segment=segment) == ([], [])
    assert current_ids(workspace_a, segment) == {bob.pk}


def test_dynamic_segments_refuse_hand_picked_members(workspace_a):
    ann = ContactFactory(workspace=workspace_a)
    segment = dynamic(workspace_a, named("Nobody"))
    with pytest.raises(ValidationError, match="dynamic segment"):
        membership.add_to_static(workspace=workspace_a, segment=segment, contact_ids=[ann.pk])


# --- personas -----------------------------------------------------------------------------


def test_a_persona_rule_fills_gaps_and_never_replaces_a_persona(
    workspace_a, django_capture_on_commit_callbacks
):
    vip = TagFactory(workspace=workspace_a)
    chosen = PersonaFactory(workspace=workspace_a, name="Chosen by hand")
    ann = ContactFactory(workspace=workspace_a)
    bob = ContactFactory(workspace=workspace_a, persona=chosen)
    cid = ContactFactory(workspace=workspace_a)
    services.add_tags(workspace=workspace_a, contact_ids=[ann.pk, bob.pk], tags=[vip])
    big_spender = PersonaFactory(workspace=workspace_a, name="Big spender")

    membership.set_persona_rule(workspace=workspace_a, persona=big_spender, rule=tagged(vip))

    ann.refresh_from_db(), bob.refresh_from_db(), cid.refresh_from_db()
    assert (ann.persona, bob.persona, cid.persona) == (big_spender, chosen, None)
    with django_capture_on_commit_callbacks(execute=True):
        services.add_tags(workspace=workspace_a, contact_ids=[cid.pk], tags=[vip])
    cid.refresh_from_db()
    assert cid.persona == big_spender


def test_a_persona_rule_is_validated(workspace_a):
    persona = PersonaFactory(workspace=workspace_a)
    with pytest.raises(RuleError):
        membership.set_persona_rule(
            workspace=workspace_a, persona=persona, rule=group({"type": "tag", "op": "has"})
        )


# --- sizes and the periodic task ----------------------------------------------------------


def test_sizes_are_recorded_once_a_day(workspace_a):
    ContactFactory(workspace=workspace_a, first_name="Ann")
    segment = dynamic(workspace_a, named("Ann"))
    now = timezone.now()
    membership.snapshot_sizes(workspace=workspace_a, now=now)
    ContactFactory(workspace=workspace_a, first_name="Ann")
    membership.refresh_segment(workspace=workspace_a, segment=segment)
    membership.snapshot_sizes(workspace=workspace_a, now=now)
    [size] = SegmentSize.objects.for_workspace(workspace_a).filter(segment=segment)
    assert size.member_count == 2


def test_the_periodic_task_refreshes_every_workspace_with_rules(settings, workspace_a):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    other = WorkspaceFactory()
    ann = ContactFactory(workspace=workspace_a, first_name="Ann")
    segment = dynamic(workspace_a, named("Ann"))
    SegmentMembership.objects.for_workspace(workspace_a).delete()
    assert tasks.refresh_all_segments() == 1  # `other` has no segments
    assert current_ids(workspace_a, segment) == {ann.pk}
    assert not SegmentSize.objects.for_workspace(other).exists()

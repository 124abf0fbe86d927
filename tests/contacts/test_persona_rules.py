"""A persona assigned automatically to the members of a segment, from the settings page
and through the API."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import Contact, Persona
from contacts.segments.membership import add_to_static
from tests.factories import ApiKeyFactory, ContactFactory, PersonaFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _vip_list(workspace):
    segment = SegmentFactory(workspace=workspace, name="VIPs")
    vip = ContactFactory(workspace=workspace, email="vip@example.com")
    add_to_static(workspace=workspace, segment=segment, contact_ids=[vip.pk])
    return segment, vip


def test_a_persona_set_to_a_segment_is_given_to_its_members(admin_client_a, workspace_a):
    segment, vip = _vip_list(workspace_a)
    other = ContactFactory(workspace=workspace_a)
    response = admin_client_a.post(
        reverse("audience_persona_create", args=[workspace_a.slug]),
        {"name": "Big spender", "assign_segment": segment.pk},
    )
    assert response.status_code == 302
    persona = Persona.objects.for_workspace(workspace_a).get(name="Big spender")
    contacts = Contact.objects.for_workspace(workspace_a)
    assert contacts.get(pk=vip.pk).persona == persona
    assert contacts.get(pk=other.pk).persona is None
    edit = reverse("audience_persona_edit", args=[workspace_a.slug, persona.public_id])
    page = admin_client_a.get(edit)
    assert page.context["form"].initial["assign_segment"] == segment


def test_a_segment_of_another_workspace_cannot_be_chosen(admin_client_a, workspace_a, workspace_b):
    foreign, _ = _vip_list(workspace_b)
    response = admin_client_a.post(
        reverse("audience_persona_create", args=[workspace_a.slug]),
        {"name": "Sneaky", "assign_segment": foreign.pk},
    )
    assert response.status_code in (400, 422)
    assert "assign_segment" in response.context["form"].errors
    assert not Persona.objects.for_workspace(workspace_a).exists()


def test_the_api_sets_a_rule_and_refuses_a_bad_one(client, workspace_a):
    segment, vip = _vip_list(workspace_a)
    persona = PersonaFactory(workspace=workspace_a)
    auth = {"Authorization": f"Bearer {ApiKeyFactory(workspace=workspace_a).secret}"}
    bad = client.patch(
        f"/api/v1/personas/{persona.public_id}/",
        {"rule": {"type": "group", "match": "all", "children": []}},
        content_type="application/json",
        headers=auth,
    )
    assert bad.status_code == 400
    rule = {
        "type": "group",
        "match": "all",
        "children": [{"type": "segment", "op": "member", "value": str(segment.public_id)}],
    }
    ok = client.patch(
        f"/api/v1/personas/{persona.public_id}/",
        {"rule": rule},
        content_type="application/json",
        headers=auth,
    )
    assert ok.status_code == 200, ok.content
    vip.refresh_from_db()
    assert vip.persona == persona

"""CSV export of contacts: content, formula injection, the list's filters, tenancy."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts import exporting, importing
from contacts.models import Contact
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    LifecycleStageFactory,
    PersonaFactory,
    TagFactory,
)


def export(client, workspace, **params):
    url = reverse("contact_export", kwargs={"workspace_slug": workspace.slug})
    return client.get(url, params)


def rows_of(response):
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def emails_of(response):
    return sorted(row[0] for row in rows_of(response)[1:])


@pytest.fixture
def audience(workspace_a):
    stage = LifecycleStageFactory(workspace=workspace_a, name="Customer")
    persona = PersonaFactory(workspace=workspace_a, name="Busy parent")
    vip = TagFactory(workspace=workspace_a, name="vip")
    fair = TagFactory(workspace=workspace_a, name="fair")
    CustomFieldFactory(workspace=workspace_a, key="plan", label="Plan")
    CustomFieldFactory(workspace=workspace_a, key="vip_since", label="VIP since")
    ann = ContactFactory(
        workspace=workspace_a,
        email="ann@example.com",
        first_name="Ann",
        last_name="Lee",
        phone="+44 20 7946 0000",
        external_id="u-1",
        lifecycle_stage=stage,
        persona=persona,
        attributes={"plan": "pro", "vip_since": "2024-01-01", "shoe": 41},
    )
    ann.tags.set([vip, fair])
    bob = ContactFactory(
        workspace=workspace_a,
        email="bob@example.com",
        first_name="Bob",
        last_name="Ray",
        status="unsubscribed",
    )
    return {"stage": stage, "persona": persona, "vip": vip, "ann": ann, "bob": bob}


def test_the_export_has_every_standard_column_and_custom_field(
    workspace_a, editor_client, audience
):
    response = export(editor_client, workspace_a)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="acme-contacts-')
    header, *rows = rows_of(response)
    assert header == [
        "email",
        "first_name",
        "last_name",
        "external_id",
        "phone",
        "status",
        "stage",
        "persona",
        "tags",
        "created_at",
        "plan",
        "vip_since",
    ]
    by_email = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    ann = by_email["ann@example.com"]
    assert ann["first_name"] == "Ann"
    assert ann["last_name"] == "Lee"
    assert ann["external_id"] == "u-1"
    assert ann["phone"] == "'+44 20 7946 0000"  # a leading + would start a formula
    assert ann["status"] == "subscribed"
    assert ann["stage"] == "Customer"
    assert ann["persona"] == "Busy parent"
    assert ann["tags"] == "fair, vip"
    assert ann["created_at"] == audience["ann"].created_at.isoformat()
    assert (ann["plan"], ann["vip_since"]) == ("pro", "2024-01-01")
    assert by_email["bob@example.com"]["status"] == "unsubscribed"
    assert by_email["bob@example.com"]["plan"] == ""


@pytest.mark.parametrize(
    "dangerous", ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_cells_that_would_run_as_a_formula_are_defused(workspace_a, owner_client, dangerous):
    CustomFieldFactory(workspace=workspace_a, key="note", label="Note")
    ContactFactory(
        workspace=workspace_a,
        email="eve@example.com",
        first_name=dangerous,
        last_name="Safe",
        attributes={"note": dangerous, "score": -5},
    )

    header, row = rows_of(export(owner_client, workspace_a))

    assert row[header.index("first_name")] == "'" + dangerous
    assert row[header.index("note")] == "'" + dangerous
    assert row[header.index("last_name")] == "Safe"


def test_numbers_are_not_mistaken_for_formulas():
    assert exporting.safe_cell(-5) == -5
    assert exporting.safe_cell("-5") == "'-5"
    assert exporting.safe_cell("ann@example.com") == "ann@example.com"


def test_the_list_filters_narrow_the_export(workspace_a, owner_client, audience):
    assert emails_of(export(owner_client, workspace_a, status="unsubscribed")) == [
        "bob@example.com"
    ]
    assert emails_of(export(owner_client, workspace_a, stage=audience["stage"].public_id)) == [
        "ann@example.com"
    ]
    assert emails_of(export(owner_client, workspace_a, persona=audience["persona"].public_id)) == [
        "ann@example.com"
    ]
    assert emails_of(export(owner_client, workspace_a, tag=audience["vip"].public_id)) == [
        "ann@example.com"
    ]
    assert emails_of(export(owner_client, workspace_a, q="RAY")) == ["bob@example.com"]
    assert emails_of(export(owner_client, workspace_a, q="bob", status="subscribed")) == []
    assert emails_of(export(owner_client, workspace_a)) == ["ann@example.com", "bob@example.com"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "happy"}, "status: “happy” is not a status"),
        ({"stage": "not-a-uuid"}, "stage: “not-a-uuid” is not a stage id."),
        ({"tag": "12"}, "tag: “12” is not a tag id."),
    ],
)
def test_a_malformed_filter_is_an_error_not_everyone(workspace_a, owner_client, params, message):
    response = export(owner_client, workspace_a, **params)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_only_this_workspaces_contacts_are_exported(
    workspace_a, workspace_b, owner_client, audience
):
    theirs = ContactFactory(workspace=workspace_b, email="theirs@example.com")
    their_stage = LifecycleStageFactory(workspace=workspace_b, name="Theirs")
    theirs.lifecycle_stage = their_stage
    theirs.save()

    assert "theirs@example.com" not in emails_of(export(owner_client, workspace_a))
    assert emails_of(export(owner_client, workspace_a, stage=their_stage.public_id)) == []


def test_an_outsider_gets_404(workspace_a, outsider_client, audience):
    assert export(outsider_client, workspace_a).status_code == 404


def test_an_export_imports_back_unchanged(
    workspace_a,
    workspace_b,
    owner_client,
    audience,
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    body = b"".join(export(owner_client, workspace_a).streaming_content)

    job = importing.create_import_job(
        workspace=workspace_b, upload=SimpleUploadedFile("export.csv", body)
    )
    assert job.encoding == "utf-8-sig"
    assert job.mapping["stage"] == job.mapping["persona"] == job.mapping["created_at"] == ""
    importing.set_options(
        workspace=workspace_b, job=job, existing="update", consent_basis="Imported from Acme"
    )
    with django_capture_on_commit_callbacks(execute=True):
        importing.start_import(workspace=workspace_b, job=job)

    copied = Contact.objects.for_workspace(workspace_b).get(email="ann@example.com")
    assert (copied.first_name, copied.last_name, copied.external_id) == ("Ann", "Lee", "u-1")
    assert copied.phone == "+44 20 7946 0000"
    assert copied.attributes["plan"] == "pro"
    assert sorted(copied.tags.values_list("name", flat=True)) == ["fair", "vip"]
    bob = Contact.objects.for_workspace(workspace_b).get(email="bob@example.com")
    assert bob.status == "unsubscribed"


def test_viewers_cannot_download_the_audience(workspace_a, viewer_client, audience):
    assert export(viewer_client, workspace_a).status_code == 403


def test_a_segment_exports_its_current_members_only(workspace_a, workspace_b, editor_client):
    from contacts.segments.membership import add_to_static, remove_from_static
    from tests.factories import ContactFactory, SegmentFactory

    segment = SegmentFactory(workspace=workspace_a, name="Wholesale")
    stays, leaves = (ContactFactory(workspace=workspace_a) for _ in range(2))
    ContactFactory(workspace=workspace_a, email="outside@example.com")
    add_to_static(workspace=workspace_a, segment=segment, contact_ids=[stays.pk, leaves.pk])
    remove_from_static(workspace=workspace_a, segment=segment, contact_ids=[leaves.pk])
    response = export(editor_client, workspace_a, segment=str(segment.public_id))
    emails = [row[0] for row in rows_of(response)[1:]]
    assert emails == [stays.email]
    foreign = SegmentFactory(workspace=workspace_b)
    response = export(editor_client, workspace_a, segment=str(foreign.public_id))
    assert rows_of(response)[1:] == []  # another workspace's segment matches nobody here
    assert export(editor_client, workspace_a, segment="nope").status_code == 400

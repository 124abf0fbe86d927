"""The suppression list: the services (suppress, unsuppress, is_suppressed, bulk) and the
page (check, add, remove, CSV import), with roles and tenancy."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts import services
from contacts.models import (
    ConsentRecord,
    Contact,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    email_hash,
)
from tests.factories import ContactFactory


def entries(workspace):
    return Suppression.objects.for_workspace(workspace)


def page(workspace, suffix=""):
    return f"/w/{workspace.slug}/suppressions/{suffix}"


def csv_file(text: str, name="addresses.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


# --- services --------------------------------------------------------------------------------


def test_suppress_keeps_only_a_hash_and_is_found_again(workspace_a):
    services.suppress(workspace=workspace_a, email=" Pat@Example.com ", reason="manual")

    entry = entries(workspace_a).get()
    assert entry.email_hash == email_hash("pat@example.com")
    assert "pat" not in entry.email_hash
    assert services.is_suppressed(workspace=workspace_a, email="PAT@example.com")
    assert not services.is_suppressed(workspace=workspace_a, email="other@example.com")


def test_a_suppression_belongs_to_one_workspace(workspace_a, workspace_b):
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="bounced")

    assert not services.is_suppressed(workspace=workspace_b, email="pat@example.com")


def test_a_hard_bounce_marks_the_contact_bounced_with_a_record(workspace_a):
    contact = ContactFactory(workspace=workspace_a, email="pat@example.com")

    services.suppress(
        workspace=workspace_a,
        email="pat@example.com",
        reason="bounced",
        source="Hard bounce reported by Postmark",
    )

    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.BOUNCED
    record = ConsentRecord.objects.for_workspace(workspace_a).get(contact=contact)
    assert record.source == "Hard bounce reported by Postmark"


def test_a_bounce_does_not_overwrite_a_complaint(workspace_a):
    contact = ContactFactory(workspace=workspace_a, email="pat@example.com")
    services.suppress(workspace=workspace_a, email=contact.email, reason="complained")
    services.suppress(workspace=workspace_a, email=contact.email, reason="bounced")

    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.COMPLAINED
    assert entries(workspace_a).get().reason == "complained"


def test_a_stronger_reason_replaces_a_manual_entry(workspace_a):
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="manual")
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="bounced")
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="manual")

    assert entries(workspace_a).get().reason == "bounced"


def test_a_manual_suppression_leaves_the_contact_as_it_is(workspace_a):
    contact = ContactFactory(workspace=workspace_a, email="pat@example.com")
    services.suppress(workspace=workspace_a, email=contact.email, reason="manual")

    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.SUBSCRIBED


@pytest.mark.parametrize("bad", ["", "not an address", "a@", "x" * 260 + "@example.com"])
def test_a_bad_address_is_refused_and_nothing_is_written(workspace_a, bad):
    with pytest.raises(ValidationError):
        services.suppress(workspace=workspace_a, email=bad, reason="manual")
    assert not entries(workspace_a).exists()


def test_unsuppress_takes_the_address_off(workspace_a):
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="bounced")

    assert services.unsuppress(workspace=workspace_a, email="PAT@example.com") is True
    assert services.unsuppress(workspace=workspace_a, email="pat@example.com") is False
    assert not services.is_suppressed(workspace=workspace_a, email="pat@example.com")


def test_suppress_many_counts_new_and_known(workspace_a):
    services.suppress(workspace=workspace_a, email="a@example.com", reason="bounced")

    added, already = services.suppress_many(
        workspace=workspace_a, emails=["a@example.com", "b@example.com", "b@example.com"]
    )

    assert (added, already) == (1, 1)
    assert entries(workspace_a).count() == 2
    assert entries(workspace_a).get(email_hash=email_hash("a@example.com")).reason == "bounced"


# --- the page: reading and checking ------------------------------------------------------------


def test_viewers_see_the_list_as_hashes(viewer_client, workspace_a):
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="complained")

    response = viewer_client.get(page(workspace_a))

    body = response.content.decode()
    assert response.status_code == 200
    assert email_hash("pat@example.com")[:12] in body
    assert "pat@example.com" not in body
    assert "Spam complaint" in body
    assert 'data-testid="hash-note"' in body
    assert 'data-testid="add-form"' not in body  # viewers do not get the write forms


def test_the_list_filters_by_reason(viewer_client, workspace_a):
    services.suppress(workspace=workspace_a, email="a@example.com", reason="bounced")
    services.suppress(workspace=workspace_a, email="b@example.com", reason="manual")

    body = viewer_client.get(page(workspace_a) + "?reason=manual").content.decode()

    assert email_hash("b@example.com")[:12] in body
    assert email_hash("a@example.com")[:12] not in body


def test_the_list_page_query_count_does_not_grow(
    viewer_client, workspace_a, django_assert_num_queries
):
    services.suppress_many(workspace=workspace_a, emails=[f"p{i}@example.com" for i in range(80)])
    # session, user, workspace, role, count, one page of entries, the workspace switcher
    with django_assert_num_queries(7):
        response = viewer_client.get(page(workspace_a))
    assert response.content.decode().count("SHA-256 of the address") == 50


def test_anyone_in_the_workspace_can_check_an_address(viewer_client, workspace_a):
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="bounced")

    hit = viewer_client.post(page(workspace_a, "check/"), {"check-email": "Pat@example.com"})
    miss = viewer_client.post(page(workspace_a, "check/"), {"check-email": "sam@example.com"})

    assert hit.status_code == 200
    assert 'data-suppressed="true"' in hit.content.decode()
    assert "Hard bounce" in hit.content.decode()
    assert 'data-suppressed="false"' in miss.content.decode()


def test_checking_as_an_htmx_swap_answers_the_fragment(viewer_client, workspace_a):
    response = viewer_client.post(
        page(workspace_a, "check/"), {"check-email": "nope"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 422
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="suppression-check">')
    assert "field-error" in body


# --- the page: writing -------------------------------------------------------------------------


def test_an_admin_adds_an_address_by_hand(admin_client_a, workspace_a):
    response = admin_client_a.post(page(workspace_a), {"add-email": "Pat@Example.com"})

    assert response.status_code == 302
    assert entries(workspace_a).get().reason == SuppressionReason.MANUAL
    assert services.is_suppressed(workspace=workspace_a, email="pat@example.com")


def test_adding_a_bad_address_shows_an_error_and_writes_nothing(admin_client_a, workspace_a):
    response = admin_client_a.post(page(workspace_a), {"add-email": "pat at example"})

    assert response.status_code == 400
    assert 'data-testid="add-error"' in response.content.decode()
    assert not entries(workspace_a).exists()


def test_an_admin_removes_an_address(admin_client_a, workspace_a):
    services.suppress(workspace=workspace_a, email="pat@example.com", reason="manual")

    response = admin_client_a.post(
        page(workspace_a, "remove/"), {"remove-email": "pat@example.com"}
    )

    assert response.status_code == 302
    assert not entries(workspace_a).exists()


def test_removing_an_address_not_on_the_list_says_so(admin_client_a, workspace_a):
    response = admin_client_a.post(page(workspace_a, "remove/"), {"remove-email": "x@example.com"})

    assert response.status_code == 400
    assert "not on the suppression list" in response.content.decode()


@pytest.mark.parametrize(
    ("suffix", "data"),
    [
        ("", {"add-email": "pat@example.com"}),
        ("remove/", {"remove-email": "pat@example.com"}),
        ("import/", {"file": "x"}),
    ],
)
@pytest.mark.parametrize("who", ["viewer_client", "editor_client"])
def test_viewers_and_editors_cannot_write(request, workspace_a, suffix, data, who):
    client = request.getfixturevalue(who)
    services.suppress(workspace=workspace_a, email="other@example.com", reason="manual")
    if suffix == "import/":
        data = {"file": csv_file("pat@example.com\n")}

    response = client.post(page(workspace_a, suffix), data)

    assert response.status_code == 403
    assert entries(workspace_a).count() == 1


@pytest.mark.parametrize("suffix", ["", "check/", "remove/", "import/"])
def test_outsiders_get_404(outsider_client, workspace_a, suffix):
    assert outsider_client.get(page(workspace_a, suffix)).status_code == 404
    assert outsider_client.post(page(workspace_a, suffix), {}).status_code == 404


# --- CSV import --------------------------------------------------------------------------------


def test_a_csv_import_adds_the_good_rows_and_reports_the_bad(admin_client_a, workspace_a):
    services.suppress(workspace=workspace_a, email="known@example.com", reason="bounced")
    text = (
        "email\n"
        "ann@example.com\n"
        "not-an-address\n"
        "\n"
        "BOB@example.com\n"
        "known@example.com\n"
        "carol@\n"
        "ann@example.com\n"
    )

    response = admin_client_a.post(page(workspace_a, "import/"), {"file": csv_file(text)})

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.rows, report.added, report.already, report.problem_count) == (6, 2, 1, 2)
    assert [(line, value) for line, value, _ in report.problems] == [
        (3, "not-an-address"),
        (7, "carol@"),
    ]
    body = response.content.decode()
    assert 'data-testid="import-problems"' in body
    assert "not-an-address" in body
    for address in ("ann@example.com", "bob@example.com", "known@example.com"):
        assert services.is_suppressed(workspace=workspace_a, email=address)
    assert entries(workspace_a).count() == 3


def test_a_csv_with_an_email_column_among_others(admin_client_a, workspace_a):
    text = "name;Email;note\nAnn;ann@example.com;x\nBob;;y\n"

    response = admin_client_a.post(page(workspace_a, "import/"), {"file": csv_file(text)})

    report = response.context["report"]
    assert (report.added, report.problem_count) == (1, 1)
    assert report.problems[0][0] == 3


def test_a_file_without_a_header_starts_at_line_one(admin_client_a, workspace_a):
    response = admin_client_a.post(
        page(workspace_a, "import/"), {"file": csv_file("ann@example.com\nbob@example.com\n")}
    )

    assert response.context["report"].added == 2


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (None, "This field is required"),
        (SimpleUploadedFile("x.csv", b"\x00\x01\x02binary", content_type="text/csv"), "not a CSV"),
    ],
)
def test_an_unreadable_file_is_refused_and_writes_nothing(
    admin_client_a, workspace_a, upload, error
):
    data = {"file": upload} if upload else {}

    response = admin_client_a.post(page(workspace_a, "import/"), data)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not entries(workspace_a).exists()


def test_a_suppressed_contact_keeps_existing(workspace_a):
    """Suppression stops mail; it does not delete the contact or its history."""
    contact = ContactFactory(workspace=workspace_a, email="pat@example.com")
    services.suppress(workspace=workspace_a, email=contact.email, reason="bounced")

    assert Contact.objects.for_workspace(workspace_a).filter(pk=contact.pk).exists()

"""CSV import: reading the file, auto-mapping the exports of other tools, bad input reported
per row, consent, update or skip, resuming, and the pages around it."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts import importing
from contacts.models import (
    ConsentRecord,
    Contact,
    ImportJob,
    ImportStatus,
    StageChange,
    SubscriptionStatus,
    Tag,
)
from contacts.services import erase_contact
from contacts.tasks import run_import
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    ImportJobFactory,
    LifecycleStageFactory,
    PersonaFactory,
)

WEBSITE = "They signed up on our website or in our shop"


@pytest.fixture(autouse=True)
def _media_and_eager_tasks(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.CELERY_TASK_ALWAYS_EAGER = True


def upload(workspace, content, name="contacts.csv", encoding="utf-8"):
    data = content.encode(encoding) if isinstance(content, str) else content
    return importing.create_import_job(
        workspace=workspace, upload=SimpleUploadedFile(name, data, content_type="text/csv")
    )


def run(workspace, job, capture, *, consent=WEBSITE, existing="update", **options):
    importing.set_mapping(workspace=workspace, job=job, mapping=job.mapping)
    importing.set_options(
        workspace=workspace, job=job, existing=existing, consent_basis=consent, **options
    )
    with capture(execute=True):
        importing.start_import(workspace=workspace, job=job)
    job.refresh_from_db()
    return job


def contacts(workspace):
    return Contact.objects.for_workspace(workspace)


def rejected_rows(job):
    with job.rejects_file.open("rb") as handle:
        text = handle.read().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


# --- auto-mapping --------------------------------------------------------------------------

MAILCHIMP = (
    "Email Address,First Name,Last Name,Address,Phone Number,MEMBER_RATING,OPTIN_TIME,"
    "OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,"
    "LAST_CHANGED,LEID,EUID,NOTES,TAGS\n"
    "ann@example.com,Ann,Lee,,+44 20 7946 0000,4,2023-01-05 10:00:00,1.2.3.4,"
    "2023-01-05 10:01:00,1.2.3.4,51.5,-0.1,0,0,Europe/London,GB,ENG,"
    '2024-02-01 09:00:00,123,abc,,"""Customer"",""VIP"""\n'
    "bob@example.com,Bob,Ray,,,2,2023-03-01 08:00:00,,,,,,,,,,,2024-02-01,124,abd,,\n"
)


def test_a_mailchimp_export_is_mapped_to_contact_fields(
    workspace_a, django_capture_on_commit_callbacks
):
    job = upload(workspace_a, MAILCHIMP)

    assert importing.detect_source(job.headers) == "mailchimp"
    assert job.mapping["Email Address"] == "email"
    assert job.mapping["First Name"] == "first_name"
    assert job.mapping["Last Name"] == "last_name"
    assert job.mapping["Phone Number"] == "phone"
    assert job.mapping["MEMBER_RATING"] == "attr:member_rating"
    assert job.mapping["OPTIN_TIME"] == "attr:optin_time"
    assert job.mapping["TIMEZONE"] == "timezone"
    assert job.mapping["TAGS"] == "tags"
    assert job.mapping["LEID"] == job.mapping["LATITUDE"] == ""

    job = run(workspace_a, job, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE
    assert job.created_count == 2
    ann = contacts(workspace_a).get(email="ann@example.com")
    assert (ann.first_name, ann.last_name, ann.timezone) == ("Ann", "Lee", "Europe/London")
    assert ann.attributes["member_rating"] == "4"
    assert ann.attributes["optin_time"] == "2023-01-05 10:00:00"
    assert sorted(ann.tags.values_list("name", flat=True)) == ["Customer", "VIP"]


def test_a_mailchimp_unsubscribed_export_never_subscribes(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    job = upload(
        workspace_a,
        "Email Address,First Name,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,LEID\n"
        "gone@example.com,Gil,2024-01-01 10:00:00,Spring sale,9\n",
    )
    assert job.mapping["UNSUB_TIME"] == "unsubscribed_when_set"

    run(workspace_a, job, django_capture_on_commit_callbacks)

    gone = contacts(workspace_a).get(email="gone@example.com")
    assert gone.status == SubscriptionStatus.UNSUBSCRIBED
    assert not gone.consents.filter(kind="opt_in").exists()


def test_a_mautic_export_is_mapped(workspace_a, django_capture_on_commit_callbacks):
    job = upload(
        workspace_a,
        "id,title,firstname,lastname,company,email,mobile,phone,points,city,country,"
        "preferred_locale,timezone,last_active,date_added,stage,tags\n"
        "17,Ms,Cleo,Park,Acme,cleo@example.com,+33 6,+33 1,40,Lyon,France,fr_FR,"
        "Europe/Paris,2024-01-02,2023-01-01,Lead,newsletter\n",
    )

    assert importing.detect_source(job.headers) == "mautic"
    assert job.mapping["firstname"] == "first_name"
    assert job.mapping["lastname"] == "last_name"
    assert job.mapping["email"] == "email"
    assert job.mapping["preferred_locale"] == "locale"
    assert job.mapping["id"] == "attr:mautic_id"
    assert job.mapping["company"] == "attr:company"
    assert job.mapping["date_added"] == ""

    run(workspace_a, job, django_capture_on_commit_callbacks)

    cleo = contacts(workspace_a).get(email="cleo@example.com")
    assert (cleo.first_name, cleo.last_name, cleo.locale) == ("Cleo", "Park", "fr_FR")
    assert cleo.phone == "+33 1"
    assert cleo.attributes["company"] == "Acme"
    assert cleo.attributes["points"] == "40"
    assert list(cleo.tags.values_list("name", flat=True)) == ["newsletter"]


def test_a_listmonk_export_is_mapped(workspace_a, django_capture_on_commit_callbacks, write_path):
    job = upload(
        workspace_a,
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'a1,dee@example.com,Dee Van Dyke,"{""city"": ""Oslo"", ""plan"": ""pro""}",enabled,'
        "2023-01-01,2023-01-02\n"
        'a2,eve@example.com,Eve,"{}",blocklisted,2023-01-01,2023-01-02\n'
        "a3,fay@example.com,Fay,{not json,enabled,2023-01-01,2023-01-02\n",
    )

    assert importing.detect_source(job.headers) == "listmonk"
    assert job.mapping == {
        "uuid": "attr:listmonk_uuid",
        "email": "email",
        "name": "full_name",
        "attributes": "attributes_json",
        "status": "status",
        "created_at": "",
        "updated_at": "",
    }

    job = run(workspace_a, job, django_capture_on_commit_callbacks)

    dee = contacts(workspace_a).get(email="dee@example.com")
    assert (dee.first_name, dee.last_name) == ("Dee", "Van Dyke")
    assert dee.attributes == {"city": "Oslo", "plan": "pro", "listmonk_uuid": "a1"}
    assert dee.status == SubscriptionStatus.SUBSCRIBED
    eve = contacts(workspace_a).get(email="eve@example.com")
    assert eve.status == SubscriptionStatus.UNSUBSCRIBED
    assert not eve.consents.filter(kind="opt_in").exists()
    assert job.rejected_count == 1
    assert "attributes (column “attributes”): not valid JSON" in rejected_rows(job)[1][-1]


def test_a_plain_file_is_mapped(workspace_a):
    job = upload(workspace_a, "email,first_name,last_name\nann@example.com,Ann,Lee\n")

    assert importing.detect_source(job.headers) == "plain"
    assert job.mapping == {"email": "email", "first_name": "first_name", "last_name": "last_name"}


def test_custom_fields_are_matched_by_key_or_label(workspace_a):
    CustomFieldFactory(workspace=workspace_a, key="plan", label="Plan")
    CustomFieldFactory(workspace=workspace_a, key="signup_date", label="Signed up on")

    job = upload(
        workspace_a, "E-mail,Plan,Signed up on,Shoe size\nann@example.com,pro,2024-01-01,41\n"
    )

    assert job.mapping == {
        "E-mail": "email",
        "Plan": "attr:plan",
        "Signed up on": "attr:signup_date",
        "Shoe size": "attr:shoe_size",
    }


# --- reading the file ----------------------------------------------------------------------


def test_a_windows_1252_file_is_read(workspace_a, django_capture_on_commit_callbacks):
    job = upload(workspace_a, "email;first_name\njose@example.com;José Müller\n", encoding="cp1252")

    assert (job.encoding, job.delimiter) == ("windows-1252", ";")
    run(workspace_a, job, django_capture_on_commit_callbacks)
    assert contacts(workspace_a).get(email="jose@example.com").first_name == "José Müller"


def test_a_windows_1252_byte_far_down_the_file_is_found(workspace_a):
    rows = "".join(f"person{n}@example.com,Plain\n" for n in range(4000))
    job = upload(workspace_a, f"email,first_name\n{rows}zoe@example.com,Zoë\n", encoding="cp1252")

    assert job.encoding == "windows-1252"


@pytest.mark.parametrize(
    ("prefix", "encoding", "expected"),
    [(codecs.BOM_UTF8, "utf-8", "utf-8-sig"), (b"", "utf-16", "utf-16"), (b"", "utf-8", "utf-8")],
)
def test_utf8_with_or_without_bom_and_utf16_are_read(
    workspace_a, django_capture_on_commit_callbacks, prefix, encoding, expected
):
    text = "email\tfirst_name\nanna@example.com\tÅsa 日本\n"
    job = upload(workspace_a, prefix + text.encode(encoding))

    assert (job.encoding, job.delimiter, job.headers) == (expected, "\t", ["email", "first_name"])
    run(workspace_a, job, django_capture_on_commit_callbacks)
    assert contacts(workspace_a).get(email="anna@example.com").first_name == "Åsa 日本"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"email,name\nann@example.com,\x81\x8d\x90\n", "Line 2 holds bytes that are not text"),
        (b"PK\x03\x04\x14\x00\x06\x00binary", "spreadsheet workbook"),
        (b"\x00\x01\x02\x03\xff\x00\x10" * 20, "binary data"),
        (b"", "The file is empty."),
        (b"ann@example.com,Ann,Lee\nbob@example.com,Bob,Ray\n", "not column names"),
        (b"email,first_name\n", "no contacts below it"),
    ],
)
def test_a_file_that_cannot_be_imported_says_why(workspace_a, content, message):
    with pytest.raises(ValidationError) as caught:
        upload(workspace_a, content)

    assert message in " ".join(caught.value.message_dict["file"])
    assert not ImportJob.objects.for_workspace(workspace_a).exists()


def test_a_file_without_an_email_column_cannot_be_mapped(workspace_a):
    job = upload(workspace_a, "first_name,last_name\nAnn,Lee\n")

    with pytest.raises(ValidationError) as caught:
        importing.set_mapping(workspace=workspace_a, job=job, mapping=job.mapping)

    assert "the column that holds the email addresses" in caught.value.message_dict["__all__"][0]


def test_two_columns_cannot_fill_one_field(workspace_a):
    job = upload(workspace_a, "email,mail,first_name\na@example.com,b@example.com,Ann\n")

    with pytest.raises(ValidationError) as caught:
        importing.set_mapping(
            workspace=workspace_a, job=job, mapping={"email": "email", "mail": "email"}
        )

    assert caught.value.message_dict == {"mail": ["“email” already goes into this field."]}


def test_an_unclosed_quote_stops_the_import_before_anything_is_written(
    workspace_a, django_capture_on_commit_callbacks
):
    job = upload(workspace_a, 'email,first_name\nann@example.com,Ann\nbob@example.com,"Bob\n')

    job = run(workspace_a, job, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.FAILED
    assert "not valid CSV" in job.error
    assert not contacts(workspace_a).exists()


# --- rows that cannot be imported ----------------------------------------------------------


def test_bad_rows_are_rejected_one_by_one_with_the_reason(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    CustomFieldFactory(workspace=workspace_a, key="age", label="Age", field_type="number")
    job = upload(
        workspace_a,
        "Email Address,First Name,Age\n"
        "ann@example.com,Ann,41\n"
        "not-an-email,Bob,30\n"
        ",Cid,20\n"
        "dan@example.com,Dan,forty\n"
        "eve@example.com,Eve,22,surplus\n"
        "fay@example.com\n",
    )

    job = run(workspace_a, job, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE
    assert (job.total_rows, job.processed_rows, job.created_count, job.rejected_count) == (
        6,
        6,
        1,
        5,
    )
    assert list(contacts(workspace_a).values_list("email", flat=True)) == ["ann@example.com"]
    header, *rows = rejected_rows(job)
    assert header == ["Email Address", "First Name", "Age", "reason"]
    reasons = {row[0]: row[3] for row in rows}
    assert reasons["not-an-email"] == (
        "email (column “Email Address”): Enter a valid email address."
    )
    assert reasons[""] == "email (column “Email Address”): An email address is required."
    assert reasons["dan@example.com"] == "age (column “Age”): “forty” is not a number."
    assert reasons["eve@example.com"].startswith("row: has 4 cells but the header row has 3")
    assert rows[3] == ["eve@example.com", "Eve", "22", reasons["eve@example.com"], "surplus"]
    assert reasons["fay@example.com"].startswith("row: has 1 cells but the header row has 3")


def test_erased_addresses_are_not_imported_again(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    erase_contact(
        workspace=workspace_a,
        contact=ContactFactory(workspace=workspace_a, email="gone@example.com"),
    )
    job = upload(workspace_a, "email\nGone@Example.com\nnew@example.com\n")

    job = run(workspace_a, job, django_capture_on_commit_callbacks)

    assert list(contacts(workspace_a).values_list("email", flat=True)) == ["new@example.com"]
    assert job.rejected_count == 1
    assert rejected_rows(job)[1] == [
        "Gone@Example.com",
        "email: This address was erased and is suppressed.",
    ]


# --- options: existing contacts, consent, tags, stage, persona -----------------------------


@pytest.mark.parametrize("existing", ["update", "skip"])
def test_known_contacts_are_updated_or_skipped(
    workspace_a, django_capture_on_commit_callbacks, write_path, existing
):
    known = ContactFactory(
        workspace=workspace_a,
        email="ann@example.com",
        first_name="Annie",
        last_name="Old",
        attributes={"plan": "free", "city": "Leeds"},
    )
    job = upload(
        workspace_a,
        "email,first_name,last_name,plan\nANN@example.com,Ann,,pro\nbob@example.com,Bob,Ray,\n",
    )

    job = run(workspace_a, job, django_capture_on_commit_callbacks, existing=existing)

    known.refresh_from_db()
    assert contacts(workspace_a).count() == 2
    if existing == "update":
        assert (job.created_count, job.updated_count, job.skipped_count) == (1, 1, 0)
        assert (known.first_name, known.last_name) == ("Ann", "Old")  # empty cells keep data
        assert known.attributes == {"plan": "pro", "city": "Leeds"}
    else:
        assert (job.created_count, job.updated_count, job.skipped_count) == (1, 0, 1)
        assert (known.first_name, known.attributes["plan"]) == ("Annie", "free")


def test_the_stated_consent_is_recorded_for_every_new_contact(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    known = ContactFactory(workspace=workspace_a, email="known@example.com")
    job = upload(workspace_a, "email\nann@example.com\nbob@example.com\nknown@example.com\n")

    job = run(workspace_a, job, django_capture_on_commit_callbacks)

    records = ConsentRecord.objects.for_workspace(workspace_a)
    assert sorted(records.values_list("contact__email", flat=True)) == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert {(r.kind, r.method, r.text_shown) for r in records} == {("opt_in", "import", WEBSITE)}
    assert all(job.filename in r.source for r in records)
    assert set(contacts(workspace_a).exclude(pk=known.pk).values_list("status", flat=True)) == {
        SubscriptionStatus.SUBSCRIBED
    }
    assert set(contacts(workspace_a).values_list("source", flat=True)) >= {"import"}


def test_without_a_consent_basis_nobody_is_subscribed(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    job = upload(workspace_a, "email\nann@example.com\nbob@example.com\n")

    job = run(workspace_a, job, django_capture_on_commit_callbacks, consent="")

    assert job.subscribe is False
    assert set(contacts(workspace_a).values_list("status", flat=True)) == {
        SubscriptionStatus.UNSUBSCRIBED
    }
    assert not ConsentRecord.objects.for_workspace(workspace_a).exists()


def test_tags_stage_and_persona_are_applied(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    stage = LifecycleStageFactory(workspace=workspace_a, name="Customer")
    earlier = LifecycleStageFactory(workspace=workspace_a, name="Lead")
    persona = PersonaFactory(workspace=workspace_a, name="Busy parent")
    ContactFactory(workspace=workspace_a, email="known@example.com", lifecycle_stage=earlier)
    job = upload(workspace_a, "email,tags\nann@example.com,vip\nknown@example.com,\n")

    run(
        workspace_a,
        job,
        django_capture_on_commit_callbacks,
        tag_names=["Spring fair"],
        stage=stage,
        persona=persona,
    )

    for contact in contacts(workspace_a):
        assert contact.lifecycle_stage == stage
        assert contact.persona == persona
        assert "Spring fair" in contact.tags.values_list("name", flat=True)
    ann = contacts(workspace_a).get(email="ann@example.com")
    assert sorted(ann.tags.values_list("name", flat=True)) == ["Spring fair", "vip"]
    changes = StageChange.objects.for_workspace(workspace_a)
    assert sorted((c.contact.email, c.from_name, c.to_name) for c in changes) == [
        ("ann@example.com", "", "Customer"),
        ("known@example.com", "Lead", "Customer"),
    ]
    assert {c.source for c in changes} == {"import"}


def test_a_repeated_address_in_the_file_is_imported_once(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    job = upload(workspace_a, "email,first_name\nann@example.com,First\nann@example.com,Second\n")

    job = run(workspace_a, job, django_capture_on_commit_callbacks)

    assert contacts(workspace_a).get().first_name == "Second"
    assert (job.created_count, job.skipped_count) == (1, 1)


# --- running again, resuming ---------------------------------------------------------------


def _many_rows(count):
    rows = "".join(f"p{n}@example.com,P{n}\n" for n in range(count))
    return f"email,first_name\n{rows}bad-address,Bad\n"


def test_running_a_finished_job_again_changes_nothing(
    workspace_a, django_capture_on_commit_callbacks
):
    job = run(workspace_a, upload(workspace_a, _many_rows(5)), django_capture_on_commit_callbacks)
    before = (job.created_count, job.rejected_count)

    run_import.delay(workspace_a.pk, job.pk)
    importing.run_import(workspace=workspace_a, job=job)

    job.refresh_from_db()
    assert (job.created_count, job.rejected_count) == before == (5, 1)
    assert contacts(workspace_a).count() == 5
    assert ConsentRecord.objects.for_workspace(workspace_a).count() == 5


def test_importing_the_same_file_twice_adds_nobody_twice(
    workspace_a, django_capture_on_commit_callbacks, write_path
):
    run(workspace_a, upload(workspace_a, _many_rows(5)), django_capture_on_commit_callbacks)
    second = run(
        workspace_a, upload(workspace_a, _many_rows(5)), django_capture_on_commit_callbacks
    )

    assert (second.created_count, second.updated_count) == (0, 5)
    assert contacts(workspace_a).count() == 5
    assert ConsentRecord.objects.for_workspace(workspace_a).count() == 5


def test_a_job_that_stopped_half_way_resumes_without_duplicates(
    workspace_a, django_capture_on_commit_callbacks, monkeypatch, write_path
):
    monkeypatch.setattr(importing.running, "CHUNK_ROWS", 2)
    real_chunk = importing.running.import_chunk
    calls = {"n": 0}

    def crash_on_third_chunk(*args, **kwargs):
        calls["n"] += 1
        outcome = real_chunk(*args, **kwargs)
        if calls["n"] == 3:
            raise ConnectionError("worker lost")
        return outcome

    monkeypatch.setattr(importing.running, "import_chunk", crash_on_third_chunk)
    job = upload(
        workspace_a,
        "email\na@example.com\nbad\nb@example.com\nc@example.com\nnope\nd@x.io\ne@x.io\n",
    )
    with pytest.raises(ConnectionError):
        run(workspace_a, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.rejected_count) == (
        ImportStatus.FAILED,
        4,
        3,
        1,
    )
    assert "Resume" in job.error

    with django_capture_on_commit_callbacks(execute=True):
        importing.start_import(workspace=workspace_a, job=job)
    job.refresh_from_db()

    assert job.status == ImportStatus.DONE
    assert (job.processed_rows, job.created_count, job.rejected_count) == (7, 5, 2)
    assert contacts(workspace_a).count() == 5
    assert ConsentRecord.objects.for_workspace(workspace_a).count() == 5
    assert [row[0] for row in rejected_rows(job)[1:]] == ["bad", "nope"]


def test_a_worker_lost_after_writing_rejects_leaves_no_stray_rejected_rows(
    workspace_a, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(importing.running, "CHUNK_ROWS", 2)
    real_write = importing.RejectsWriter.write
    calls = {"n": 0}

    def write_then_die(self, rows):
        real_write(self, rows)
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("worker lost before commit")

    monkeypatch.setattr(importing.RejectsWriter, "write", write_then_die)
    job = upload(workspace_a, "email\na@example.com\nbad\nworse\nb@example.com\n")
    with pytest.raises(ConnectionError):
        run(workspace_a, job, django_capture_on_commit_callbacks)
    monkeypatch.setattr(importing.RejectsWriter, "write", real_write)

    with django_capture_on_commit_callbacks(execute=True):
        importing.start_import(workspace=workspace_a, job=job)
    job.refresh_from_db()

    assert (job.status, job.created_count, job.rejected_count) == (ImportStatus.DONE, 2, 2)
    assert [row[0] for row in rejected_rows(job)[1:]] == ["bad", "worse"]


def test_the_task_is_queued_only_when_the_transaction_commits(
    workspace_a, django_capture_on_commit_callbacks
):
    job = upload(workspace_a, "email\nann@example.com\n")
    importing.set_options(workspace=workspace_a, job=job, existing="update")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        importing.start_import(workspace=workspace_a, job=job)

    assert len(callbacks) == 1
    assert not contacts(workspace_a).exists()
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED


def test_the_preview_shows_rows_as_they_will_be_saved(workspace_a):
    ContactFactory(workspace=workspace_a, email="known@example.com")
    job = upload(
        workspace_a,
        "email,name,city\nann@example.com,Ann Lee,Leeds\nknown@example.com,K,\nbroken,B,\n",
    )
    importing.set_options(workspace=workspace_a, job=job, existing="skip")

    rows = importing.preview_import(workspace=workspace_a, job=job)

    assert [(r.line, r.action) for r in rows] == [(2, "create"), (3, "skip"), (4, "reject")]
    assert rows[0].fields == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "attributes.city": "Leeds",
    }
    assert rows[2].problem == "email: Enter a valid email address."
    assert not Tag.objects.for_workspace(workspace_a).exists()


# --- pages ---------------------------------------------------------------------------------


def _url(name, workspace, job=None):
    kwargs = {"workspace_slug": workspace.slug}
    if job is not None:
        kwargs["import_id"] = job.public_id
    return reverse(name, kwargs=kwargs)


def test_an_editor_imports_a_file_step_by_step(
    workspace_a, editor_client, django_capture_on_commit_callbacks
):
    ContactFactory(workspace=workspace_a, email="known@example.com")
    stage = LifecycleStageFactory(workspace=workspace_a, name="Customer")
    csv_file = SimpleUploadedFile(
        "shop.csv",
        b"Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,CC\n"
        b"ann@example.com,Ann,Lee,3,2024-01-01,GB\nknown@example.com,K,,2,,\nbroken,B,,1,,\n",
    )

    response = editor_client.post(_url("contact_import", workspace_a), {"file": csv_file})
    job = ImportJob.objects.for_workspace(workspace_a).get()
    assert response.status_code == 302
    assert response["Location"] == _url("import_map", workspace_a, job)

    page = editor_client.get(_url("import_map", workspace_a, job)).content.decode()
    assert "looks like a Mailchimp export" in page
    assert '<option value="email" selected>' in page
    assert '<option value="attr:member_rating" selected>' in page
    assert '<option value="attr:country_code" selected>' in page  # named by the guess
    assert "ann@example.com" in page  # first values shown next to each column

    mapping = {f"column_{i}": job.mapping[h] for i, h in enumerate(job.headers)}
    response = editor_client.post(_url("import_map", workspace_a, job), mapping)
    assert response["Location"] == _url("import_options", workspace_a, job)

    options = {"existing": "update", "tags": "spring, fair", "lifecycle_stage": stage.public_id}
    response = editor_client.post(_url("import_options", workspace_a, job), options)
    assert response.status_code == 400
    assert "Say how they agreed" in response.content.decode()

    response = editor_client.post(
        _url("import_options", workspace_a, job), {**options, "consent": "website"}
    )
    assert response["Location"] == _url("import_preview", workspace_a, job)

    page = editor_client.get(_url("import_preview", workspace_a, job)).content.decode()
    assert "Enter a valid email address." in page
    assert WEBSITE in page
    assert not contacts(workspace_a).filter(email="ann@example.com").exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(_url("import_run", workspace_a, job))
    assert response["Location"] == _url("import_detail", workspace_a, job)

    page = editor_client.get(_url("import_detail", workspace_a, job)).content.decode()
    assert "Import finished" in page
    assert '<strong data-testid="created">1</strong>' in page
    assert '<strong data-testid="updated">1</strong>' in page
    assert '<strong data-testid="rejected">1</strong>' in page
    assert "hx-trigger" not in page
    ann = contacts(workspace_a).get(email="ann@example.com")
    assert ann.lifecycle_stage == stage
    assert sorted(ann.tags.values_list("name", flat=True)) == ["fair", "spring"]

    download = editor_client.get(_url("import_rejects", workspace_a, job))
    assert download.status_code == 200
    assert "shop-rejected.csv" in download["Content-Disposition"]
    body = b"".join(download.streaming_content).decode("utf-8-sig")
    assert (
        body.splitlines()[1]
        == "broken,B,,1,,,email (column “Email Address”): Enter a valid email address."
    )

    listing = editor_client.get(_url("contact_import", workspace_a)).content.decode()
    assert "shop.csv" in listing


def test_the_progress_page_polls_while_the_import_runs(workspace_a, viewer_client):
    job = ImportJobFactory(
        workspace=workspace_a,
        status=ImportStatus.RUNNING,
        total_rows=4000,
        processed_rows=1000,
        created_count=900,
        updated_count=60,
        skipped_count=15,
        rejected_count=25,
    )

    response = viewer_client.get(
        _url("import_detail", workspace_a, job), headers={"HX-Request": "true"}
    )

    page = response.content.decode()
    assert page.lstrip().startswith('<section id="import-progress"')
    assert 'hx-trigger="every 1s"' in page
    assert '<progress value="1000" max="4000"' in page
    assert "(25%)" in page
    assert '<strong data-testid="created">900</strong>' in page
    assert '<strong data-testid="rejected">25</strong>' in page

    ImportJob.objects.for_workspace(workspace_a).filter(pk=job.pk).update(
        status=ImportStatus.DONE, processed_rows=4000
    )
    page = viewer_client.get(
        _url("import_detail", workspace_a, job), headers={"HX-Request": "true"}
    ).content.decode()
    assert "hx-trigger" not in page
    assert "Import finished" in page


def test_an_upload_without_a_file_is_reported(workspace_a, editor_client):
    response = editor_client.post(_url("contact_import", workspace_a))

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_a_bad_upload_is_reported_on_the_form(workspace_a, editor_client):
    response = editor_client.post(
        _url("contact_import", workspace_a),
        {"file": SimpleUploadedFile("list.xlsx", b"PK\x03\x04rest of a workbook")},
    )

    assert response.status_code == 400
    assert "spreadsheet workbook" in response.content.decode()


def test_a_viewer_cannot_import(workspace_a, viewer_client):
    job = ImportJobFactory(workspace=workspace_a, status=ImportStatus.UPLOADED)
    csv_file = SimpleUploadedFile("list.csv", b"email\nann@example.com\n")

    assert (
        viewer_client.post(_url("contact_import", workspace_a), {"file": csv_file}).status_code
        == 403
    )
    assert viewer_client.get(_url("import_map", workspace_a, job)).status_code == 403
    assert viewer_client.get(_url("import_options", workspace_a, job)).status_code == 403
    assert viewer_client.post(_url("import_run", workspace_a, job)).status_code == 403
    assert not ImportJob.objects.for_workspace(workspace_a).exclude(pk=job.pk).exists()
    page = viewer_client.get(_url("contact_import", workspace_a)).content.decode()
    assert "Upload a file" not in page


@pytest.mark.parametrize(
    "name", ["import_detail", "import_map", "import_options", "import_preview", "import_rejects"]
)
def test_another_workspaces_import_is_not_found(workspace_b, owner_client, name):
    theirs = ImportJobFactory(workspace=workspace_b)

    assert owner_client.get(_url(name, workspace_b, theirs)).status_code == 404
    acme_url = reverse(name, kwargs={"workspace_slug": "acme", "import_id": theirs.public_id})
    assert owner_client.get(acme_url).status_code == 404


def test_another_workspaces_import_cannot_be_run(workspace_a, workspace_b, owner_client):
    theirs = ImportJobFactory(workspace=workspace_b, status=ImportStatus.FAILED)

    url = reverse("import_run", kwargs={"workspace_slug": "acme", "import_id": theirs.public_id})
    assert owner_client.post(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == ImportStatus.FAILED

"""Signup forms: the builder, the hosted page and embed, double opt-in, honeypot and limits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts.models import (
    ConsentKind,
    ConsentRecord,
    Contact,
    Event,
    FieldType,
    SignupForm,
    Source,
    SubscriptionStatus,
    TopicPreference,
)
from contacts.services import erase_contact
from tests.factories import (
    ContactFactory,
    CustomFieldFactory,
    LifecycleStageFactory,
    PersonaFactory,
    SignupFormFactory,
    TagFactory,
    TopicFactory,
)
from workspaces.models import SandboxMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def signup_form(workspace_a):
    form = SignupFormFactory(
        workspace=workspace_a,
        name="Footer form",
        title="Get our tips",
        fields=[{"key": "first_name", "label": "First name", "required": True}],
        lead_magnet_url="https://acme.example.com/guide.pdf",
        lead_magnet_subject="Your hiking guide",
    )
    form.tags.set([TagFactory(workspace=workspace_a, name="newsletter")])
    return form


@pytest.fixture
def submit(client, django_capture_on_commit_callbacks):
    """POST the public form as a visitor would, running the on-commit email hooks."""

    def post(form, data, *, on=client, address="203.0.113.7", url_name="signup_form_hosted"):
        payload = {"email": "ada@example.com", "first_name": "Ada", "consent": "on", **data}
        with django_capture_on_commit_callbacks(execute=True):
            return on.post(reverse(url_name, args=[form.public_id]), payload, REMOTE_ADDR=address)

    return post


def _confirm_path(message) -> str:
    return re.search(r"/f/[0-9a-f-]+/confirm/[^/\s]+/", message.body).group(0)


def _contact(workspace, email="ada@example.com") -> Contact:
    return Contact.objects.for_workspace(workspace).get(email=email)


# --- double opt-in, end to end ---------------------------------------------------------


def test_double_opt_in_signup_waits_for_the_emailed_link_then_subscribes(
    client, workspace_a, signup_form, submit, django_capture_on_commit_callbacks
):
    stage = LifecycleStageFactory(workspace=workspace_a, name="Interested")
    persona = PersonaFactory(workspace=workspace_a, name="Weekend hiker")
    newsletter, offers = TopicFactory.create_batch(2, workspace=workspace_a)
    signup_form.lifecycle_stage, signup_form.persona = stage, persona
    signup_form.save()
    signup_form.topics.set([newsletter, offers])

    response = submit(signup_form, {"topics": [str(newsletter.public_id)]})

    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    contact = _contact(workspace_a)
    assert contact.status == SubscriptionStatus.PENDING
    assert contact.first_name == "Ada" and contact.source == Source.FORM
    assert contact.lifecycle_stage == stage and contact.persona == persona
    assert [t.name for t in contact.tags.all()] == ["newsletter"]
    preferences = TopicPreference.objects.for_workspace(workspace_a).filter(contact=contact)
    assert {(p.topic_id, p.subscribed) for p in preferences} == {
        (newsletter.pk, True),
        (offers.pk, False),
    }
    opt_in = ConsentRecord.objects.for_workspace(workspace_a).get(
        contact=contact, kind=ConsentKind.OPT_IN
    )
    assert opt_in.method == Source.FORM and opt_in.source == "Footer form"
    assert opt_in.ip_address == "203.0.113.7"
    assert opt_in.text_shown == signup_form.consent_text
    event = Event.objects.for_workspace(workspace_a).get(contact=contact)
    assert event.name == "form_submitted"
    assert event.properties == {"form_id": str(signup_form.public_id), "form_name": "Footer form"}
    signup_form.refresh_from_db()
    assert signup_form.submission_count == 1

    (confirmation,) = mail.outbox
    assert confirmation.to == ["ada@example.com"]
    assert confirmation.from_email == "Shop <hello@shop.example.com>"
    assert confirmation.subject == "Confirm your subscription to Acme"
    assert confirmation.metadata == {"workspace_id": str(workspace_a.public_id)}

    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(_confirm_path(confirmation), REMOTE_ADDR="198.51.100.4")

    assert page.status_code == 200
    assert "You're subscribed" in page.content.decode()
    contact.refresh_from_db()
    assert contact.status == SubscriptionStatus.SUBSCRIBED
    confirmed = ConsentRecord.objects.for_workspace(workspace_a).get(
        contact=contact, kind=ConsentKind.CONFIRMED
    )
    assert confirmed.ip_address == "198.51.100.4" and confirmed.source == "Footer form"
    lead_magnet = mail.outbox[1]
    assert lead_magnet.subject == "Your hiking guide"
    assert "https://acme.example.com/guide.pdf" in lead_magnet.body


def test_a_second_click_on_the_link_changes_nothing_and_sends_nothing(
    client, workspace_a, signup_form, submit, django_capture_on_commit_callbacks
):
    submit(signup_form, {})
    link = _confirm_path(mail.outbox[0])
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.get(link).status_code == 200
    assert len(mail.outbox) == 2  # the confirmation and one lead magnet
    confirmations = ConsentRecord.objects.for_workspace(workspace_a).filter(
        kind=ConsentKind.CONFIRMED
    )
    assert confirmations.count() == 1


def test_confirming_redirects_when_the_form_has_a_redirect(client, signup_form, submit):
    signup_form.redirect_url = "https://acme.example.com/welcome"
    signup_form.save()
    response = submit(signup_form, {})
    assert response.status_code == 200  # double opt-in: first check your inbox
    page = client.get(_confirm_path(mail.outbox[0]))
    assert page.status_code == 302 and page.url == "https://acme.example.com/welcome"


def test_the_confirmation_email_lands_in_the_sandbox_inbox(
    settings, workspace_a, signup_form, submit
):
    settings.EMAIL_BACKEND = "workspaces.sandbox.SandboxEmailBackend"
    submit(signup_form, {})
    kept = SandboxMessage.objects.for_workspace(workspace_a).get()
    assert kept.subject == "Confirm your subscription to Acme"
    assert "/confirm/" in kept.text_body


def test_without_a_sender_address_the_platform_address_carries_the_workspace_name(
    workspace_a, signup_form, submit
):
    workspace_a.default_from_name = workspace_a.default_from_email = ""
    workspace_a.save()
    submit(signup_form, {})
    assert mail.outbox[0].from_email == "Acme <no-reply@mailpath.local>"
    assert mail.outbox[0].reply_to == []


# --- single opt-in and people we already know ------------------------------------------


def test_single_opt_in_subscribes_at_once_sends_the_lead_magnet_and_redirects(
    workspace_a, signup_form, submit
):
    signup_form.double_opt_in = False
    signup_form.redirect_url = "https://acme.example.com/thanks"
    signup_form.save()

    response = submit(signup_form, {})

    assert response.status_code == 302 and response.url == "https://acme.example.com/thanks"
    contact = _contact(workspace_a)
    assert contact.status == SubscriptionStatus.SUBSCRIBED
    kinds = ConsentRecord.objects.for_workspace(workspace_a).values_list("kind", flat=True)
    assert list(kinds) == [ConsentKind.OPT_IN]
    (lead_magnet,) = mail.outbox
    assert lead_magnet.subject == "Your hiking guide"


def test_single_opt_in_shows_the_success_message(workspace_a, signup_form, submit):
    signup_form.double_opt_in = False
    signup_form.success_message = "Welcome aboard, see you on Friday."
    signup_form.save()
    response = submit(signup_form, {})
    assert "Welcome aboard, see you on Friday." in response.content.decode()


def test_someone_who_unsubscribed_confirms_again_even_on_a_single_opt_in_form(
    workspace_a, signup_form, submit
):
    signup_form.double_opt_in = False
    signup_form.save()
    ContactFactory(
        workspace=workspace_a, email="ada@example.com", status=SubscriptionStatus.UNSUBSCRIBED
    )

    response = submit(signup_form, {})

    assert "Check your inbox" in response.content.decode()
    assert _contact(workspace_a).status == SubscriptionStatus.PENDING
    assert mail.outbox[0].subject == "Confirm your subscription to Acme"


def test_a_subscriber_signing_up_again_stays_subscribed_and_keeps_their_stage(
    workspace_a, signup_form, submit
):
    customer = LifecycleStageFactory(workspace=workspace_a, name="Customer")
    signup_form.lifecycle_stage = LifecycleStageFactory(workspace=workspace_a, name="Lead")
    signup_form.save()
    ContactFactory(
        workspace=workspace_a,
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        lifecycle_stage=customer,
        status=SubscriptionStatus.SUBSCRIBED,
    )

    submit(signup_form, {"first_name": "Augusta"})

    contact = _contact(workspace_a)
    assert contact.status == SubscriptionStatus.SUBSCRIBED
    assert contact.lifecycle_stage == customer
    assert (contact.first_name, contact.last_name) == ("Augusta", "Lovelace")
    assert mail.outbox[0].subject == "Confirm your subscription to Acme"


def test_an_erased_address_is_not_added_back_and_the_visitor_learns_nothing(
    workspace_a, signup_form, submit
):
    erase_contact(
        workspace=workspace_a,
        contact=ContactFactory(workspace=workspace_a, email="ada@example.com"),
    )
    response = submit(signup_form, {})
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    assert not Contact.objects.for_workspace(workspace_a).exists()
    assert mail.outbox == []


# --- bad input -------------------------------------------------------------------------


def test_an_invalid_email_is_shown_on_the_form_and_nothing_is_stored(
    workspace_a, signup_form, submit
):
    response = submit(signup_form, {"email": "ada@"})
    assert response.status_code == 400
    assert "Enter a valid email address" in response.content.decode()
    assert not Contact.objects.for_workspace(workspace_a).exists()
    assert mail.outbox == []


def test_required_fields_and_the_consent_box_are_checked(workspace_a, signup_form, submit):
    response = submit(signup_form, {"email": "", "first_name": "", "consent": ""})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Enter your email address." in body
    assert "First name is required." in body
    assert "Tick this box to agree to receive our emails." in body
    assert not Contact.objects.for_workspace(workspace_a).exists()


def test_custom_fields_are_checked_by_their_type(workspace_a, signup_form, submit):
    CustomFieldFactory(
        workspace=workspace_a, key="team_size", label="Team size", field_type=FieldType.NUMBER
    )
    CustomFieldFactory(
        workspace=workspace_a,
        key="plan",
        label="Plan",
        field_type=FieldType.CHOICE,
        choices=["Free", "Pro"],
    )
    signup_form.fields = [
        {"key": "attributes.team_size", "label": "Team size", "required": True},
        {"key": "attributes.plan", "label": "Plan", "required": False},
    ]
    signup_form.save()

    response = submit(signup_form, {"attributes.team_size": "a dozen", "attributes.plan": "Gold"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "“a dozen” is not a number." in body
    assert "Select a valid choice" in body

    submit(signup_form, {"attributes.team_size": "12", "attributes.plan": "Pro"})
    assert _contact(workspace_a).attributes == {"team_size": 12, "plan": "Pro"}


def test_offered_topics_need_at_least_one_choice(workspace_a, signup_form, submit):
    signup_form.topics.set([TopicFactory(workspace=workspace_a)])
    response = submit(signup_form, {})
    assert response.status_code == 400
    assert "Choose at least one topic." in response.content.decode()


def test_a_filled_honeypot_answers_as_if_it_worked_and_keeps_nothing(
    workspace_a, signup_form, submit
):
    response = submit(signup_form, {"website": "http://spam.example.com"})
    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    assert not Contact.objects.for_workspace(workspace_a).exists()
    assert not Event.objects.for_workspace(workspace_a).exists()
    assert mail.outbox == []
    signup_form.refresh_from_db()
    assert signup_form.submission_count == 0


def test_too_many_attempts_from_one_address_are_refused(settings, workspace_a, signup_form, submit):
    settings.SIGNUP_FORM_RATE_LIMIT = 3
    for n in range(3):
        assert submit(signup_form, {"email": f"person{n}@example.com"}).status_code == 200
    response = submit(signup_form, {"email": "person9@example.com"})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert not Contact.objects.for_workspace(workspace_a).filter(email="person9@example.com")
    other_address = submit(signup_form, {"email": "person9@example.com"}, address="192.0.2.1")
    assert other_address.status_code == 200


def test_an_expired_link_says_so(client, signup_form, submit):
    submit(signup_form, {})
    link = _confirm_path(mail.outbox[0])
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.get(link)
    assert response.status_code == 400
    assert "This confirmation link has expired" in response.content.decode()


def test_a_tampered_link_or_one_for_another_form_says_so(client, workspace_a, signup_form, submit):
    submit(signup_form, {})
    link = _confirm_path(mail.outbox[0])
    response = client.get(link[:-6] + "xxxxx/")
    assert response.status_code == 400
    assert "This confirmation link is not valid" in response.content.decode()

    other = SignupFormFactory(workspace=workspace_a)
    token = link.rstrip("/").rsplit("/", 1)[1]
    response = client.get(reverse("signup_form_confirm", args=[other.public_id, token]))
    assert response.status_code == 400
    assert _contact(workspace_a).status == SubscriptionStatus.PENDING


def test_a_switched_off_form_is_not_found_but_its_links_still_confirm(
    client, workspace_a, signup_form, submit
):
    submit(signup_form, {})
    signup_form.is_active = False
    signup_form.save()
    for url_name in ("signup_form_hosted", "signup_form_embed"):
        url = reverse(url_name, args=[signup_form.public_id])
        assert client.get(url).status_code == 404
        assert client.post(url, {"email": "bob@example.com"}).status_code == 404
    assert client.get(_confirm_path(mail.outbox[0])).status_code == 200
    assert _contact(workspace_a).status == SubscriptionStatus.SUBSCRIBED


# --- the hosted page and the embed -----------------------------------------------------


def test_the_hosted_page_shows_the_form_without_login_and_may_be_framed(client, signup_form):
    response = client.get(reverse("signup_form_hosted", args=[signup_form.public_id]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Acme" in body and "Get our tips" in body
    assert 'name="first_name"' in body and 'name="website"' in body
    assert signup_form.consent_text in body
    assert "X-Frame-Options" not in response.headers


def test_a_post_from_another_site_without_a_csrf_token_is_accepted(
    workspace_a, signup_form, submit
):
    strict = Client(enforce_csrf_checks=True)
    response = submit(signup_form, {}, on=strict)
    assert response.status_code == 200
    assert _contact(workspace_a).status == SubscriptionStatus.PENDING


def test_the_embed_fragment_is_readable_from_any_site_and_answers_in_place(
    client, workspace_a, signup_form, submit
):
    url = reverse("signup_form_embed", args=[signup_form.public_id])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert 'class="mailpath-form"' in response.content.decode()
    assert "<html" not in response.content.decode()

    invalid = submit(signup_form, {"email": "nope"}, url_name="signup_form_embed")
    assert invalid.status_code == 400 and "Enter a valid email address" in invalid.content.decode()
    assert invalid["Access-Control-Allow-Origin"] == "*"

    done = submit(signup_form, {}, url_name="signup_form_embed")
    assert "Check your inbox" in done.content.decode()
    assert _contact(workspace_a).status == SubscriptionStatus.PENDING


def test_the_embed_fragment_hands_the_redirect_to_the_script(signup_form, submit):
    signup_form.double_opt_in = False
    signup_form.redirect_url = "https://acme.example.com/thanks"
    signup_form.save()
    response = submit(signup_form, {}, url_name="signup_form_embed")
    assert 'data-mailpath-redirect="https://acme.example.com/thanks"' in response.content.decode()


# --- the builder -----------------------------------------------------------------------


def _builder_data(**overrides):
    data = {
        "name": "Blog sidebar",
        "title": "Join 2,000 hikers",
        "intro": "One email a week.",
        "button_label": "Count me in",
        "consent_text": "Yes, email me. I can unsubscribe any time.",
        "double_opt_in": "on",
        "success_message": "Thanks! Check your inbox.",
        "redirect_url": "",
        "tag_names": "blog, hikers",
        "show_first_name": "on",
        "show_birthday": "on",
        "required_birthday": "on",
        "lead_magnet_url": "",
        "lead_magnet_subject": "",
        "lead_magnet_body": "",
    }
    return {**data, **overrides}


def test_an_editor_builds_a_form_and_gets_its_link_and_snippets(editor_client, workspace_a):
    topic = TopicFactory(workspace=workspace_a, name="Trips")
    stage = LifecycleStageFactory(workspace=workspace_a)
    data = _builder_data(topics=[str(topic.public_id)], lifecycle_stage=str(stage.public_id))

    response = editor_client.post(reverse("signup_form_new", args=[workspace_a.slug]), data)

    form = SignupForm.objects.for_workspace(workspace_a).get()
    assert response.status_code == 302
    assert response.url == reverse("signup_form_edit", args=[workspace_a.slug, form.public_id])
    assert form.fields == [
        {"key": "first_name", "label": "First name", "required": False},
        {"key": "birthday", "label": "Birthday", "required": True},
    ]
    assert list(form.topics.all()) == [topic] and form.lifecycle_stage == stage
    assert sorted(t.name for t in form.tags.all()) == ["blog", "hikers"]
    assert form.double_opt_in and form.button_label == "Count me in"

    page = editor_client.get(response.url).content.decode()
    assert f"/f/{form.public_id}/?embed=1" in page
    assert f"/f/{form.public_id}/embed/" in page and "mailpath-form.js" in page
    assert "Signup forms" in page


def test_a_form_may_ask_for_the_email_alone_without_a_consent_box(
    editor_client, workspace_a, client, submit
):
    data = _builder_data(show_first_name="", show_birthday="", consent_text="")
    del data["show_first_name"], data["show_birthday"], data["required_birthday"]
    response = editor_client.post(reverse("signup_form_new", args=[workspace_a.slug]), data)
    assert response.status_code == 302
    form = SignupForm.objects.for_workspace(workspace_a).get()
    assert form.fields == [] and form.consent_text == ""
    page = client.get(reverse("signup_form_hosted", args=[form.public_id])).content.decode()
    assert 'name="consent"' not in page and 'name="first_name"' not in page
    submit(form, {"consent": ""})
    assert _contact(workspace_a).status == SubscriptionStatus.PENDING


def test_the_builder_explains_bad_settings(editor_client, workspace_a):
    data = _builder_data(name="", success_message="", redirect_url="not a url")
    response = editor_client.post(reverse("signup_form_new", args=[workspace_a.slug]), data)
    body = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in body and "Enter a valid URL." in body
    data = _builder_data(success_message="", lead_magnet_subject="Free guide")
    response = editor_client.post(reverse("signup_form_new", args=[workspace_a.slug]), data)
    body = response.content.decode()
    assert "Write a success message, or give a page to redirect to." in body
    assert "Give the link to send" in body
    assert not SignupForm.objects.for_workspace(workspace_a).exists()


def test_editing_saves_and_the_preview_follows_unsaved_changes(
    editor_client, workspace_a, signup_form
):
    edit_url = reverse("signup_form_edit", args=[workspace_a.slug, signup_form.public_id])
    preview = editor_client.post(
        reverse("signup_form_preview", args=[workspace_a.slug]),
        _builder_data(title="Unsaved heading", show_phone="on"),
        headers={"HX-Request": "true"},
    )
    body = preview.content.decode()
    assert preview.status_code == 200
    assert "Unsaved heading" in body and 'name="phone"' in body and "<html" not in body
    signup_form.refresh_from_db()
    assert signup_form.title == "Get our tips"

    response = editor_client.post(edit_url, _builder_data(title="Saved heading"))
    assert response.status_code == 302
    signup_form.refresh_from_db()
    assert signup_form.title == "Saved heading" and signup_form.name == "Blog sidebar"


def test_switching_off_and_deleting(editor_client, workspace_a, signup_form, client):
    args = [workspace_a.slug, signup_form.public_id]
    editor_client.post(reverse("signup_form_active", args=args), {"active": "false"})
    signup_form.refresh_from_db()
    assert not signup_form.is_active
    editor_client.post(reverse("signup_form_active", args=args), {"active": "true"})
    signup_form.refresh_from_db()
    assert signup_form.is_active

    response = editor_client.post(reverse("signup_form_delete", args=args))
    assert response.url == reverse("signup_forms", args=[workspace_a.slug])
    assert not SignupForm.objects.for_workspace(workspace_a).exists()


def test_the_list_shows_forms_and_an_empty_state(viewer_client, workspace_a):
    url = reverse("signup_forms", args=[workspace_a.slug])
    assert "No signup forms yet" in viewer_client.get(url).content.decode()
    SignupFormFactory(workspace=workspace_a, name="Popup", submission_count=42)
    body = viewer_client.get(url).content.decode()
    assert "Popup" in body and "42" in body


def test_a_viewer_sees_forms_but_cannot_change_them(viewer_client, workspace_a, signup_form):
    args = [workspace_a.slug, signup_form.public_id]
    assert viewer_client.get(reverse("signup_form_edit", args=args)).status_code == 200
    for url in (
        reverse("signup_form_edit", args=args),
        reverse("signup_form_new", args=[workspace_a.slug]),
        reverse("signup_form_active", args=args),
        reverse("signup_form_delete", args=args),
        reverse("signup_form_preview", args=[workspace_a.slug]),
    ):
        assert viewer_client.post(url, _builder_data()).status_code == 403
    signup_form.refresh_from_db()
    assert signup_form.name == "Footer form" and signup_form.is_active


def test_another_workspace_cannot_reach_the_form(outsider_client, workspace_b, signup_form):
    args = [workspace_b.slug, signup_form.public_id]
    assert outsider_client.get(reverse("signup_form_edit", args=args)).status_code == 404
    for name in ("signup_form_edit", "signup_form_active", "signup_form_delete"):
        assert outsider_client.post(reverse(name, args=args), _builder_data()).status_code == 404
    signup_form.refresh_from_db()
    assert signup_form.name == "Footer form" and signup_form.is_active


def test_the_builder_refuses_another_workspaces_topic(editor_client, workspace_a, workspace_b):
    foreign = TopicFactory(workspace=workspace_b)
    response = editor_client.post(
        reverse("signup_form_new", args=[workspace_a.slug]),
        _builder_data(topics=[str(foreign.public_id)]),
    )
    assert response.status_code == 400
    assert not SignupForm.objects.for_workspace(workspace_a).exists()

"""factory_boy factories. Tenant-owned factories take a `workspace` sub-factory."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from workspaces.models import (
    Agency,
    ApiKey,
    Invitation,
    Membership,
    Role,
    SandboxMessage,
    Workspace,
)

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.LazyAttribute(lambda u: u.email)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency

    name = factory.Sequence(lambda n: f"Agency {n}")
    slug = factory.Sequence(lambda n: f"agency-{n}")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")
    default_from_name = "Shop"
    default_from_email = "hello@shop.example.com"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.EDITOR


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.EDITOR
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Build with `ApiKeyFactory()`; the secret is on `api_key.secret` (tests only)."""

    class Meta:
        model = ApiKey

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Key {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        api_key = model_class(*args, **kwargs)
        api_key.secret = ApiKey.all_workspaces.assign_key(api_key)
        api_key.save()
        return api_key


class SandboxMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SandboxMessage

    workspace = factory.SubFactory(WorkspaceFactory)
    from_email = "Mailpath <no-reply@mailpath.local>"
    to = factory.LazyFunction(lambda: ["someone@example.com"])
    subject = factory.Sequence(lambda n: f"Message {n}")
    text_body = "Hello"
    html_body = "<p>Hello</p>"


# --- contacts ----------------------------------------------------------------------------

from contacts.models import (  # noqa: E402
    Contact,
    CustomField,
    Event,
    LifecycleStage,
    Persona,
    SignupForm,
    Tag,
    Topic,
)


class LifecycleStageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LifecycleStage

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Stage {n}")
    position = factory.Sequence(lambda n: n)


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Persona

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Persona {n}")
    goals = "Grow the business"


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"tag-{n}")


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Topic {n}")


class CustomFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomField

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"field_{n}")
    label = factory.Sequence(lambda n: f"Field {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    workspace = factory.SubFactory(WorkspaceFactory)
    contact = factory.SubFactory(ContactFactory, workspace=factory.SelfAttribute("..workspace"))
    name = "page_viewed"
    occurred_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)


class SignupFormFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SignupForm

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Form {n}")


class ImportJobFactory(factory.django.DjangoModelFactory):
    """A finished import; its file name points nowhere (tests that read files upload one)."""

    class Meta:
        model = "contacts.ImportJob"

    workspace = factory.SubFactory(WorkspaceFactory)
    file = "imports/missing.csv"
    filename = factory.Sequence(lambda n: f"list-{n}.csv")
    headers = factory.LazyFunction(lambda: ["email"])
    mapping = factory.LazyFunction(lambda: {"email": "email"})
    status = "done"


class SegmentFactory(factory.django.DjangoModelFactory):
    """A static list by default; pass kind="dynamic" and rules=... for a rule segment."""

    class Meta:
        model = "contacts.Segment"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")
    kind = "static"


# --- campaigns -------------------------------------------------------------------------

WELCOME_BLOCKS = [
    {"type": "heading", "text": 'Welcome, {{ contact.first_name | default: "friend" }}!'},
    {"type": "text", "html": "<p>Thanks for joining {{ workspace.name }}.</p>"},
    {"type": "button", "label": "Get started", "url": "https://example.com/start"},
    {"type": "footer"},
]


class EmailTemplateFactory(factory.django.DjangoModelFactory):
    """A valid blocks template with a footer (unsubscribe link and address from the brand).
    Built directly, without a revision; use campaigns.services.create_template for those."""

    class Meta:
        model = "campaigns.EmailTemplate"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    kind = "blocks"
    subject = "Hello {{ contact.first_name }}"
    preheader = "A short preview line"
    blocks = factory.LazyFunction(lambda: [dict(block) for block in WELCOME_BLOCKS])
    revision_number = 1


class TemplateRevisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.TemplateRevision"

    template = factory.SubFactory(EmailTemplateFactory)
    workspace = factory.SelfAttribute("template.workspace")
    number = factory.Sequence(lambda n: n + 1)
    kind = factory.SelfAttribute("template.kind")
    subject = factory.SelfAttribute("template.subject")
    preheader = factory.SelfAttribute("template.preheader")
    blocks = factory.SelfAttribute("template.blocks")

"""The outsider walk: every workspace page and API route, visited by someone from another
workspace. A route added later is covered without anyone listing it; a route whose URL
names an object needs a factory in OBJECT_FACTORIES, or the walk fails and says so."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests import factories
from tests.factories import (
    ApiKeyFactory,
    InvitationFactory,
    MembershipFactory,
    SandboxMessageFactory,
    SignupFormFactory,
    WorkspaceFactory,
)
from workspaces.models import Role, Workspace

# URL kwarg (or, for the API's `public_id`, the route name) -> makes such an object in a
# workspace and returns its public id.
OBJECT_FACTORIES: dict[str, Callable[[Workspace], Any]] = {
    "member_id": lambda ws: MembershipFactory(workspace=ws).public_id,
    "invitation_id": lambda ws: InvitationFactory(workspace=ws).public_id,
    "key_id": lambda ws: ApiKeyFactory(workspace=ws).public_id,
    "message_id": lambda ws: SandboxMessageFactory(workspace=ws).public_id,
    "form_id": lambda ws: SignupFormFactory(workspace=ws).public_id,
    "member-detail": lambda ws: MembershipFactory(workspace=ws).public_id,
    "invitation-detail": lambda ws: InvitationFactory(workspace=ws).public_id,
    "api-key-detail": lambda ws: ApiKeyFactory(workspace=ws).public_id,
    "stage_id": lambda ws: factories.LifecycleStageFactory(workspace=ws).public_id,
    "persona_id": lambda ws: factories.PersonaFactory(workspace=ws).public_id,
    "field_id": lambda ws: factories.CustomFieldFactory(workspace=ws).public_id,
    "tag_id": lambda ws: factories.TagFactory(workspace=ws).public_id,
    "topic_id": lambda ws: factories.TopicFactory(workspace=ws).public_id,
    "contact_id": lambda ws: factories.ContactFactory(workspace=ws).public_id,
    "contact-detail": lambda ws: factories.ContactFactory(workspace=ws).public_id,
    "contact-events": lambda ws: factories.ContactFactory(workspace=ws).public_id,
    "tag-detail": lambda ws: factories.TagFactory(workspace=ws).public_id,
    "custom-field-detail": lambda ws: factories.CustomFieldFactory(workspace=ws).public_id,
    "persona-detail": lambda ws: factories.PersonaFactory(workspace=ws).public_id,
    "stage-detail": lambda ws: factories.LifecycleStageFactory(workspace=ws).public_id,
    "import_id": lambda ws: factories.ImportJobFactory(workspace=ws).public_id,
    "segment_id": lambda ws: factories.SegmentFactory(workspace=ws).public_id,
    "segment-detail": lambda ws: factories.SegmentFactory(workspace=ws).public_id,
    "segment-members": lambda ws: factories.SegmentFactory(workspace=ws).public_id,
    "segment-members-add": lambda ws: factories.SegmentFactory(workspace=ws).public_id,
    "segment-members-remove": lambda ws: factories.SegmentFactory(workspace=ws).public_id,
    "template_id": lambda ws: factories.EmailTemplateFactory(workspace=ws).public_id,
    "revision_id": lambda ws: factories.TemplateRevisionFactory(template__workspace=ws).public_id,
    "email-template-detail": lambda ws: factories.EmailTemplateFactory(workspace=ws).public_id,
    "email-template-render": lambda ws: factories.EmailTemplateFactory(workspace=ws).public_id,
    "email-template-checks": lambda ws: factories.EmailTemplateFactory(workspace=ws).public_id,
    "email-template-revisions": lambda ws: factories.EmailTemplateFactory(workspace=ws).public_id,
    "email-template-restore": lambda ws: factories.EmailTemplateFactory(workspace=ws).public_id,
    "email-template-duplicate": lambda ws: factories.EmailTemplateFactory(workspace=ws).public_id,
    "email_id": lambda ws: _outbox_message(ws).public_id,
    "webhook_id": lambda ws: _webhook_endpoint(ws).public_id,
    "delivery_id": lambda ws: _webhook_delivery(ws).public_id,
    "message-detail": lambda ws: _message(ws).public_id,
}


def _webhook_endpoint(ws: Workspace) -> Any:
    from campaigns.models import WebhookEndpoint

    return WebhookEndpoint.objects.for_workspace(ws).create(
        workspace=ws, url="https://hooks.example.com/in", events=["message.opened"], secret="s"
    )


def _webhook_delivery(ws: Workspace) -> Any:
    from campaigns.models import WebhookDelivery

    return WebhookDelivery.objects.for_workspace(ws).create(
        workspace=ws,
        endpoint=_webhook_endpoint(ws),
        event="message.opened",
        event_key=f"walk:{uuid.uuid4()}",
        payload={},
        status="failed",
    )


def _message(ws: Workspace) -> Any:
    from campaigns.models import Message

    return Message.objects.for_workspace(ws).create(
        workspace=ws,
        to_email="walk@example.com",
        source="transactional",
        idempotency_key=f"walk:{uuid.uuid4()}",
    )


def _outbox_message(ws: Workspace) -> Any:
    import uuid

    from campaigns.models import Message

    contact = factories.ContactFactory(workspace=ws)
    return Message.objects.for_workspace(ws).create(
        workspace=ws,
        contact=contact,
        to_email=contact.email,
        source="campaign",
        idempotency_key=f"walk:{uuid.uuid4()}",
    )


API_NAMESPACES = {"api", "workspace-api"}
METHODS = ("get", "post", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str  # with namespace, ready for reverse()
    kwargs: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return self.name.rpartition(":")[0]

    @property
    def object_kwargs(self) -> tuple[str, ...]:
        return tuple(k for k in self.kwargs if k != "workspace_slug")

    @property
    def is_api(self) -> bool:
        return self.namespace in API_NAMESPACES


def iter_routes(urlconf: str | None = None) -> Iterator[Route]:
    def walk(patterns: list[Any], namespace: str, kwargs: tuple[str, ...]) -> Iterator[Route]:
        for pattern in patterns:
            found = tuple(pattern.pattern.regex.groupindex)
            if isinstance(pattern, URLResolver):
                ns = namespace
                if pattern.namespace:
                    ns = f"{namespace}{pattern.namespace}:"
                yield from walk(pattern.url_patterns, ns, kwargs + found)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield Route(f"{namespace}{pattern.name}", kwargs + found)

    for route in walk(get_resolver(urlconf).url_patterns, "", ()):
        if "workspace_slug" in route.kwargs or route.is_api:
            yield route


def _object_id(route: Route, kwarg: str, victim: Workspace) -> Any:
    key = kwarg if kwarg != "public_id" else route.name.rpartition(":")[2]
    if key not in OBJECT_FACTORIES:
        raise LookupError(
            f"Route {route.name} takes <{kwarg}>: add a factory for {key!r} to "
            "tests/scope_walk.py OBJECT_FACTORIES so the outsider walk can test it."
        )
    return OBJECT_FACTORIES[key](victim)


@dataclass
class Attempt:
    who: str
    client: Client
    slug: str | None
    headers: dict[str, str]
    must_404: bool  # the workspace itself is not theirs


def find_scope_leaks(urlconf: str | None = None) -> list[str]:
    """Visit every route as an outsider; return a line per response that leaked."""
    victim = WorkspaceFactory(name="Victim Co", slug="victim-co")
    home = WorkspaceFactory(name="Outsider Co", slug="outsider-co")
    outsider = MembershipFactory(workspace=home, role=Role.OWNER).user
    session = Client()
    session.force_login(outsider)
    key = ApiKeyFactory(workspace=home)
    bearer = {"Authorization": f"Bearer {key.secret}"}
    anonymous = Client()

    leaks = []
    for route in iter_routes(urlconf):
        ids = {kw: _object_id(route, kw, victim) for kw in route.object_kwargs}
        markers = [str(value).encode() for value in ids.values()] + [victim.slug.encode()]
        for attempt in _attempts(route, session, anonymous, bearer, victim, home):
            kwargs = dict(ids)
            if attempt.slug is not None:
                kwargs["workspace_slug"] = attempt.slug
            url = reverse(route.name, kwargs=kwargs, urlconf=urlconf)
            for method in METHODS:
                response = getattr(attempt.client, method)(url, headers=attempt.headers)
                problem = _judge(response, attempt, bool(route.object_kwargs), markers)
                if problem:
                    leaks.append(f"{method.upper()} {url} as {attempt.who}: {problem}")
    return leaks


def _attempts(route, session, anonymous, bearer, victim, home) -> list[Attempt]:  # type: ignore[no-untyped-def]
    if route.namespace == "api":  # the key names the workspace
        return [Attempt("outsider's API key", anonymous, None, bearer, must_404=False)]
    attempts = [
        Attempt("outsider", session, victim.slug, {}, must_404=True),
        Attempt("outsider in own workspace", session, home.slug, {}, must_404=False),
    ]
    if route.is_api:
        attempts.append(Attempt("outsider's API key", anonymous, victim.slug, bearer, True))
    return attempts


def _judge(response, attempt: Attempt, names_objects: bool, markers: list[bytes]) -> str:  # type: ignore[no-untyped-def]
    status = response.status_code
    if attempt.must_404 and status != 404:
        return f"answered {status}, expected 404"
    if not attempt.must_404 and names_objects and status not in (404, 405):
        return f"answered {status} for another workspace's object, expected 404"
    body = b"".join(response) if response.streaming else response.content
    if any(marker in body for marker in markers):
        return "response shows another workspace's data"
    return ""

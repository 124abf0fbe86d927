"""Every write to tenancy and accounts. Keyword-only, workspace passed in, atomic."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from .mail import send_workspace_email
from .models import (
    RESERVED_SLUGS,
    Agency,
    ApiKey,
    Invitation,
    Membership,
    Role,
    SandboxMessage,
    Workspace,
)
from .signals import workspace_created

INVITATION_SALT = "mailpath.invitation"
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


# --- accounts and workspaces -----------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_taken(email: str) -> bool:
    return get_user_model().objects.filter(email__iexact=normalise_email(email)).exists()


def unique_slug(name: str, model: type[Workspace] | type[Agency] = Workspace) -> str:
    base = (slugify(name)[:50] or "workspace").strip("-")
    if base in RESERVED_SLUGS:
        base = f"{base}-1"
    slug, n = base, 2
    while model.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def create_user(*, email: str, password: str, full_name: str = "") -> AbstractBaseUser:
    email = normalise_email(email)
    if email_taken(email):
        raise ValidationError({"email": "An account with this email already exists."})
    first, _, last = full_name.strip().partition(" ")
    return get_user_model().objects.create_user(
        username=email, email=email, password=password, first_name=first, last_name=last
    )


@transaction.atomic
def create_workspace(
    *,
    user: AbstractBaseUser,
    name: str,
    slug: str = "",
    agency: Agency | None = None,
    timezone_name: str = "UTC",
) -> Workspace:
    """A new workspace; the creator owns it (or reaches it through the agency)."""
    if (
        agency is not None
        and not Membership.objects.filter(
            user=user, agency=agency, role__in=[Role.OWNER, Role.ADMIN]
        ).exists()
    ):
        raise ValidationError({"agency": "Only the agency's owners and admins add clients."})
    if slug and Workspace.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"The address “{slug}” is taken; choose another."})
    workspace = Workspace(
        name=name.strip(),
        slug=slug or unique_slug(name),
        agency=agency,
        timezone=timezone_name,
        default_from_email=getattr(user, "email", ""),
    )
    workspace.full_clean()
    workspace.save()
    if agency is None:
        Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    workspace_created.send(sender=Workspace, workspace=workspace)
    return workspace


@transaction.atomic
def create_agency(*, user: AbstractBaseUser, name: str) -> Agency:
    agency = Agency(name=name.strip(), slug=unique_slug(name, Agency))
    agency.full_clean()
    agency.save()
    Membership.objects.create(user=user, agency=agency, role=Role.OWNER)
    return agency


@transaction.atomic
def sign_up(
    *,
    email: str,
    password: str,
    full_name: str,
    workspace_name: str,
    agency_name: str = "",
) -> tuple[AbstractBaseUser, Workspace]:
    """Create the user and a first workspace (under a new agency if one is named)."""
    user = create_user(email=email, password=password, full_name=full_name)
    agency = create_agency(user=user, name=agency_name) if agency_name.strip() else None
    workspace = create_workspace(user=user, name=workspace_name, agency=agency)
    return user, workspace


@transaction.atomic
def update_workspace_settings(*, workspace: Workspace, **fields: str) -> Workspace:
    allowed = {"name", "timezone", "default_from_name", "default_from_email", "postal_address"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))} here.")
    for field, value in fields.items():
        setattr(workspace, field, value)
    workspace.full_clean()
    workspace.save(update_fields=[*fields, "updated_at"])
    return workspace


# --- members ---------------------------------------------------------------------------


def _owners_left_after(workspace: Workspace, leaving: Membership) -> int:
    return (
        Membership.objects.filter(workspace=workspace, role=Role.OWNER)
        .exclude(pk=leaving.pk)
        .count()
    )


def _check_can_grant(acting_role: str, role: str) -> None:
    if role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError({"role": "Only an owner can make someone an owner."})


@transaction.atomic
def change_member_role(
    *, workspace: Workspace, membership: Membership, role: str, acting_role: str
) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role."})
    _check_can_grant(acting_role, role)
    if membership.role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError({"role": "Only an owner can change another owner's role."})
    demoting_owner = membership.role == Role.OWNER and role != Role.OWNER
    if demoting_owner and not _owners_left_after(workspace, membership):
        raise ValidationError({"role": "A workspace needs at least one owner."})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(*, workspace: Workspace, membership: Membership, acting_role: str) -> None:
    if membership.role == Role.OWNER:
        if acting_role != Role.OWNER:
            raise ValidationError("Only an owner can remove an owner.")
        if not _owners_left_after(workspace, membership):
            raise ValidationError("A workspace needs at least one owner.")
    membership.delete()


# --- invitations -----------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(str(invitation.public_id), salt=INVITATION_SALT)


class InvitationError(Exception):
    """The invitation link cannot be used; the message says why, for the user."""


def open_invitation(token: str) -> Invitation:
    """The invitation behind a link, if it can still be accepted."""
    max_age = timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    try:
        public_id = signing.loads(token, salt=INVITATION_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvitationError(
            "This invitation has expired. Ask the person who invited you to send a new one."
        ) from exc
    except signing.BadSignature as exc:
        raise InvitationError(
            "This invitation link is not valid. Check that it is complete."
        ) from exc
    invitation = (
        Invitation.all_workspaces.select_related("workspace", "invited_by")
        .filter(public_id=public_id)
        .first()
    )
    if invitation is None or invitation.revoked_at:
        raise InvitationError("This invitation was withdrawn.")
    if invitation.accepted_at:
        raise InvitationError("This invitation was already accepted. Log in to continue.")
    if invitation.expires_at <= timezone.now():
        raise InvitationError(
            "This invitation has expired. Ask the person who invited you to send a new one."
        )
    return invitation


@transaction.atomic
def invite_member(
    *,
    workspace: Workspace,
    email: str,
    role: str,
    invited_by: AbstractBaseUser | None,
    acting_role: str,
) -> Invitation:
    """Invite someone by email; a fresh invitation replaces an open one for the same address."""
    email = normalise_email(email)
    _check_can_grant(acting_role, role)
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member of this workspace."})
    Invitation.objects.for_workspace(workspace).filter(
        email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    invitation = Invitation(
        workspace=workspace,
        email=email,
        role=role,
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
    )
    invitation.full_clean()
    invitation.save()
    transaction.on_commit(lambda: _send_invitation(invitation))
    return invitation


def _send_invitation(invitation: Invitation) -> None:
    inviter = invitation.invited_by
    context = {
        "invitation": invitation,
        "url": f"{settings.SITE_URL}/invitations/{invitation_token(invitation)}/",
        "inviter": (inviter.get_full_name() or inviter.email) if inviter else "Your team",
    }
    send_workspace_email(
        workspace=invitation.workspace,
        to=[invitation.email],
        subject=f"You're invited to {invitation.workspace.name} on Mailpath",
        text=render_to_string("workspaces/email/invitation.txt", context),
        html=render_to_string("workspaces/email/invitation.html", context),
        reply_to=[inviter.email] if inviter else None,
    )


@transaction.atomic
def accept_invitation(*, token: str, user: AbstractBaseUser) -> Membership:
    invitation = open_invitation(token)
    if normalise_email(user.email) != invitation.email:
        raise InvitationError(
            f"This invitation is for {invitation.email}. Log in with that address to accept it."
        )
    workspace = invitation.workspace
    membership, created = Membership.objects.get_or_create(
        user=user, workspace=workspace, defaults={"role": invitation.role}
    )
    if not created and Role.rank(invitation.role) > Role.rank(membership.role):
        membership.role = invitation.role
        membership.save(update_fields=["role"])
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at", "updated_at"])
    return membership


@transaction.atomic
def revoke_invitation(*, workspace: Workspace, invitation: Invitation) -> None:
    Invitation.objects.for_workspace(workspace).filter(pk=invitation.pk).update(
        revoked_at=timezone.now()
    )


def purge_expired_invitations(*, now: datetime | None = None) -> int:
    """Delete invitations whose link expired over 30 days ago, whatever became of them."""
    cutoff = (now or timezone.now()) - timedelta(days=30)
    stale = Invitation.all_workspaces.filter(expires_at__lt=cutoff)
    deleted, _ = stale.delete()
    return deleted


# --- API keys --------------------------------------------------------------------------


@transaction.atomic
def create_api_key(
    *, workspace: Workspace, name: str, created_by: AbstractBaseUser | None
) -> tuple[ApiKey, str]:
    """A new key; the returned secret is the only time anyone sees it."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the key a name, such as “Shop website”."})
    api_key = ApiKey(workspace=workspace, name=name[:50], created_by=created_by)
    secret = ApiKey.objects.assign_key(api_key)
    api_key.full_clean()
    api_key.save()
    return api_key, secret


@transaction.atomic
def revoke_api_key(*, workspace: Workspace, api_key: ApiKey) -> None:
    ApiKey.objects.for_workspace(workspace).filter(pk=api_key.pk).update(
        revoked=True, revoked_at=timezone.now()
    )


def touch_api_key(api_key: ApiKey) -> None:
    """Record use at most once a minute, so busy keys don't write on every request."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < API_KEY_TOUCH_INTERVAL:
        return
    ApiKey.objects.for_workspace(api_key.workspace_id).filter(pk=api_key.pk).update(
        last_used_at=now
    )
    api_key.last_used_at = now


# --- sandbox ---------------------------------------------------------------------------


def prune_sandbox_messages(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.SANDBOX_RETENTION_DAYS)
    deleted, _ = SandboxMessage.all_workspaces.filter(created_at__lt=cutoff).delete()
    return deleted

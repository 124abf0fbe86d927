"""REST endpoints for the workspace itself, its members, invitations and API keys."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from . import services
from .access import get_member_or_404
from .api_base import WorkspaceViewSet
from .models import ApiKey, Invitation, Membership, Role, Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    agency = serializers.CharField(source="agency.name", read_only=True, default=None)

    class Meta:
        model = Workspace
        fields = [
            "id",
            "name",
            "slug",
            "agency",
            "timezone",
            "default_from_name",
            "default_from_email",
            "postal_address",
            "created_at",
        ]
        read_only_fields = ["slug", "created_at"]


class WorkspaceSettingsViewSet(WorkspaceViewSet):
    """GET and PATCH /workspace/: the workspace the request is in."""

    serializer_class = WorkspaceSerializer
    write_role = Role.ADMIN

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[Workspace]:
        # The request's own workspace, already resolved from the key or membership; no id
        # from the request is involved.
        return Workspace.objects.filter(pk=workspace.pk)

    def retrieve(self, request: Request, **kwargs: Any) -> Response:
        return Response(WorkspaceSerializer(request.workspace).data)

    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        serializer = WorkspaceSerializer(request.workspace, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_workspace_settings(workspace=request.workspace, **serializer.validated_data)
        return Response(WorkspaceSerializer(request.workspace).data)


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "created_at"]


class RoleInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberViewSet(mixins.ListModelMixin, WorkspaceViewSet):
    """Direct members of the workspace: list, change role (PATCH), remove (DELETE)."""

    serializer_class = MemberSerializer
    write_role = Role.ADMIN
    ordering = "created_at"

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[Membership]:
        return Membership.objects.filter(workspace=workspace).select_related("user")

    def partial_update(self, request: Request, public_id: str, **kwargs: Any) -> Response:
        member = get_member_or_404(request.workspace, public_id)
        data = RoleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.change_member_role(
            workspace=request.workspace,
            membership=member,
            role=data.validated_data["role"],
            acting_role=request.workspace_role,
        )
        return Response(MemberSerializer(member).data)

    def destroy(self, request: Request, public_id: str, **kwargs: Any) -> Response:
        member = get_member_or_404(request.workspace, public_id)
        services.remove_member(
            workspace=request.workspace, membership=member, acting_role=request.workspace_role
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "expires_at", "accepted_at", "revoked_at", "created_at"]
        read_only_fields = ["expires_at", "accepted_at", "revoked_at", "created_at"]


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    serializer_class = InvitationSerializer
    model = Invitation
    write_role = Role.ADMIN
    ordering = "-created_at"

    def create(self, request: Request, **kwargs: Any) -> Response:
        data = InvitationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invite_member(
            workspace=request.workspace,
            invited_by=request.user if not isinstance(request.auth, ApiKey) else None,
            acting_role=request.workspace_role,
            **data.validated_data,
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        services.revoke_invitation(workspace=request.workspace, invitation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.CharField(max_length=50)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created", "last_used_at", "revoked", "revoked_at"]
        read_only_fields = ["prefix", "created", "last_used_at", "revoked", "revoked_at"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Keys are listed by prefix; the secret is in the create response and nowhere else."""

    serializer_class = ApiKeySerializer
    model = ApiKey
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    ordering = "-created"

    def create(self, request: Request, **kwargs: Any) -> Response:
        data = ApiKeySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, secret = services.create_api_key(
            workspace=request.workspace,
            name=data.validated_data["name"],
            created_by=request.user if not isinstance(request.auth, ApiKey) else None,
        )
        body = {**ApiKeySerializer(api_key).data, "key": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        services.revoke_api_key(workspace=request.workspace, api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

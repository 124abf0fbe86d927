"""The REST API's routes, mounted twice by config.urls (with and without a workspace slug)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from campaigns import api as campaigns_api
from campaigns import transactional_api
from contacts import api as contacts_api
from contacts.segments import api as segments_api
from workspaces import api as workspace_api

router = SimpleRouter(use_regex_path=False)
router.register("members", workspace_api.MemberViewSet, basename="member")
router.register("invitations", workspace_api.InvitationViewSet, basename="invitation")
router.register("api-keys", workspace_api.ApiKeyViewSet, basename="api-key")
router.register("contacts", contacts_api.ContactViewSet, basename="contact")
router.register("tags", contacts_api.TagViewSet, basename="tag")
router.register("custom-fields", contacts_api.CustomFieldViewSet, basename="custom-field")
router.register("personas", contacts_api.PersonaViewSet, basename="persona")
router.register("stages", contacts_api.StageViewSet, basename="stage")
router.register("segments", segments_api.SegmentViewSet, basename="segment")
router.register("templates", campaigns_api.EmailTemplateViewSet, basename="email-template")
router.register("messages", transactional_api.MessageViewSet, basename="message")

urlpatterns = [
    path(
        "workspace/",
        workspace_api.WorkspaceSettingsViewSet.as_view(
            {"get": "retrieve", "patch": "partial_update"}
        ),
        name="workspace",
    ),
    path(
        "brand-kit/",
        campaigns_api.BrandKitViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="brand-kit",
    ),
    path(
        "brand-kit/logo/",
        campaigns_api.BrandLogoViewSet.as_view(
            {"put": "upload", "post": "upload", "delete": "remove"}
        ),
        name="brand-kit-logo",
    ),
    *router.urls,
]

from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    verbose_name = "Contacts and events"

    def ready(self) -> None:
        from workspaces.signals import workspace_created

        from .services import ensure_default_stages

        def seed_stages(sender, workspace, **kwargs):  # type: ignore[no-untyped-def]
            ensure_default_stages(workspace=workspace)

        workspace_created.connect(seed_stages, dispatch_uid="contacts.seed_stages", weak=False)

from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    verbose_name = "Contacts and events"

    def ready(self) -> None:
        from workspaces.navigation import register_section
        from workspaces.signals import demo_workspaces_seeded, workspace_created

        from .demo import seed_demo_audiences
        from .segments import membership, tasks  # noqa: F401 (tasks: registers them)
        from .services import ensure_default_stages
        from .signals import contacts_changed, events_recorded

        def seed_stages(sender, workspace, **kwargs):  # type: ignore[no-untyped-def]
            ensure_default_stages(workspace=workspace)

        workspace_created.connect(seed_stages, dispatch_uid="contacts.seed_stages", weak=False)
        register_section("contacts", "contact_list")
        register_section("forms", "signup_forms")
        register_section("segments", "segment_list")
        demo_workspaces_seeded.connect(seed_demo_audiences, dispatch_uid="contacts.demo")
        contacts_changed.connect(membership.on_contacts_changed, dispatch_uid="segments.contacts")
        events_recorded.connect(membership.on_events_recorded, dispatch_uid="segments.events")

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Templates and campaigns"

    def ready(self) -> None:
        from workspaces.navigation import register_section
        from workspaces.signals import demo_workspaces_seeded

        from .demo import seed_demo_templates

        register_section("templates", "template_list")
        demo_workspaces_seeded.connect(seed_demo_templates, dispatch_uid="campaigns.demo")

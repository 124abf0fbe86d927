from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Templates and campaigns"

    def ready(self) -> None:
        from workspaces.navigation import register_section

        register_section("templates", "template_list")

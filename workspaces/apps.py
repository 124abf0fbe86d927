from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "workspaces"
    verbose_name = "Tenancy and accounts"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the start-up checks)
        from .navigation import register_section

        register_section("home", "dashboard")
        register_section("sandbox", "sandbox_inbox")
        register_section("settings", "settings")

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

        from contacts.signals import subscription_changed

        from .sending import outgoing
        from .signals import message_event_recorded

        subscription_changed.connect(
            outgoing.on_subscription_changed, dispatch_uid="campaigns.webhooks.subscription"
        )
        message_event_recorded.connect(
            outgoing.on_message_event, dispatch_uid="campaigns.webhooks.message_event"
        )

        from anymail.signals import tracking

        from contacts.timeline import register_timeline_source

        from .message_log import email_timeline
        from .sending import webhooks

        tracking.connect(webhooks.on_tracking, dispatch_uid="campaigns.esp_tracking")
        register_timeline_source(email_timeline)

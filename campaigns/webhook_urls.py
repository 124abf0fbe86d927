"""ESP tracking webhooks, mounted at /anymail/ by config.urls: Anymail's paths and names
(`anymail:<esp>_tracking_webhook`), served by the workspace-authenticating views of
campaigns.webhook_views. Anymail's inbound views are not mounted (Mailpath receives no
mail). Outgoing webhooks (the workspace's own subscriptions) are campaigns.outgoing_urls."""

from django.urls import path

from . import webhook_views as views

app_name = "anymail"
urlpatterns = [
    path(
        "amazon_ses/tracking/",
        views.AmazonSesTracking.as_view(),
        name="amazon_ses_tracking_webhook",
    ),
    path("brevo/tracking/", views.BrevoTracking.as_view(), name="brevo_tracking_webhook"),
    path("mailgun/tracking/", views.MailgunTracking.as_view(), name="mailgun_tracking_webhook"),
    path("mailjet/tracking/", views.MailjetTracking.as_view(), name="mailjet_tracking_webhook"),
    path("postmark/tracking/", views.PostmarkTracking.as_view(), name="postmark_tracking_webhook"),
    path("resend/tracking/", views.ResendTracking.as_view(), name="resend_tracking_webhook"),
    path("sendgrid/tracking/", views.SendGridTracking.as_view(), name="sendgrid_tracking_webhook"),
    path(
        "sparkpost/tracking/",
        views.SparkPostTracking.as_view(),
        name="sparkpost_tracking_webhook",
    ),
]

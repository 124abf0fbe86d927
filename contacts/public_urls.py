"""Public signup form pages, mounted at the site root by config.urls (no login)."""

from django.urls import path

from . import public_views

urlpatterns = [
    path("f/<uuid:form_id>/", public_views.hosted_form, name="signup_form_hosted"),
    path("f/<uuid:form_id>/embed/", public_views.embed_fragment, name="signup_form_embed"),
    path(
        "f/<uuid:form_id>/confirm/<str:token>/",
        public_views.confirm,
        name="signup_form_confirm",
    ),
]

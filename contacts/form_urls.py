"""The signup form builder, under /w/<workspace_slug>/forms/."""

from django.urls import path

from . import form_views

urlpatterns = [
    path("forms/", form_views.form_list, name="signup_forms"),
    path("forms/new/", form_views.form_new, name="signup_form_new"),
    path("forms/preview/", form_views.form_preview, name="signup_form_preview"),
    path("forms/<uuid:form_id>/", form_views.form_edit, name="signup_form_edit"),
    path("forms/<uuid:form_id>/active/", form_views.form_set_active, name="signup_form_active"),
    path("forms/<uuid:form_id>/delete/", form_views.form_delete, name="signup_form_delete"),
]

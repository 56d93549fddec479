from django.urls import path

from django_app import views

urlpatterns = [
    path("api/v2/users/<int:user_id>", views.user),
    path("api/v2/users/<int:user_id>/activate", views.activate_user),
    path("api/v2/reports", views.generate_report),
    path("api/v2/reports/<str:report_id>", views.read_report),
    path("operations/<str:job_id>", views.read_operation),
    path("api/v2/countries", views.list_countries),
    path("legacy/login", views.legacy_login),
]

"""Minimal settings: no database, no sessions; run with
DJANGO_SETTINGS_MODULE=django_app.settings gunicorn --chdir examples django_app.wsgi:application"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "django_app.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
DATABASES: dict[str, dict[str, str]] = {}

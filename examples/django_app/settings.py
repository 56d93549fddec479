"""Minimal settings: no database, no sessions. Run (from the checkout, after `make dev` or
`.venv/bin/pip install -e '.[django]' gunicorn`):
    .venv/bin/gunicorn --chdir examples django_app.wsgi:application -b 127.0.0.1:8083"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "django_app.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
DATABASES: dict[str, dict[str, str]] = {}

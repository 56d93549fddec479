"""WSGI entry point: the toolkit's middlewares around Django (outermost first:
guard -> rule table -> conditional -> Django)."""

import os
from pathlib import Path

from django.core.wsgi import get_wsgi_application

from redirectory.toolkit.ruletable import RuleTable
from redirectory.toolkit.wsgi import ConditionalMiddleware, GuardMiddleware, RedirectMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")

RULES = os.environ.get("REDIRECTORY_RULES", str(Path(__file__).parent.parent / "redirects.yaml"))
DATABASE = os.environ.get("REDIRECTORY_DATABASE")
table = RuleTable(store=DATABASE, poll_interval=0.2) if DATABASE else RuleTable(RULES)

application = GuardMiddleware(RedirectMiddleware(ConditionalMiddleware(get_wsgi_application()), table),
                              mode="rewrite")

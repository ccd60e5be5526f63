"""WSGI entry point (gunicorn forge_site.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge_site.settings")
application = get_wsgi_application()

# Everything loaded so far (Django, DRF, the apps, their URL maps and templates) lives as long as the process.
# Freezing it keeps the cyclic garbage collector from re-walking those objects on every full collection, which
# was where the slowest list requests spent their time (docs/performance.md).
gc.freeze()

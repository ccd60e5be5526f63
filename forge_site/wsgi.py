"""WSGI entry point (gunicorn forge_site.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from forge_site.observability.tracing import tracing_install_web

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge_site.settings")
tracing_install_web()  # only with OTEL_EXPORTER_OTLP_ENDPOINT set; before the handler loads its middleware
application = get_wsgi_application()

# Import now what the first request would import: the URLconf, and through it every view, serializer and service
# module, with DRF, drf-spectacular and the Redis, Celery and database clients they use. It all lives as long as the
# process, and only what exists before gc.freeze() is spared from the collector.
get_resolver().url_patterns  # noqa: B018  (the property imports the URLconf)

# Everything loaded so far lives as long as the process. Freezing it keeps the cyclic garbage collector from
# re-walking those objects on every full collection, which was where the slowest list requests spent their time
# (docs/performance.md).
gc.freeze()

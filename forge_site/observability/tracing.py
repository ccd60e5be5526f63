"""OpenTelemetry traces, only when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set: otherwise nothing is
imported or installed and a request pays nothing.

- web (forge_site/wsgi.py): Django's instrumentation (a server span per request) and Celery's (a producer span per
  job message, whose context travels in the message's headers);
- worker (forge_site/celery.py, each pool process at worker_process_init): Celery's instrumentation, so a job's task
  span continues the trace of the request that queued it;
- sandbox: `sandbox_span()` around a sandboxed run in the worker, and `traceparent()` to hand the context to the
  child (the job sandbox gets it in its request, the inspection child in the TRACEPARENT environment variable).

The exporter is OTLP over HTTP (protobuf), configured by the standard OTEL_* variables (endpoint, headers, timeout,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_* for the batch processor).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import forge_site.logs

logger = logging.getLogger(__name__)

_installed: set[str] = set()


def tracing_enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _provider(service_name: str) -> None:
    """The SDK's tracer provider with a batching OTLP/HTTP exporter, once per process."""
    if "provider" in _installed:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _installed.add("provider")
    forge_site.logs.trace_ids = _current_trace_ids  # JSON log lines name the span they were written in


def _current_trace_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def tracing_install_web(*, service_name: str = "forge-web") -> bool:
    """Before the WSGI handler loads its middleware (Django's instrumentation adds one). False when tracing is off."""
    if not tracing_enabled():
        return False
    _provider(service_name)
    if "django" not in _installed:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument()
        CeleryInstrumentor().instrument()
        _installed.add("django")
    return True


def tracing_install_worker(*, service_name: str = "forge-worker", **signal_kwargs: Any) -> bool:
    """In each Celery pool process (worker_process_init): after the fork, so the exporter's thread is this process's."""
    if not tracing_enabled():
        return False
    _provider(service_name)
    if "celery" not in _installed:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()
        _installed.add("celery")
    return True


@contextlib.contextmanager
def sandbox_span(name: str, **attributes: str | int | float | bool) -> Iterator[None]:
    """A span around a sandboxed run in the worker (loading and running the model happen in the child, so this is
    where an operator sees that time); nothing when tracing is off."""
    if "provider" not in _installed:
        yield
        return
    from opentelemetry import trace

    with trace.get_tracer("forge.sandbox").start_as_current_span(name, attributes=attributes):
        yield


def traceparent() -> str:
    """The W3C traceparent of the current span ("" when tracing is off or no span is current)."""
    if "provider" not in _installed:
        return ""
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent", "")

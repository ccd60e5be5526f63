"""Forge's serving process: predict (and assign, outcomes) for rollouts, as a lean WSGI application under gunicorn.

    gunicorn rollouts.serving.app:application -c rollouts/serving/gunicorn_conf.py     (the Procfile's `serve:`)

The console's web process never loads an artifact; this process does, and nothing else. A predict request is:
token (cached, forge_site.tokens) → machine rate limit (forge_site.throttles) → rollout configuration (cached,
refreshed when its revision changes) → sticky assignment (rollouts.routing) → inputs checked against the arm's
input spec → the arm's TorchScript model on a thread with a deadline → request id (rollouts.request_ids) → counts in
memory and one log entry in a buffer → the answer. No Django middleware, URL resolver or DRF view on that path;
Django is there for the ORM and the services the background threads call.

A challenger that raises, times out or cannot be loaded falls back to the champion for that request and counts as a
challenger error (with a fallback). A call past the deadline leaves a thread stuck in the model: the worker answers,
then retires (gunicorn's master replaces it), see rollouts/serving/deadline.py and docs/architecture.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge_site.settings")
django.setup()

import torch  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from forge_site.observability import serving_observe  # noqa: E402
from forge_site.observability.views import metrics_wsgi_app  # noqa: E402
from forge_site.throttles import MachineThrottle  # noqa: E402
from rollouts import request_ids  # noqa: E402
from rollouts.models import Rollout, RolloutState  # noqa: E402
from rollouts.routing import CHALLENGER, UnitTooLong  # noqa: E402
from rollouts.services.common import RolloutError  # noqa: E402
from rollouts.services.traffic import outcome_record, request_id_key  # noqa: E402
from rollouts.serving.config import (  # noqa: E402
    AuthRefused,
    Caller,
    RolloutConfig,
    RolloutDirectory,
    ServedVersion,
    TokenCache,
)
from rollouts.serving.counters import ServingCounters, writer_name  # noqa: E402
from rollouts.serving.deadline import DeadlineExceeded, DeadlinePool  # noqa: E402
from rollouts.serving.inputs import InputRejected, inputs_sha256, outputs_json, tensors_from  # noqa: E402
from rollouts.serving.loader import ModelCache, ModelUnavailable  # noqa: E402
from rollouts.serving.logsink import InferenceLog, LogEntry  # noqa: E402

logger = logging.getLogger("rollouts.serving")
request_logger = logging.getLogger("rollouts.serving.requests")  # one line per answered predict

ROUTE = re.compile(r"^/api/v1/rollouts/([0-9]{1,18})/(predict|assign|outcomes)/$")
PREDICT_KEYS = frozenset({"unit", "inputs"})
OUTCOME_KEYS = frozenset({"request_id", "success", "value"})
JSON_HEADERS = [("Content-Type", "application/json")]
STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    411: "411 Length Required",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}


class ServingError(Exception):
    """A refusal in the API's error shape."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = list(headers)


class ModelFailed(RuntimeError):
    """The model raised, or returned what has no JSON form."""


class _MachineView:
    throttle_scope = "machine"


class _ThrottleSubject:
    """What forge_site.throttles.MachineThrottle reads of a request: the token and its user."""

    __slots__ = ("_forge_refusal", "auth", "user")

    def __init__(self, caller: Caller) -> None:
        self.auth = caller.token
        self.user = caller.user
        self._forge_refusal: Any = None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _forward(module: Any, tensors: list[torch.Tensor]) -> Any:
    with torch.inference_mode():
        return module(*tensors)


def _torch_thread_setup() -> None:
    torch.set_num_threads(max(1, settings.FORGE_SERVING_TORCH_THREADS))


class _AfterResponse:
    """A response body whose close() (called by the server once the response is sent) runs `then`."""

    def __init__(self, body: bytes, then: Callable[[], None]) -> None:
        self._body, self._then = body, then

    def __iter__(self) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        self._then()


class Serving:
    """One per worker process: caches, counters, the log buffer and the threads that flush them."""

    def __init__(self) -> None:
        self.deadline_s = settings.FORGE_SERVING_DEADLINE_MS / 1000
        self.max_body = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
        self.rollouts = RolloutDirectory(settings.FORGE_SERVING_REFRESH_MS / 1000)
        self.tokens = TokenCache(settings.FORGE_SERVING_TOKEN_CACHE_S)
        self.models = ModelCache(
            settings.FORGE_SERVING_MODEL_CACHE, max_uncompressed=4 * settings.FORGE_MAX_ARTIFACT_BYTES
        )
        self.pool = DeadlinePool(initializer=_torch_thread_setup)
        self.counters = ServingCounters()
        self.log = InferenceLog(
            batch=settings.FORGE_SERVING_LOG_BATCH,
            interval_s=settings.FORGE_SERVING_LOG_FLUSH_MS / 1000,
            capacity=settings.FORGE_SERVING_LOG_BUFFER,
        )
        self.key = request_id_key()
        self.request_log = settings.FORGE_SERVING_REQUEST_LOG
        self.metrics = metrics_wsgi_app()  # this process group's series only (FORGE_METRICS_GROUP=serving)
        self.retire: Callable[[], None] = self._retire_unsupervised
        self.retiring = False
        self._pid = 0
        self._start_lock = threading.Lock()
        self.writer = ""

    # --- process lifecycle ------------------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the flusher threads in this process (once; again in a forked child)."""
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            _torch_thread_setup()
            self.writer = writer_name()
            threading.Thread(target=self._flush_counts_forever, name="forge-serving-counts", daemon=True).start()
            threading.Thread(target=self._flush_log_forever, name="forge-serving-log", daemon=True).start()
            self._pid = os.getpid()

    def _flush_counts_forever(self) -> None:
        interval = settings.FORGE_SERVING_FLUSH_MS / 1000
        while True:
            time.sleep(interval)
            self.counters.flush(self.writer)

    def _flush_log_forever(self) -> None:
        while True:
            self.log.wait()
            self.log.flush()

    def shutdown(self) -> None:
        """Flush what is counted and buffered (gunicorn's worker_exit calls this)."""
        if self._pid != os.getpid():
            return
        self.counters.flush(self.writer)
        self.log.flush()
        if self.log.dropped:
            logger.warning("serving: %d inference log rows were dropped (buffer full)", self.log.dropped)

    def _retire_unsupervised(self) -> None:
        logger.error("serving: a model call is stuck past its deadline; restart this process (no supervisor hook)")

    # --- WSGI ----------------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.ensure_started()
        path = environ.get("PATH_INFO", "")
        match = ROUTE.match(path)
        try:
            if match is None:
                if path == "/healthz":
                    return self._respond(start_response, 200, self.health())
                if path == "/metrics":
                    return self.metrics(environ, start_response)
                raise ServingError(
                    404,
                    "not_found",
                    "This is Forge's serving process: it answers POST /api/v1/rollouts/{id}/predict/, "
                    "GET …/assign/ and POST …/outcomes/; everything else is on the console.",
                )
            rollout_id, operation = int(match.group(1)), match.group(2)
            method = environ.get("REQUEST_METHOD", "GET")
            allowed = "GET" if operation == "assign" else "POST"
            if method != allowed:
                raise ServingError(
                    405, "method_not_allowed", f"{operation} takes {allowed}.", headers=[("Allow", allowed)]
                )
            self._caller(environ)
            if operation == "predict":
                body = self._json_body(environ)
                answer, retire = self.predict(rollout_id, body)
                if retire:
                    return self._respond(start_response, 200, answer, then=self.retire)
                return self._respond(start_response, 200, answer)
            if operation == "assign":
                query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
                units = query.get("unit") or [""]
                return self._respond(start_response, 200, self.assign(rollout_id, units[0] or None))
            status, answer = self.outcome(rollout_id, self._json_body(environ))
            return self._respond(start_response, status, answer)
        except ServingError as exc:
            error = {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}
            return self._respond(start_response, exc.status, error, headers=exc.headers)
        except Exception:
            logger.exception("serving: %s failed", path)
            error = {"error": {"code": "server_error", "message": "The serving process failed.", "field": None}}
            return self._respond(start_response, 500, error)

    def _respond(
        self,
        start_response: Callable[..., Any],
        status: int,
        payload: dict[str, Any],
        headers: Iterable[tuple[str, str]] = (),
        then: Callable[[], None] | None = None,
    ) -> Iterable[bytes]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        start_response(STATUS_TEXT[status], [*JSON_HEADERS, ("Content-Length", str(len(body))), *headers])
        if then is not None:
            return _AfterResponse(body, then)
        return [body]

    def _caller(self, environ: dict[str, Any]) -> Caller:
        try:
            caller = self.tokens.caller(environ.get("HTTP_AUTHORIZATION", ""))
        except AuthRefused as exc:
            headers = [("WWW-Authenticate", 'Bearer realm="forge"')] if exc.status == 401 else []
            raise ServingError(exc.status, exc.code, exc.message, headers=headers) from None
        subject = _ThrottleSubject(caller)
        throttle = MachineThrottle()
        if not throttle.allow_request(subject, _MachineView()):
            refusal = subject._forge_refusal
            wait = max(1, int(throttle.wait() or 1))
            raise ServingError(429, "throttled", refusal.message, headers=[("Retry-After", str(wait))])
        return caller

    def _json_body(self, environ: dict[str, Any]) -> Any:
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type and content_type.split(";")[0].strip().lower() != "application/json":
            raise ServingError(415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json).")
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise ServingError(411, "length_required", "Send a JSON body with its Content-Length.") from None
        if length > self.max_body:
            raise ServingError(413, "too_large", f"The body is {length} bytes; the limit is {self.max_body} bytes.")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            return json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise ServingError(400, "invalid_json", f"The body is not valid JSON: {exc}") from None

    def health(self) -> dict[str, Any]:
        return {
            "status": "retiring" if self.retiring else "ok",
            "pid": os.getpid(),
            "models_loaded": len(self.models),
            "hung_calls": self.pool.hung,
            "log": {
                "pending": self.log.pending(),
                "logged": self.log.logged,
                "dropped": self.log.dropped,
                "unlogged": self.log.unlogged,
            },
        }

    # --- operations ------------------------------------------------------------------------------------------------

    def _config(self, rollout_id: int) -> RolloutConfig:
        config = self.rollouts.get(rollout_id)
        if config is None:
            raise ServingError(404, "not_found", f"There is no rollout #{rollout_id}.")
        if config.refusal:
            raise ServingError(409, "not_routing", config.refusal)
        return config

    def _run(self, version: ServedVersion, inputs: Any) -> tuple[Any, list[torch.Tensor]]:
        """The version's outputs for these inputs (JSON values) and the input tensors; InputRejected for inputs that
        do not fit, ModelUnavailable, ModelFailed or DeadlineExceeded when the model cannot answer."""
        if version.refusal:
            raise ModelUnavailable(version.refusal)
        tensors = tensors_from(inputs, version.decls, label=version.label)
        module = self.models.get(sha256=version.sha256, artifact=version.artifact)
        try:
            output = self.pool.call(self.deadline_s, _forward, module, tensors)
        except DeadlineExceeded:
            raise
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [""])[-1][:300]
            raise ModelFailed(f"{version.label} raised {type(exc).__name__}: {first_line}") from exc
        try:
            outputs = outputs_json(output)
            json.dumps(outputs, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ModelFailed(f"{version.label} returned outputs with no JSON form: {exc}") from exc
        return outputs, tensors

    def predict(self, rollout_id: int, body: Any) -> tuple[dict[str, Any], bool]:
        """The answer to one predict request, and whether this worker must retire after sending it."""
        started = time.perf_counter()
        if not isinstance(body, dict):
            raise ServingError(400, "invalid", 'The body is a JSON object: {"unit": "user-42", "inputs": {…}}.')
        unknown = [key for key in body if key not in PREDICT_KEYS]
        if unknown:
            name = str(unknown[0])[:64]
            raise ServingError(400, "unknown_field", f"{name!r} is not a field of predict (unit, inputs).", name)
        if "inputs" not in body:
            raise ServingError(400, "required", 'inputs is required: {"inputs": {"x": [[…]]}}.', "inputs")
        unit = body.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise ServingError(400, "invalid", "unit must be a string (the id of a user, an account…).", "unit")
        config = self._config(rollout_id)
        try:
            assignment, point = config.router.assign_with_point(unit)
        except UnitTooLong as exc:
            raise ServingError(400, "unit_too_long", str(exc), "unit") from None
        arm = assignment.arm
        version = config.challenger if arm == CHALLENGER else config.champion
        failure = ""
        answered = version
        try:
            try:
                outputs, tensors = self._run(version, body["inputs"])
            except (ModelFailed, DeadlineExceeded, ModelUnavailable) as exc:
                if arm != CHALLENGER:
                    raise
                failure = f"{exc}"
                answered = config.champion
                outputs, tensors = self._run(answered, body["inputs"])
        except InputRejected as exc:
            raise ServingError(400, "invalid_input", exc.message, exc.field) from None
        except (ModelFailed, DeadlineExceeded, ModelUnavailable) as exc:
            latency_ms, _, _ = self._count(config, arm, point, started, error=True, fallback=bool(failure))
            if self.request_log:
                request_logger.warning(
                    "predict rollout #%s %s %s error %.2f ms: %s",
                    rollout_id,
                    arm,
                    answered.version,
                    latency_ms,
                    exc,
                    extra={
                        "rollout": rollout_id,
                        "arm": arm,
                        "version": answered.version,
                        "latency_ms": round(latency_ms, 3),
                        "outcome": "error",
                    },
                )
            if isinstance(exc, DeadlineExceeded):
                raise ServingError(504, "deadline_exceeded", f"{answered.label}: {exc}.") from None
            if isinstance(exc, ModelUnavailable):
                raise ServingError(503, "model_unavailable", str(exc)) from None
            raise ServingError(500, "model_error", str(exc)) from None
        if failure:
            logger.warning("serving: rollout #%s challenger failed, champion answered: %s", rollout_id, failure)
        latency_ms, minute, now = self._count(config, arm, point, started, error=bool(failure), fallback=bool(failure))
        request_id = request_ids.issue(self.key, rollout_id, arm, minute)
        meta: dict[str, Any] = {
            "rollout": rollout_id,
            "arm": arm,
            "version": answered.version,
            "latency_ms": round(latency_ms, 3),
            "input_sha256": inputs_sha256(tensors),
        }
        if failure:
            meta["error"] = failure[:500]
        self.log.append(LogEntry(answered.pk, request_id, now, body["inputs"], outputs, meta))
        if self.request_log:
            outcome = "fallback" if failure else "ok"
            request_logger.info(
                "predict rollout #%s %s %s %s %.2f ms",
                rollout_id,
                arm,
                answered.version,
                outcome,
                latency_ms,
                extra={**meta, "request_id": request_id, "outcome": outcome},
            )
        answer = {
            "outputs": outputs,
            "version": answered.version,
            "arm": arm,
            "request_id": request_id,
            "assignment": assignment.assignment,
            "fallback": bool(failure),
            "rollout": rollout_id,
        }
        retire = self.pool.tainted and not self.retiring
        if retire:
            self.retiring = True
            logger.error("serving: a model call hung past %.0f ms; this worker retires", self.deadline_s * 1000)
        return answer, retire

    def _count(
        self, config: RolloutConfig, arm: str, point: int | None, started: float, *, error: bool, fallback: bool
    ) -> tuple[float, int, float]:
        latency_ms = (time.perf_counter() - started) * 1000
        now = time.time()
        minute = int(now // 60)
        self.counters.record(
            rollout_id=config.rollout_id,
            arm=arm,
            minute=minute,
            latency_ms=latency_ms,
            error=error,
            fallback=fallback,
            share=config.share,
            point=point,
            now=now,
        )
        version = config.challenger if arm == CHALLENGER else config.champion
        serving_observe(
            rollout_id=config.rollout_id, version=version.version, arm=arm, latency_s=latency_ms / 1000, error=error
        )
        return latency_ms, minute, now

    def assign(self, rollout_id: int, unit: str | None) -> dict[str, Any]:
        """The arm for a unit without running a model (a gateway serves it); counted as an assignment."""
        config = self._config(rollout_id)
        try:
            assignment, point = config.router.assign_with_point(unit)
        except UnitTooLong as exc:
            raise ServingError(400, "unit_too_long", str(exc), "unit") from None
        now = time.time()
        minute = int(now // 60)
        self.counters.record(
            rollout_id=rollout_id,
            arm=assignment.arm,
            minute=minute,
            latency_ms=0.0,
            error=False,
            fallback=False,
            share=config.share,
            point=point,
            now=now,
            assignment_only=True,
        )
        version = config.challenger if assignment.arm == CHALLENGER else config.champion
        return {
            "rollout": rollout_id,
            "arm": assignment.arm,
            "version": version.version,
            "assignment": assignment.assignment,
            "request_id": request_ids.issue(self.key, rollout_id, assignment.arm, minute),
            "unit_key": config.unit_key,
            "challenger_share": config.share,
        }

    def outcome(self, rollout_id: int, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            raise ServingError(400, "invalid", 'The body is a JSON object: {"request_id": …, "success": true}.')
        unknown = [key for key in body if key not in OUTCOME_KEYS]
        if unknown:
            name = str(unknown[0])[:64]
            raise ServingError(400, "unknown_field", f"{name!r} is not a field of an outcome.", name)
        close_old_connections()
        rollout = Rollout.objects.filter(pk=rollout_id).first()
        if rollout is None:
            raise ServingError(404, "not_found", f"There is no rollout #{rollout_id}.")
        if rollout.state == RolloutState.DRAFT:
            raise ServingError(409, "not_started", f"Rollout #{rollout_id} has not started: it served nothing.")
        try:
            outcome, created = outcome_record(
                rollout=rollout,
                request_id=body.get("request_id"),
                success=body.get("success"),
                value=body.get("value"),
            )
        except RolloutError as exc:
            raise ServingError(exc.status, exc.code, exc.message, exc.field) from None
        answer = {
            "request_id": outcome.request_id,
            "rollout": rollout_id,
            "arm": outcome.arm,
            "success": outcome.success,
            "value": outcome.value,
            "recorded": created,
        }
        return (201 if created else 200), answer


SERVING = Serving()
application = SERVING

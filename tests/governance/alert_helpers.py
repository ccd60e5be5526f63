"""What the alert tests share: a local webhook receiver (a real HTTP server on 127.0.0.1, in a thread, that records
what arrives and answers from a script), versions to alert on, and a way to run a delivery's attempts in-process."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.utils import timezone

from governance.models import AlertDelivery, DeliveryStatus
from governance.services.alert_delivery import alert_delivery_attempt
from models_registry.models import ModelVersion, RegisteredModel, VersionStatus

HANG = "hang"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver: `answer(...)` scripts the next responses, (status, headers, body) or HANG; after the
    script it answers 200. A HANG holds the connection until `release()` (or the test ends)."""

    server: ThreadingHTTPServer
    scheme: str = "http"
    received: list[Received] = field(default_factory=list)
    script: deque[Any] = field(default_factory=deque)
    hanging: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def answer(self, *responses: Any) -> None:
        self.script.extend(responses)

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def start_receiver(tls: ssl.SSLContext | None = None) -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the test output stays readable
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body, time.time()))
                step = receiver.script.popleft() if receiver.script else (200, {}, b"ok")
            if step == HANG:
                receiver.hanging.set()
                receiver.released.wait(60)
                step = (200, {}, b"late")
            status, headers, payload = step
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (a timeout): nothing to answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver = Receiver(server=server, scheme="https" if tls is not None else "http")
    threading.Thread(target=server.serve_forever, daemon=True, name="test receiver").start()
    return receiver


def make_version(name: str = "credit-risk", version: str = "1.0.0", owner: Any = None) -> ModelVersion:
    """A ready version row (the alert tests need its identity, not an artifact)."""
    model, _ = RegisteredModel.objects.get_or_create(name=name, defaults={"owner": owner})
    return ModelVersion.objects.create(
        model=model,
        version=version,
        status=VersionStatus.READY,
        artifact=f"torchscript/{name}-{version}.pt",
        sha256=hashlib.sha256(f"{name}:{version}".encode()).hexdigest(),
        size=1,
        created_by=owner,
    )


def run_delivery(delivery_id: int, *, max_steps: int = 20) -> AlertDelivery:
    """Run a delivery's attempts here, as the worker would, without waiting out the delays: before each attempt a
    pending delivery's due time is moved to now (the wait itself is what the worker tests cover)."""
    for _ in range(max_steps):
        AlertDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        delay = alert_delivery_attempt(delivery_id)
        delivery = AlertDelivery.objects.get(pk=delivery_id)
        if delivery.status != DeliveryStatus.PENDING:
            return delivery
        if delay is None:
            raise AssertionError(f"delivery {delivery_id} is pending but no attempt was made")
    raise AssertionError(f"delivery {delivery_id} did not finish in {max_steps} attempts")


def verify_signature(secret: str, headers: dict[str, str], body: bytes, *, window_s: int = 300) -> bool:
    """A receiver's check, written here independently of Forge's code: HMAC-SHA256 over b"<timestamp>." + body."""
    timestamp = headers["X-Forge-Timestamp"]
    if abs(time.time() - int(timestamp)) > window_s:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Forge-Signature"])

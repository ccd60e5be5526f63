"""One POST to a destination, to an address that was checked, with every wait bounded.

The connection goes to `address` (already checked by governance.alerting.addresses), while the request names the
URL's host: in the Host header, in TLS's SNI, and in the certificate check. Nothing here resolves a name, follows a
redirect or reads a proxy from the environment. Timeouts: `connect_s` for TCP and TLS, `read_s` for each wait on
the socket, and `total_s` for the whole exchange, enforced by a watchdog that shuts the socket down (a receiver that
trickles its answer a byte at a time never holds a worker longer than `total_s`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from urllib3.connection import HTTPConnection, HTTPSConnection

from governance.alerting.addresses import IPAddress, Target

MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of an answer; a person needs its first lines
EXCERPT_CHARS = 500


@dataclass
class HttpOutcome:
    """What came back: a status (None when there was no answer) or the error that stopped the exchange."""

    status: int | None
    duration_ms: float
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body_excerpt: str = ""
    error: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class Timeouts:
    connect_s: float
    read_s: float
    total_s: float


def post(
    *,
    target: Target,
    address: IPAddress,
    body: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
    ca_file: str | None = None,
) -> HttpOutcome:
    """POST `body` to `target`, connecting to `address`. Never raises for network trouble: it is in the outcome."""
    started = time.monotonic()
    conn: HTTPConnection
    if target.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        conn = HTTPSConnection(
            str(address),
            target.port,
            timeout=timeouts.connect_s,
            server_hostname=target.host,
            assert_hostname=target.host,
            ssl_context=context,
        )
    else:
        conn = HTTPConnection(str(address), target.port, timeout=timeouts.connect_s)
    fired = threading.Event()

    def abort() -> None:
        fired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeouts.total_s, abort)
    watchdog.daemon = True
    watchdog.start()

    def elapsed_ms() -> float:
        return (time.monotonic() - started) * 1000

    try:
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(timeouts.read_s)
        conn.timeout = timeouts.read_s
        conn.request(
            "POST",
            target.target,
            body=body,
            headers={**headers, "Host": target.host_header, "Content-Length": str(len(body))},
            preload_content=False,  # the answer is read below, up to MAX_RESPONSE_BYTES
            decode_content=False,
        )
        response = conn.getresponse()
        data = response.read(MAX_RESPONSE_BYTES) if response.status != 204 else b""
        outcome = HttpOutcome(
            status=response.status,
            duration_ms=elapsed_ms(),
            headers={name.lower(): value for name, value in response.headers.items()},
            body_excerpt=data.decode("utf-8", "replace")[:EXCERPT_CHARS],
        )
    except Exception as exc:  # every way a network exchange fails becomes a logged attempt, never a crash
        outcome = HttpOutcome(status=None, duration_ms=elapsed_ms())
        if fired.is_set():
            outcome.error = f"no complete answer within {timeouts.total_s:g} s (total timeout)"
            outcome.timed_out = True
        elif isinstance(exc, TimeoutError | socket.timeout) or "timed out" in str(exc).lower():
            phase = "connecting" if conn.sock is None else "waiting for the answer"
            limit = timeouts.connect_s if conn.sock is None else timeouts.read_s
            outcome.error = f"timed out {phase} ({limit:g} s)"
            outcome.timed_out = True
        else:
            outcome.error = _describe(exc)
    finally:
        watchdog.cancel()
        with contextlib.suppress(Exception):  # closing a broken connection has nothing left to report
            conn.close()
    return outcome


def _describe(exc: BaseException) -> str:
    """A person's account of a failed exchange (urllib3 wraps the socket's error: look through the chain)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {error.verify_message or error}"
        if type(error).__name__ == "CertificateError":  # urllib3's host name check
            return f"TLS certificate not accepted: {error}"
        if isinstance(error, ssl.SSLError):
            return f"TLS failed: {error}"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, ConnectionResetError):
            return "connection reset by the receiver"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]

"""What a destination receives, per kind: a Slack-compatible incoming-webhook message, a PagerDuty Events API v2
event, or Forge's own JSON document signed with HMAC-SHA256 (headers below; docs/api.md shows a receiver's check).

Signed webhook headers:
    X-Forge-Event: alert.fire | alert.resolve | alert.test
    X-Forge-Delivery: the delivery's id (the same on every retry of one delivery: deduplicate on it)
    X-Forge-Timestamp: Unix time in seconds when this attempt was signed
    X-Forge-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the destination's secret>
A receiver recomputes the HMAC over the raw bytes it received, compares in constant time, and refuses a timestamp
more than REPLAY_WINDOW_S away from its clock, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from typing import Any

SIGNATURE_HEADER = "X-Forge-Signature"
TIMESTAMP_HEADER = "X-Forge-Timestamp"
EVENT_HEADER = "X-Forge-Event"
DELIVERY_HEADER = "X-Forge-Delivery"
SIGNATURE_SCHEME = "sha256"
REPLAY_WINDOW_S = 300

PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}
SLACK_SEVERITY_MARK = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
EVENTS = ("fire", "resolve", "test")


@dataclass(frozen=True)
class Notice:
    """One alert as every destination kind sees it (times as ISO 8601 text, in UTC)."""

    event: str  # fire | resolve | test
    alert_id: int | None
    severity: str
    source: str
    model: str
    version: str
    rule: str
    metric: str
    feature: str
    value: float | None
    threshold: float | None
    comparison: str
    message: str
    dedup_key: str
    fired_at: str
    resolved_at: str
    url: str  # the alert's page in Forge, or ""

    @property
    def subject(self) -> str:
        where = f"{self.model}:{self.version}" if self.version else self.model
        if self.event == "test":
            return "Forge test notification: this destination is reachable"
        state = "RESOLVED" if self.event == "resolve" else self.severity.upper()
        return f"[{state}] {where}: {self.message}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _comparison_text(notice: Notice) -> str:
    if not notice.metric:
        return ""
    feature = f" of {notice.feature}" if notice.feature else ""
    symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}.get(notice.comparison, notice.comparison)
    limit = f" (threshold {symbol} {_number(notice.threshold)})" if notice.threshold is not None else ""
    return f"{notice.metric}{feature} = {_number(notice.value)}{limit}"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn gives &, < and > a meaning; its documentation asks for exactly these three escapes.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notice: Notice) -> dict[str, Any]:
    """An incoming-webhook message: `text` (the notification and fallback) and Block Kit blocks."""
    mark = ":white_check_mark:" if notice.event == "resolve" else SLACK_SEVERITY_MARK.get(notice.severity, "")
    text = f"{mark} {_slack_escape(notice.subject)}".strip()
    fields = [
        f"*Model*\n{_slack_escape(notice.model or '-')}",
        f"*Version*\n{_slack_escape(notice.version or '-')}",
        f"*Severity*\n{notice.severity}",
        f"*Source*\n{_slack_escape(notice.source)}",
    ]
    detail = _comparison_text(notice)
    if detail:
        fields.append(f"*Metric*\n{_slack_escape(detail)}")
    if notice.rule:
        fields.append(f"*Rule*\n{_slack_escape(notice.rule)}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[:10]]},
    ]
    if notice.url:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{notice.url}|Open the alert in Forge>"}]}
        )
    return {"text": text, "blocks": blocks}


def pagerduty_body(notice: Notice, *, routing_key: str, dedup_key: str) -> dict[str, Any]:
    """An Events API v2 event: `trigger` for a fire or a test; for a resolve, `resolve` with the routing key and the
    dedup key only."""
    if notice.event == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    details = {k: v for k, v in asdict(notice).items() if v not in ("", None) and k not in ("event", "url")}
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": notice.subject[:PAGERDUTY_SUMMARY_MAX],
            "source": f"forge:{notice.model}:{notice.version}" if notice.version else f"forge:{notice.model or 'test'}",
            "severity": PAGERDUTY_SEVERITY.get(notice.severity, "warning"),
            "timestamp": notice.fired_at,
            "component": notice.model or "forge",
            "group": notice.version or "",
            "class": notice.metric or notice.source,
            "custom_details": details,
        },
        "client": "Forge",
    }
    if notice.url:
        event["client_url"] = notice.url
        event["links"] = [{"href": notice.url, "text": "Alert in Forge"}]
    return event


def webhook_body(notice: Notice, *, delivery_id: int) -> dict[str, Any]:
    """Forge's own document: the event, the delivery id and the alert's fields."""
    alert = asdict(notice)
    event = alert.pop("event")
    alert["id"] = alert.pop("alert_id")
    alert["status"] = "resolved" if event == "resolve" else ("test" if event == "test" else "firing")
    return {"event": f"alert.{event}", "delivery_id": delivery_id, "alert": alert}


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Forge-Signature value: HMAC-SHA256 over b"<timestamp>." + body."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def signed_headers(*, secret: str, timestamp: int, body: bytes, event: str, delivery_id: int) -> dict[str, str]:
    return {
        EVENT_HEADER: f"alert.{event}",
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }

"""What the broker holds: which jobs still have a message waiting in a queue or delivered to a worker.

The reaper asks before re-sending a queued job, so a backlog that merely waits is not sent again (each re-send of
a waiting job added one more message per stale period: 1,837 messages became 8,932 in four runs). Only the Redis
transport can be read this way; with another broker `job_ids_with_messages` answers None and the reaper falls back
to re-sending each queued job at most once per stale period.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

PAGE = 1000  # list entries read per LRANGE, so a long backlog is never read in one reply


def _job_id(message: Any) -> str | None:
    """The job id a task message carries (its first positional argument), or None for another kind of message."""
    try:
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def job_ids_with_messages(queues: Iterable[str], *, delivered_within_s: float) -> set[str] | None:
    """Ids of the jobs that have a message waiting in one of `queues` (any priority), or delivered to a worker that
    has not acknowledged it within the last `delivered_within_s` seconds. A delivery older than that is counted as
    lost: with prefetch 1 a worker holds only the message it is running, whose job is no longer queued, so an old
    unacknowledged delivery of a queued job belongs to a worker that died (Redis would hand it out again only after
    its visibility timeout). None when the broker cannot be read this way, or not at all."""
    from forge_site.celery import app

    found: set[str] = set()
    try:
        with app.connection_for_read() as conn:
            if conn.transport.driver_type != "redis":
                return None
            channel: Any = conn.default_channel
            with channel.conn_or_acquire() as client:
                for queue in set(queues):
                    for priority in channel.priority_steps:
                        key = channel._q_for_pri(queue, priority)
                        start = 0
                        while entries := client.lrange(key, start, start + PAGE - 1):
                            found.update(filter(None, (_job_id(json.loads(entry)) for entry in entries)))
                            start += PAGE
                recent = time.time() - delivered_within_s
                tags = [tag for tag, at in client.zscan_iter(channel.unacked_index_key) if at >= recent]
                for tag in range(0, len(tags), PAGE):
                    for delivered in client.hmget(channel.unacked_key, tags[tag : tag + PAGE]):
                        if delivered is not None:
                            job_id = _job_id(json.loads(delivered)[0])
                            if job_id:
                                found.add(job_id)
    except Exception:  # the broker is down: re-sending would fail too; the reaper's own fallback decides
        logger.warning("could not read the broker's queues", exc_info=True)
        return None
    return found

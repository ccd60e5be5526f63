"""Model calls with a deadline (no Django).

A request thread hands the call to a daemon thread of this pool and waits at most the deadline. A call that
returns in time costs two thread switches; one that does not is abandoned where it hangs (a thread cannot be
killed), the caller gets DeadlineExceeded at once, and the pool remembers it is `tainted`: the serving process then
retires the worker after its response (rollouts.serving.app), so the hung thread dies with its process and
gunicorn's master starts a fresh worker. A hung call therefore costs one worker for at most the deadline plus the
graceful shutdown, never an answer: the caller answers from the champion, or with a 504.

Threads are daemons so that a hung call never holds its process's exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

Call = tuple[Callable[..., Any], tuple[Any, ...], Future]


class DeadlineExceeded(TimeoutError):
    """The call did not return within the deadline; it may still be running on an abandoned thread."""


class DeadlinePool:
    """Runs calls on daemon threads, each waited for at most `deadline_s`; hung threads are replaced, not reused."""

    def __init__(self, *, name: str = "forge-model", initializer: Callable[[], None] | None = None) -> None:
        self._name = name
        self._initializer = initializer
        self._idle: list[queue.SimpleQueue[Call]] = []
        self._lock = threading.Lock()
        self._started = 0
        self.hung = 0  # calls abandoned past their deadline in this process

    @property
    def tainted(self) -> bool:
        """True once a call was abandoned: a thread of this process may be stuck in a model for good."""
        return self.hung > 0

    def _loop(self, inbox: queue.SimpleQueue[Call]) -> None:
        if self._initializer is not None:
            self._initializer()
        while True:
            function, args, future = inbox.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except BaseException as exc:  # the caller decides what a model's exception means
                    future.set_exception(exc)
            del function, args, future
            with self._lock:
                self._idle.append(inbox)

    def _inbox(self) -> queue.SimpleQueue[Call]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self._started += 1
            number = self._started
        inbox: queue.SimpleQueue[Call] = queue.SimpleQueue()
        threading.Thread(target=self._loop, args=(inbox,), name=f"{self._name}-{number}", daemon=True).start()
        return inbox

    def call(self, deadline_s: float, function: Callable[..., Any], *args: Any) -> Any:
        """function(*args) on a pool thread; its result, its exception, or DeadlineExceeded after `deadline_s`."""
        future: Future = Future()
        self._inbox().put((function, args, future))
        try:
            return future.result(timeout=deadline_s)
        except FutureTimeout:
            if future.cancel():  # never started (the thread was slow to wake): nothing hangs
                raise DeadlineExceeded(f"the model did not start within {deadline_s * 1000:.0f} ms") from None
            with self._lock:
                self.hung += 1
            raise DeadlineExceeded(f"the model did not answer within {deadline_s * 1000:.0f} ms") from None

    @property
    def threads(self) -> int:
        return self._started

"""``netpulse up``: more delivery processes while the webhook backlog needs them.

One delivery process is one event loop, one core at full load. When deliveries due now
(``webhooks.store.due_now_count``) stay above ``GROW_AT`` for ``GROW_AFTER`` seconds, the
supervisor starts one more ``netpulse worker webhooks`` (named ``worker-webhooks-2``, ...),
up to one per spare core; when nothing has been due for ``SHRINK_AFTER`` seconds, it stops
the newest extra one. The extras share the work through Redis like any other delivery
process, so starting or stopping one never loses or repeats a delivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from netpulse.webhooks import store

log = logging.getLogger(__name__)

#: Deliveries due now that one process is taken to be behind on.
GROW_AT = 1000
GROW_AFTER = 10.0
SHRINK_AFTER = 60.0
#: Seconds between two looks at the backlog.
LOOK_EVERY = 5.0


class DeliveryScaler:
    def __init__(
        self,
        conn: Any,
        start: Callable[[str], Any],
        stop: Callable[[Any], None],
        max_extra: int,
    ) -> None:
        self.conn = conn
        self._start = start
        self._stop = stop
        self.max_extra = max_extra
        self.extra: list[Any] = []
        self._behind_since: float | None = None
        self._idle_since: float | None = None
        self._last_look = 0.0

    def look(self, now: float | None = None) -> None:
        """Start or stop an extra process if the backlog says so (at most every 5 s)."""
        now = time.monotonic() if now is None else now
        if self.max_extra <= 0 or now - self._last_look < LOOK_EVERY:
            return
        self._last_look = now
        try:
            backlog = store.due_now_count(self.conn, time.time())
        except RedisError as exc:
            log.debug("backlog unknown (%s); no change", exc)
            return
        if backlog >= GROW_AT:
            self._idle_since = None
            self._behind_since = self._behind_since or now
            if now - self._behind_since >= GROW_AFTER and len(self.extra) < self.max_extra:
                name = f"worker-webhooks-{len(self.extra) + 2}"
                log.info("%d webhook deliveries are due: starting %s", backlog, name)
                self.extra.append(self._start(name))
                self._behind_since = now  # give it time before judging again
        elif backlog == 0:
            self._behind_since = None
            self._idle_since = self._idle_since or now
            if self.extra and now - self._idle_since >= SHRINK_AFTER:
                child = self.extra.pop()
                log.info(
                    "no webhook backlog for %.0f s: stopping an extra delivery process",
                    now - self._idle_since,
                )
                self._stop(child)
                self._idle_since = now
        else:
            self._behind_since = None
            self._idle_since = None

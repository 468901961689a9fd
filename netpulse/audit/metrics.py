"""Audit stream metrics for ``GET /metrics``: how full the stream is, and what waits.

The stream drops its oldest records past ``audit.stream_max_len``; an alert on
``netpulse_audit_stream_length / netpulse_audit_stream_max_length > 0.8`` says the archiver
or the store is falling behind before anything is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import ResponseError

from netpulse.audit import stream


class AuditMetricsCollector(Collector):
    def __init__(self, redis: Redis, max_len: int) -> None:
        self.redis = redis
        self.max_len = max_len

    def collect(self) -> Iterator[Metric]:
        length = int(self.redis.xlen(stream.STREAM))
        pending = 0
        try:
            summary: Any = self.redis.xpending(stream.STREAM, stream.GROUP)
            pending = int(summary.get("pending", 0)) if summary else 0
        except ResponseError:  # no group yet: no archiver has started
            pending = 0
        yield GaugeMetricFamily(
            "netpulse_audit_stream_length", "Audit records waiting in Redis", value=length
        )
        yield GaugeMetricFamily(
            "netpulse_audit_stream_max_length",
            "audit.stream_max_len: past it the oldest records are dropped",
            value=self.max_len,
        )
        yield GaugeMetricFamily(
            "netpulse_audit_pending",
            "Audit records an archiver read and has not written yet",
            value=pending,
        )

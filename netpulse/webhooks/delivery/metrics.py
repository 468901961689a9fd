"""Webhook delivery metrics for `GET /metrics`.

The delivery service may run as several processes on several machines, so its counters live in
Redis (``netpulse:wh:stats``) and this collector turns them into Prometheus metrics when
scraped, together with the pending backlog.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import Redis

from netpulse.runtime.redis_conn import redis_text
from netpulse.webhooks import store

LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class WebhookMetricsCollector(Collector):
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        stats = self.redis.hgetall(store.STATS) or {}
        raw = {redis_text(k): redis_text(v) for k, v in stats.items()}

        def count(name: str) -> float:
            return float(raw.get(name, 0))

        attempts = CounterMetricFamily(
            "netpulse_webhook_attempts",
            "Webhook HTTP attempts by outcome",
            labels=["outcome"],
        )
        for outcome in ("success", "retry", "give_up"):
            attempts.add_metric([outcome], count(f"attempts_{outcome}"))
        yield attempts
        yield CounterMetricFamily(
            "netpulse_webhook_deliveries_exhausted",
            "Deliveries that used up their retries",
            value=count("exhausted"),
        )
        yield CounterMetricFamily(
            "netpulse_webhook_refused",
            "Attempts refused by the SSRF guard",
            value=count("refused"),
        )
        notices = CounterMetricFamily(
            "netpulse_webhook_endpoint_notices",
            "Endpoints disabled after failing, and endpoints that delivered again",
            labels=["notice"],
        )
        for notice in ("disabled", "recovered"):
            notices.add_metric([notice], count(f"endpoint_{notice}"))
        yield notices
        yield GaugeMetricFamily(
            "netpulse_webhook_pending",
            "Deliveries waiting for an attempt (backlog)",
            value=float(store.pending_count(self.redis)),
        )
        cumulative = 0.0
        buckets = []
        for bound in LATENCY_BUCKETS:
            cumulative += count(f"latency_le_{bound}")
            buckets.append((str(bound), cumulative))
        cumulative += count("latency_le_inf")
        buckets.append(("+Inf", cumulative))
        yield HistogramMetricFamily(
            "netpulse_webhook_attempt_latency_seconds",
            "Latency of webhook attempts",
            buckets=buckets,
            sum_value=count("latency_sum"),
        )

"""The endpoints a process matches events against, re-read only when they changed.

Every process that records events (device workers, the detached follower, the delivery
service for ``endpoint.*`` notices) asks :func:`current` per event. That costs one ``GET`` of
``endpoints:version``; the endpoints themselves are read and validated again only when an
endpoint or its state changed, so a new subscription takes effect with the next event, on
every machine, without a restart.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from redis import Redis
from redis.client import Pipeline

from netpulse.config import Settings, get_settings
from netpulse.models.endpoint import EndpointSpec
from netpulse.security.sealing import SealError, open_webhook_dict, seal_webhook
from netpulse.webhooks import store

log = logging.getLogger(__name__)

SETTINGS, API = "settings", "api"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as recording uses it: its spec (secrets sealed) and what each of its
    deliveries stores, computed once per load."""

    spec: EndpointSpec
    source: str
    #: the webhook config a delivery to it keeps (JSON, secrets sealed)
    webhook_json: str = field(repr=False)
    origin: str

    @property
    def id(self) -> str:
        assert self.spec.id is not None
        return self.spec.id

    @classmethod
    def of(cls, spec: EndpointSpec, source: str) -> Endpoint:
        sealed = seal_webhook(spec)
        return cls(
            spec=sealed,
            source=source,
            webhook_json=json.dumps(sealed.webhook().private_dump()),
            origin=store.origin_of(spec.url),
        )


@dataclass(frozen=True)
class Directory:
    version: bytes | None
    endpoints: tuple[Endpoint, ...]

    def get(self, endpoint_id: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.id == endpoint_id), None)

    def matching(
        self,
        event_type: str,
        host: str | None = None,
        strategy: str | None = None,
        submitted_by: str | None = None,
        always: tuple[str, ...] = (),
    ) -> list[Endpoint]:
        """The endpoints this event goes to: those whose filters want it, and those named
        in ``always`` (the operator's notification endpoint for ``endpoint.*``)."""
        return [
            e
            for e in self.endpoints
            if e.id in always or e.spec.wants(event_type, host, strategy, submitted_by)
        ]


def settings_endpoints(settings: Settings) -> list[Endpoint]:
    """The settings file's endpoints; one turned off there (``enabled: false``) gets nothing."""
    return [Endpoint.of(spec, SETTINGS) for spec in settings.webhooks.endpoints if spec.enabled]


def parse_stored(endpoint_id: str, raw: bytes | str) -> EndpointSpec | None:
    """An API-made endpoint as stored; None (and a log line) if this version cannot read it."""
    try:
        return EndpointSpec.model_validate(open_webhook_dict(json.loads(raw)))
    except (ValidationError, ValueError, SealError) as exc:
        log.error(
            "webhook endpoint %s is stored in a form this version cannot read; it receives "
            "nothing until it is fixed (PATCH or DELETE): %s",
            endpoint_id,
            exc.errors(include_input=False, include_url=False)
            if isinstance(exc, ValidationError)
            else exc,
        )
        return None


def _build(version: bytes | None, stored: dict[Any, Any], settings: Settings) -> Directory:
    endpoints = settings_endpoints(settings)
    for raw_id, raw in sorted(stored.items()):
        endpoint_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        spec = parse_stored(endpoint_id, raw)
        if spec is not None:
            endpoints.append(Endpoint.of(spec, API))
    return Directory(version, tuple(endpoints))


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.directory: Directory | None = None
        self.settings_id = 0


_CACHES: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()


def plain(conn: Redis) -> Redis:
    """A client that runs commands now: a pipeline's own pool (events are often recorded
    into a pipeline the caller executes). Kept on the pool object, so it goes with it."""
    if not isinstance(conn, Pipeline):
        return conn
    pool = conn.connection_pool
    client: Redis | None = getattr(pool, "_netpulse_plain_client", None)
    if client is None:
        client = Redis(connection_pool=pool)
        pool._netpulse_plain_client = client  # type: ignore[attr-defined]
    return client


def current(conn: Redis, settings: Settings | None = None) -> Directory:
    """The endpoints now (one ``GET`` when nothing changed)."""
    settings = settings or get_settings()
    client = plain(conn)
    cache = _CACHES.get(client.connection_pool)
    if cache is None:
        cache = _CACHES.setdefault(client.connection_pool, _Cache())
    version = client.get(store.ENDPOINTS_VERSION)
    found = cache.directory
    if found is not None and found.version == version and cache.settings_id == id(settings):
        return found
    with cache.lock:
        pipe = client.pipeline(transaction=True)
        pipe.get(store.ENDPOINTS_VERSION)
        pipe.hgetall(store.ENDPOINTS)
        version, stored = pipe.execute()
        cache.directory = _build(version, stored, settings)
        cache.settings_id = id(settings)
        return cache.directory


def bump_version(conn: Any) -> Any:
    """Tell every process to re-read the endpoints (queue it in a pipeline or run it)."""
    return conn.incr(store.ENDPOINTS_VERSION)

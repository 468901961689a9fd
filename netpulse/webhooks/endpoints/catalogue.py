"""Create, read, change and delete endpoints (``/webhooks/endpoints``).

API-made endpoints are kept in Redis (``endpoints``, secrets sealed); the settings file's
are read-only here except for being enabled and disabled. Every change raises
``endpoints:version``, so the next event in any process sees it. What the API shows never
holds a secret: header and cookie names without values, the basic-auth user without its
password, whether a signing secret is set.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from typing import Any

from pydantic import ValidationError
from redis import Redis

from netpulse.config import Settings
from netpulse.errors import Conflict, NotFound, Unprocessable
from netpulse.models.endpoint import EndpointPatch, EndpointSpec
from netpulse.models.events import DEFAULT_SUBSCRIPTION, EVENT_TYPES, matches_type
from netpulse.security.sealing import open_webhook, seal_webhook
from netpulse.webhooks import payload, store
from netpulse.webhooks.endpoints import directory, health
from netpulse.webhooks.endpoints.directory import API, SETTINGS, Endpoint

#: Fields a settings-file endpoint lets the API change.
SETTINGS_MUTABLE = frozenset({"enabled"})


class EndpointNotFound(NotFound):
    pass


def _not_found(endpoint_id: str) -> EndpointNotFound:
    return EndpointNotFound(f"no webhook endpoint {endpoint_id!r}")


def view(endpoint: Endpoint, state: health.Health) -> dict[str, Any]:
    """An endpoint as the API shows it: its settings without secrets, and its health."""
    spec = endpoint.spec
    data = spec.model_dump(
        mode="json", exclude={"headers", "cookies", "auth", "secret", "events", "enabled"}
    )
    data["url"] = spec.public_url()
    data["headers"] = sorted(spec.headers or {})
    data["cookies"] = sorted(spec.cookies or {})
    data["auth_username"] = spec.auth[0] if spec.auth is not None else None
    data["has_secret"] = spec.secret is not None
    data["source"] = endpoint.source
    data["enabled"] = state.enabled
    data["health"] = asdict(state)
    return data


def _all(conn: Redis, settings: Settings) -> list[Endpoint]:
    settings_made = [Endpoint.of(spec, SETTINGS) for spec in settings.webhooks.endpoints]
    stored = conn.hgetall(store.ENDPOINTS)
    api_made = []
    for raw_id, raw in sorted(stored.items()):
        endpoint_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        spec = directory.parse_stored(endpoint_id, raw)
        if spec is not None:
            api_made.append(Endpoint.of(spec, API))
    return settings_made + api_made


def list_views(conn: Redis, settings: Settings) -> list[dict[str, Any]]:
    endpoints = _all(conn, settings)
    states = health.read(conn, [e.id for e in endpoints])
    return [view(e, states[e.id]) for e in endpoints]


def _find(conn: Redis, endpoint_id: str, settings: Settings) -> Endpoint:
    for spec in settings.webhooks.endpoints:
        if spec.id == endpoint_id:
            return Endpoint.of(spec, SETTINGS)
    raw = conn.hget(store.ENDPOINTS, endpoint_id)
    stored = directory.parse_stored(endpoint_id, raw) if raw is not None else None
    if stored is None:
        raise _not_found(endpoint_id)
    return Endpoint.of(stored, API)


def get_view(conn: Redis, endpoint_id: str, settings: Settings) -> dict[str, Any]:
    endpoint = _find(conn, endpoint_id, settings)
    return view(endpoint, health.read(conn, [endpoint_id])[endpoint_id])


def subscribed_types(spec: EndpointSpec) -> list[str]:
    """The event types an endpoint receives (its template must render for each)."""
    if spec.event_types is None:
        return [t for t in EVENT_TYPES if t in DEFAULT_SUBSCRIPTION]
    return [t for t in EVENT_TYPES if any(matches_type(p, t) for p in spec.event_types)]


def _check_template(spec: EndpointSpec) -> None:
    if spec.template is None:
        return
    try:
        payload.check(spec.template, subscribed_types(spec))
    except payload.PayloadTemplateError as exc:
        raise Unprocessable(f"template: {exc}") from None


def _store(conn: Redis, spec: EndpointSpec, new: bool) -> None:
    assert spec.id is not None
    sealed = seal_webhook(spec)
    data = sealed.private_dump()
    data.pop("events", None)
    pipe = conn.pipeline(transaction=True)
    if new:
        pipe.hsetnx(store.ENDPOINTS, spec.id, json.dumps(data))
    else:
        pipe.hset(store.ENDPOINTS, spec.id, json.dumps(data))
    directory.bump_version(pipe)
    created, _ = pipe.execute()
    if new and not created:
        raise Conflict(f"a webhook endpoint {spec.id!r} exists already")


def create(conn: Redis, spec: EndpointSpec, settings: Settings) -> dict[str, Any]:
    """Add an endpoint (``enabled: false`` creates it disabled: its events are held)."""
    endpoint_id = spec.id or f"ep_{uuid.uuid4().hex[:16]}"
    if any(s.id == endpoint_id for s in settings.webhooks.endpoints):
        raise Conflict(f"the settings file defines a webhook endpoint {endpoint_id!r}")
    spec = spec.model_copy(update={"id": endpoint_id})
    _check_template(spec)
    _store(conn, spec, new=True)
    if not spec.enabled:
        health.disable(conn, endpoint_id, "created disabled")
    return get_view(conn, endpoint_id, settings)


def update(
    conn: Redis,
    endpoint_id: str,
    patch: EndpointPatch,
    settings: Settings,
    validate: Any,
) -> dict[str, Any]:
    """Change the fields given; secrets not given are kept. ``enabled`` false holds new
    events; true sends the held ones (``replay_held``) or marks them failed.
    ``validate(data)`` turns the merged fields into an :class:`EndpointSpec` (the API
    passes its plugin-checking validation)."""
    endpoint = _find(conn, endpoint_id, settings)
    changes = patch.changes()
    if "id" in changes and changes["id"] != endpoint_id:
        raise Unprocessable("an endpoint's id cannot be changed")
    if endpoint.source == SETTINGS and set(changes) - SETTINGS_MUTABLE:
        raise Conflict(
            f"webhook endpoint {endpoint_id!r} is defined in the settings file: change it "
            "there (the API may only enable or disable it)"
        )
    spec = endpoint.spec
    if endpoint.source == API and set(changes) - {"enabled"}:
        merged = {**open_webhook(spec).private_dump(), **changes, "id": endpoint_id}
        try:
            spec = validate(merged)
        except ValidationError as exc:
            raise Unprocessable(_first_error(exc)) from None
        _check_template(spec)
        _store(conn, spec, new=False)
    state = health.read(conn, [endpoint_id])[endpoint_id]
    wanted = changes.get("enabled")
    if wanted is False and state.enabled:
        health.disable(conn, endpoint_id, "disabled by an operator")
    elif wanted is True and not state.enabled:
        fresh = Endpoint.of(spec, endpoint.source)
        health.enable(conn, endpoint_id, patch.replay_held, fresh.webhook_json, spec.public_url())
    elif wanted is not None and not isinstance(wanted, bool):
        raise Unprocessable("enabled must be true or false")
    return get_view(conn, endpoint_id, settings)


def delete(conn: Redis, endpoint_id: str, settings: Settings) -> None:
    endpoint = _find(conn, endpoint_id, settings)
    if endpoint.source == SETTINGS:
        raise Conflict(
            f"webhook endpoint {endpoint_id!r} is defined in the settings file: remove it there"
        )
    conn.hdel(store.ENDPOINTS, endpoint_id)
    health.forget(conn, endpoint_id)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])

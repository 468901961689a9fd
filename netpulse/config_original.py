"""The original NetPulse's ``config.yaml``, read as ours.

A team moving over keeps its configuration file: each setting the original names differently
is read under our name, with one deprecation line at start naming the new key; each setting
we have no use for is named in one line too, so nothing is ignored silently. The table in
docs/configuration.md is this module's :data:`RENAMED` and :data:`NOT_USED`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

#: original key -> our key (dotted paths).
RENAMED: dict[str, str] = {
    "server.api_key_name": "server.api_key_header",
    "job.timeout": "job.execution_timeout",
    "worker.scheduler": "node.scheduler",
    "worker.pinned_per_node": "node.capacity",
    "log.level": "log_level",
}

#: original keys with no meaning here, and why.
NOT_USED: dict[str, str] = {
    "server.gunicorn_worker": "the controller runs one uvicorn process; start more behind a "
    "load balancer",
    "worker.ttl": "worker heartbeats are fixed (10 s)",
    "redis.timeout": "Redis timeouts are built in",
    "redis.keepalive": "Redis keepalive is built in",
    "redis.key": "key names are fixed (docs/architecture.md)",
    "plugin": "plugins are found in netpulse/plugins/<kind>/ and through entry points",
    "log.config": "logging is configured by log_level",
    "credential": "credential providers are set up under credentials.<provider> "
    "(docs/credentials.md)",
}

#: original ``redis`` keys, turned into one ``redis.url``.
_REDIS_PARTS = ("host", "port", "password", "tls", "sentinel")


def translate(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data`` (a parsed YAML file) with the original's settings under our names, and one
    notice per original setting found. A key given in both forms keeps ours."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    notices: list[str] = []
    for old, new in RENAMED.items():
        found, value = _pop(data, old)
        if not found:
            continue
        if _has(data, new):
            notices.append(f"{old} (the original NetPulse's name) is ignored: {new} is set too")
            continue
        _put(data, new, value)
        notices.append(f"{old} is the original NetPulse's name; read as {new} (rename it)")
    for old, why in NOT_USED.items():
        found, _ = _pop(data, old)
        if found:
            notices.append(f"{old} (original NetPulse) is not used: {why}")
    redis = data.get("redis")
    if isinstance(redis, dict) and any(k in redis for k in _REDIS_PARTS):
        parts = {k: redis.pop(k) for k in _REDIS_PARTS if k in redis}
        if "url" in redis:
            notices.append("redis.host/port/... (original NetPulse) are ignored: redis.url is set")
        else:
            redis["url"] = _redis_url(parts)
            notices.append(
                "redis.host/port/password/tls/sentinel are the original NetPulse's; read as "
                "redis.url (set redis.url instead)"
            )
        if isinstance(parts.get("tls"), dict) and any(
            parts["tls"].get(k) for k in ("ca", "cert", "key")
        ):
            notices.append(
                "redis.tls.ca/cert/key (original NetPulse) are not used: give them "
                "in redis.url as ssl_ca_certs/ssl_certfile/ssl_keyfile"
            )
    return data, notices


def _redis_url(parts: dict[str, Any]) -> str:
    password = parts.get("password")
    auth = f":{quote(str(password), safe='')}@" if password else ""
    sentinel: dict[str, Any] = parts["sentinel"] if isinstance(parts.get("sentinel"), dict) else {}
    if sentinel.get("enabled"):
        host = sentinel.get("host", "localhost")
        port = sentinel.get("port", 26379)
        master = sentinel.get("master_name", "mymaster")
        url = f"redis+sentinel://{auth}{host}:{port}/{quote(str(master), safe='')}"
        if sentinel.get("password"):
            url += "?sentinel_password=" + quote(str(sentinel["password"]), safe="")
        return url
    tls: dict[str, Any] = parts["tls"] if isinstance(parts.get("tls"), dict) else {}
    scheme = "rediss" if tls.get("enabled") else "redis"
    return f"{scheme}://{auth}{parts.get('host', 'localhost')}:{parts.get('port', 6379)}/0"


def _pop(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    *path, last = dotted.split(".")
    node: Any = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or last not in node:
        return False, None
    return True, node.pop(last)


def _has(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node = data
    for part in path:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value

"""A loopback stand-in for the part of HashiCorp Vault's HTTP API that hvac's KV and AppRole
calls use: no Vault server can be installed on the build machines, so the ``vault_kv``
provider is tested against this, over real HTTP on 127.0.0.1.

What it answers (as Vault does, as far as the provider can tell):

* ``GET /v1/<mount>/data/<path>[?version=N]`` on a KV v2 mount: the latest or a given
  version (``{"data": {"data": {...}, "metadata": {...}}}``); 404 for a missing path or
  version.
* ``GET /v1/<mount>/<path>`` on a KV v1 mount (``{"data": {...}}``); 404 when missing.
* ``POST /v1/auth/<approle mount>/login`` with ``role_id``/``secret_id``: a new token with a
  lease; a wrong pair gets 400 ``invalid role or secret ID``.
* ``GET /v1/auth/token/lookup-self``.

A request needs a known, unexpired token (``X-Vault-Token``), else 403 ``permission
denied``, as Vault answers; a token may read only the API paths its policy patterns match
(``fnmatch`` on e.g. ``secret/data/network/*``), else 403. Secrets live per namespace
(``X-Vault-Namespace``, "" for the root). ``sealed = True`` makes every request a 503 ``Vault
is sealed``. Every request is recorded (method, path, namespace, token given), so a test can
count what reached "Vault".
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Token:
    policies: tuple[str, ...]
    expires_at: float | None  # the stand-in's clock; None: never


@dataclass
class Role:
    secret_id: str
    policies: tuple[str, ...]
    ttl: float


@dataclass
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    namespace: str | None
    token: str | None


@dataclass
class _Mount:
    version: int
    # path -> versions (v2: 1-based, None for a deleted one) or [data] (v1)
    secrets: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)


class VaultStandin:
    """``with VaultStandin() as vault: vault.url`` -- see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.sealed = False
        self.requests: list[Seen] = []
        self._mounts: dict[tuple[str, str], _Mount] = {}
        self._tokens: dict[str, Token] = {}
        self._roles: dict[tuple[str, str], Role] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serial = itertools.count(1)

    # -- what Vault holds ---------------------------------------------------------------------

    def mount(self, path: str, version: int = 2, namespace: str = "") -> None:
        with self._lock:
            self._mounts.setdefault((namespace, path.strip("/")), _Mount(version))

    def put(self, mount: str, path: str, data: dict[str, Any], namespace: str = "") -> int:
        """Write a secret (a new version on a v2 mount; a new mount is v2); returns its
        version (v1: 1)."""
        self.mount(mount, namespace=namespace)
        with self._lock:
            engine = self._mounts[(namespace, mount)]
            if engine.version == 1:
                engine.secrets[path] = [dict(data)]
                return 1
            engine.secrets.setdefault(path, []).append(dict(data))
            return len(engine.secrets[path])

    def add_token(
        self, token: str, policies: Iterable[str] = ("*",), ttl: float | None = None
    ) -> str:
        with self._lock:
            expires = None if ttl is None else self.clock() + ttl
            self._tokens[token] = Token(tuple(policies), expires)
        return token

    def add_approle(
        self,
        role_id: str,
        secret_id: str,
        policies: Iterable[str] = ("*",),
        ttl: float = 30,
        mount: str = "approle",
    ) -> None:
        with self._lock:
            self._roles[(mount, role_id)] = Role(secret_id, tuple(policies), ttl)

    def expire_tokens(self) -> None:
        """Every token with a lease expires now (as if its TTL had passed)."""
        with self._lock:
            now = self.clock()
            for token in self._tokens.values():
                if token.expires_at is not None:
                    token.expires_at = now

    def count(self, method: str | None = None, prefix: str = "") -> int:
        """Requests received, of ``method`` whose path starts with ``prefix``."""
        with self._lock:
            return sum(
                1
                for seen in self.requests
                if (method is None or seen.method == method) and seen.path.startswith(prefix)
            )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        standin = self

        class Handler(_Handler):
            vault = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> VaultStandin:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- answering ----------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        namespace = headers.get("x-vault-namespace")
        token = headers.get("x-vault-token")
        with self._lock:
            self.requests.append(Seen(method, path, namespace, token))
            if self.sealed:
                return 503, {"errors": ["Vault is sealed"]}
            if not path.startswith("/v1/"):
                return 404, {"errors": []}
            api_path = path.removeprefix("/v1/")
            if method == "POST" and api_path.startswith("auth/") and api_path.endswith("/login"):
                return self._login(api_path.removeprefix("auth/").removesuffix("/login"), body)
            granted = self._tokens.get(token or "")
            if granted is None or (
                granted.expires_at is not None and granted.expires_at <= self.clock()
            ):
                return 403, {"errors": ["permission denied"]}
            if method == "GET" and api_path == "auth/token/lookup-self":
                return 200, {"data": {"policies": list(granted.policies), "ttl": 0}}
            if method != "GET":
                return 405, {"errors": []}
            if not any(fnmatchcase(api_path, p) for p in granted.policies):
                return 403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}
            return self._read(namespace or "", api_path, parse_qs(parts.query))

    def _login(self, mount: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        try:
            given = json.loads(body or b"{}")
        except ValueError:
            return 400, {"errors": ["failed to parse JSON input"]}
        role = self._roles.get((mount, str(given.get("role_id"))))
        if role is None or not secrets.compare_digest(role.secret_id, str(given.get("secret_id"))):
            return 400, {"errors": ["invalid role or secret ID"]}
        token = f"hvs.standin{next(self._serial)}{secrets.token_hex(8)}"
        self._tokens[token] = Token(role.policies, self.clock() + role.ttl)
        lease = int(role.ttl)
        auth = {"client_token": token, "lease_duration": lease, "renewable": True}
        return 200, {"auth": {**auth, "policies": list(role.policies)}}

    def _read(
        self, namespace: str, api_path: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any] | None]:
        for (ns, mount), engine in sorted(self._mounts.items(), key=lambda m: -len(m[0][1])):
            if ns != namespace or not api_path.startswith(mount + "/"):
                continue
            rest = api_path.removeprefix(mount + "/")
            if engine.version == 1:
                stored = engine.secrets.get(rest)
                if not stored:
                    return 404, {"errors": []}
                return 200, {"data": stored[0], "lease_duration": 2764800}
            if not rest.startswith("data/"):
                return 404, {"errors": []}
            versions = engine.secrets.get(rest.removeprefix("data/"))
            if not versions:
                return 404, {"errors": []}
            wanted = int(query.get("version", ["0"])[0]) or len(versions)
            if not 1 <= wanted <= len(versions) or versions[wanted - 1] is None:
                return 404, {"errors": []}
            metadata = {"version": wanted, "deletion_time": "", "destroyed": False}
            return 200, {"data": {"data": versions[wanted - 1], "metadata": metadata}}
        return 404, {"errors": [f"no handler for route {api_path!r}"]}


class _Handler(BaseHTTPRequestHandler):
    vault: VaultStandin

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload = self.vault.answer(self.command, self.path, headers, body)
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass

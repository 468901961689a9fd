"""Dashboard sessions in Redis, and the CSRF check.

A login makes a session: a random id (the cookie's value, 256 bits) and, in Redis under the
id's SHA-256 (``keys.ui_session_key``), the API key's name and scopes, a CSRF token, the
expiry and what ties the session to the key it was opened with. The key itself is never
kept: the browser sends the id, and whoever reads Redis learns neither the id nor the key.

The tie makes a session end with its key: a made key's record (its creation time and hint)
must still be the one the session was opened with, so revoking the key, or making a new
key under the same name, ends its sessions at once; for the settings' key it is an HMAC of
the session id under the key, so changing ``server.api_key`` ends them. Scopes are read
again from the key's record on each request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from redis import Redis

from netpulse.keys import API_KEYS, ui_session_key
from netpulse.runtime.redis_conn import redis_text
from netpulse.security.api_keys import SETTINGS_KEY_NAME, ApiKeyRecord, Principal, Scope

#: How long a login lasts (seconds); then the dashboard asks for the key again.
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class UiSession:
    """One login as Redis keeps it (no key, no session id)."""

    name: str
    scopes: frozenset[Scope]
    csrf: str
    expires_at: float
    #: What ties the session to its key (see the module's docstring).
    tie: str

    def principal(self) -> Principal:
        return Principal(self.name, self.scopes)


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def _settings_tie(settings_key: str, session_id: str) -> str:
    return hmac.new(settings_key.encode(), session_id.encode(), hashlib.sha256).hexdigest()


def _record_tie(record: ApiKeyRecord) -> str:
    return f"{record.created_at.isoformat()}|{record.hint}"


def _record(conn: Redis, name: str) -> ApiKeyRecord | None:
    raw = conn.hget(API_KEYS, name)
    return ApiKeyRecord.model_validate_json(raw) if raw is not None else None


def open_session(
    conn: Redis, principal: Principal, settings_key: str, ttl: int = SESSION_SECONDS
) -> tuple[str, UiSession]:
    """Store a new session for ``principal``; its id (for the cookie) and the session."""
    session_id = secrets.token_urlsafe(32)
    if principal.name == SETTINGS_KEY_NAME:
        tie = _settings_tie(settings_key, session_id)
    else:
        record = _record(conn, principal.name)
        if record is None:  # revoked between the key check and now
            raise LookupError(f"the API key {principal.name!r} was revoked")
        tie = _record_tie(record)
    session = UiSession(
        name=principal.name,
        scopes=principal.scopes,
        csrf=secrets.token_urlsafe(32),
        expires_at=time.time() + ttl,
        tie=tie,
    )
    key = ui_session_key(digest(session_id))
    pipe = conn.pipeline(transaction=True)  # never a session without its expiry
    pipe.hset(
        key,
        mapping={
            "name": session.name,
            "scopes": ",".join(sorted(s.value for s in session.scopes)),
            "csrf": session.csrf,
            "expires_at": repr(session.expires_at),
            "tie": session.tie,
        },
    )
    pipe.expire(key, ttl)
    pipe.execute()
    return session_id, session


def _parse(raw: dict[bytes, bytes]) -> UiSession | None:
    try:
        text = {redis_text(k): redis_text(v) for k, v in raw.items()}
        scopes = frozenset(Scope(s) for s in text["scopes"].split(",") if s)
        return UiSession(
            name=text["name"],
            scopes=scopes,
            csrf=text["csrf"],
            expires_at=float(text["expires_at"]),
            tie=text["tie"],
        )
    except (KeyError, ValueError):
        return None  # written by another version, or half-written: no session


def load_session(
    conn: Redis, session_id: str | None, settings_key: str, now: float | None = None
) -> UiSession | None:
    """The live session of the cookie ``session_id`` with its key's current scopes, or None
    (no cookie, unknown or expired id, or its key revoked or changed)."""
    if not session_id or len(session_id) > 128:
        return None
    raw: dict[bytes, bytes] = conn.hgetall(ui_session_key(digest(session_id)))  # type: ignore[assignment]
    session = _parse(raw) if raw else None
    if session is None or session.expires_at <= (time.time() if now is None else now):
        return None
    if session.name == SETTINGS_KEY_NAME:
        if not hmac.compare_digest(session.tie, _settings_tie(settings_key, session_id)):
            return None
        return session
    record = _record(conn, session.name)
    if record is None or not hmac.compare_digest(session.tie, _record_tie(record)):
        return None
    return UiSession(
        session.name, frozenset(record.scopes), session.csrf, session.expires_at, session.tie
    )


def close_session(conn: Redis, session_id: str | None) -> None:
    """Forget the session (logout); nothing happens for an unknown id."""
    if session_id and len(session_id) <= 128:
        conn.delete(ui_session_key(digest(session_id)))


def csrf_matches(session: UiSession, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token, in time that does not say where they
    differ. Nothing sent never matches."""
    if not sent:
        return False
    return hmac.compare_digest(
        sent.encode("utf-8", "surrogateescape"), session.csrf.encode("utf-8")
    )

"""The dashboard's pure logic: the session store and CSRF check (``netpulse/api/ui/store.py``,
against a real redis-server of this module's own), which paths skip the key header, and the
devices page's activity columns."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis import Redis

from netpulse.api.ui import store
from netpulse.api.ui.paths import is_ui_path
from netpulse.keys import UI_SESSION_PREFIX
from netpulse.runtime.redis_server import RedisServer
from netpulse.security import api_keys
from netpulse.security.api_keys import SETTINGS_PRINCIPAL, Scope

SETTINGS_KEY = "unit-settings-key-0123456789"


@pytest.fixture(scope="module")
def conn() -> Iterator[Redis]:
    with RedisServer(appendonly=False) as server:
        client = Redis.from_url(server.url)
        yield client
        client.close()


def test_a_session_keeps_the_name_and_scopes_never_the_key_nor_its_id(conn: Redis) -> None:
    made = api_keys.create(conn, "ui-reader", [Scope.READ])
    principal = api_keys.lookup(conn, made.key)
    assert principal is not None
    before = set(conn.keys(f"{UI_SESSION_PREFIX}:*"))
    session_id, session = store.open_session(conn, principal, SETTINGS_KEY)
    assert (session.name, session.scopes) == ("ui-reader", frozenset({Scope.READ}))
    [key] = set(conn.keys(f"{UI_SESSION_PREFIX}:*")) - before
    stored = repr(conn.hgetall(key)) + key.decode()
    assert made.key not in stored and session_id not in stored
    assert key.decode() == f"{UI_SESSION_PREFIX}:{store.digest(session_id)}"
    assert 0 < conn.ttl(key) <= store.SESSION_SECONDS
    loaded = store.load_session(conn, session_id, SETTINGS_KEY)
    assert loaded is not None and loaded.principal() == principal
    store.close_session(conn, session_id)
    assert store.load_session(conn, session_id, SETTINGS_KEY) is None
    api_keys.revoke(conn, "ui-reader")


def test_unknown_missing_and_expired_ids_have_no_session(conn: Redis) -> None:
    session_id, session = store.open_session(conn, SETTINGS_PRINCIPAL, SETTINGS_KEY, ttl=60)
    assert store.load_session(conn, None, SETTINGS_KEY) is None
    assert store.load_session(conn, "", SETTINGS_KEY) is None
    assert store.load_session(conn, session_id + "x", SETTINGS_KEY) is None
    assert store.load_session(conn, "x" * 10_000, SETTINGS_KEY) is None
    later = session.expires_at + 1
    assert store.load_session(conn, session_id, SETTINGS_KEY, now=later) is None
    assert store.load_session(conn, session_id, SETTINGS_KEY) is not None
    store.close_session(conn, "x" * 10_000)  # nothing to do, no error


def test_a_session_ends_with_its_key(conn: Redis) -> None:
    """Revoking a key, or making a new key under its name, ends its sessions at once;
    changing the settings' key ends the settings key's sessions."""
    made = api_keys.create(conn, "ui-operator", [Scope.READ, Scope.EXEC])
    principal = api_keys.lookup(conn, made.key)
    assert principal is not None
    session_id, _ = store.open_session(conn, principal, SETTINGS_KEY)
    api_keys.revoke(conn, "ui-operator")
    assert store.load_session(conn, session_id, SETTINGS_KEY) is None
    api_keys.create(conn, "ui-operator", [Scope.ADMIN])
    assert store.load_session(conn, session_id, SETTINGS_KEY) is None
    api_keys.revoke(conn, "ui-operator")

    default_id, _ = store.open_session(conn, SETTINGS_PRINCIPAL, SETTINGS_KEY)
    assert store.load_session(conn, default_id, SETTINGS_KEY) is not None
    assert store.load_session(conn, default_id, "a-new-settings-key") is None


def test_a_revoked_key_opens_no_session(conn: Redis) -> None:
    made = api_keys.create(conn, "ui-gone", [Scope.READ])
    principal = api_keys.lookup(conn, made.key)
    assert principal is not None
    api_keys.revoke(conn, "ui-gone")
    with pytest.raises(LookupError, match="revoked"):
        store.open_session(conn, principal, SETTINGS_KEY)


def test_a_damaged_record_is_no_session(conn: Redis) -> None:
    session_id, _ = store.open_session(conn, SETTINGS_PRINCIPAL, SETTINGS_KEY)
    key = f"{UI_SESSION_PREFIX}:{store.digest(session_id)}"
    conn.hset(key, "scopes", "read,nonsense")
    assert store.load_session(conn, session_id, SETTINGS_KEY) is None
    conn.hdel(key, "csrf")
    assert store.load_session(conn, session_id, SETTINGS_KEY) is None


def test_the_csrf_token_must_be_the_sessions_own() -> None:
    session = store.UiSession("default", frozenset(Scope), "token-abc", time.time() + 60, "t")
    assert store.csrf_matches(session, "token-abc")
    for wrong in (None, "", "token-ab", "token-abcd", "TOKEN-ABC", "token-abc\x00", "\udcff"):
        assert not store.csrf_matches(session, wrong)


def test_two_sessions_have_different_ids_and_csrf_tokens(conn: Redis) -> None:
    first_id, first = store.open_session(conn, SETTINGS_PRINCIPAL, SETTINGS_KEY)
    second_id, second = store.open_session(conn, SETTINGS_PRINCIPAL, SETTINGS_KEY)
    assert first_id != second_id and first.csrf != second.csrf
    assert len(first_id) >= 43 and len(first.csrf) >= 43  # 32 random bytes each


def test_only_the_dashboard_paths_skip_the_key_header() -> None:
    assert is_ui_path("/ui") and is_ui_path("/ui/") and is_ui_path("/ui/jobs")
    for other in ("/uix", "/u", "/jobs", "/", "/ui-jobs", "/UI/jobs", "//ui/jobs"):
        assert not is_ui_path(other)


def test_device_activity_counts_reused_sessions_and_keeps_the_newest_error() -> None:
    """The devices page's columns, from (device, job) pairs newest first."""
    from netpulse.api.ui.devices import activity
    from netpulse.models.job import JobInResponse

    def job(job_id: str, reused: bool | None, error: str | None = None) -> JobInResponse:
        result: dict[str, object]
        if error is None:
            item = {"command": "show clock", "metadata": {"session_reused": reused}}
            result = {"type": 1, "retval": [item]}
        else:
            result = {"type": 2, "error": {"type": "connection", "message": error}}
        return JobInResponse.model_validate({"id": job_id, "status": "x", "result": result})

    seen = activity(
        [
            ("a:22", job("3", reused=True)),
            ("b:22", job("9", reused=None, error="newest")),
            ("a:22", job("2", reused=False)),
            ("b:22", job("8", reused=None, error="older")),
            ("a:22", job("1", reused=True)),
        ]
    )
    a, b = seen["a:22"], seen["b:22"]
    assert (a.jobs, a.reused, a.errors, a.last_error) == (3, 2, 0, None)
    assert a.last_job is not None and a.last_job.id == "3"
    assert (b.jobs, b.reused, b.errors) == (2, 0, 2)
    assert b.last_error == "connection: newest"

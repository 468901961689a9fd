"""The audit trail against real components: jobs through the session system into SQLite; an
archiver killed with SIGKILL and restarted; the PostgreSQL server of this machine, down
(its database missing) and then up; retention; the stream's cap warning."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from redis import Redis
from sqlalchemy import func, select

from netpulse.audit import stream
from netpulse.audit.archiver import Archiver
from netpulse.audit.database import AuditDatabase
from netpulse.audit.query import get, search
from netpulse.audit.schema import audit_jobs
from netpulse.config import Settings
from netpulse.models.audit import AuditMode, AuditQuery
from netpulse.runtime.redis_server import RedisServer
from tests.integration.helpers import run, ssh_args
from tests.support import processes

POSTGRES = "postgresql://root@127.0.0.1:5432/postgres"


def _wait_entry(api: httpx.Client, job_id: str, status: str = "finished") -> dict[str, Any]:
    """The job's audit entry once the archiver wrote its end."""

    def found() -> dict[str, Any] | None:
        reply = api.get(f"/audit/{job_id}")
        if reply.status_code == 200 and reply.json()["status"] == status:
            return reply.json()
        return None

    return processes.wait_until(found, 30, f"the audit entry of {job_id}", interval=0.1)


def test_a_job_is_in_the_trail_with_who_what_and_output_but_no_secret(
    system: httpx.Client, controller_url: str, sshd: Any, tmp_session: Path
) -> None:
    marker = uuid.uuid4().hex[:12]
    name = f"auditor-{marker[:6]}"
    made = system.post("/keys", json={"name": name, "scopes": ["exec", "read"]}).json()
    reader = system.post("/keys", json={"name": f"r-{marker[:6]}", "scopes": ["read"]}).json()
    auditor = system.post("/keys", json={"name": f"a-{marker[:6]}", "scopes": ["audit"]}).json()
    password = f"never-stored-{marker}"
    try:
        with httpx.Client(base_url=controller_url, headers={"X-API-KEY": made["key"]}) as client:
            body = {
                "driver": "paramiko",
                "connection_args": {**ssh_args(sshd), "password": password},
                "command": [f"echo out-{marker}", "echo second"],
            }
            job = run(client, body)
        assert job["status"] == "finished", job
        entry = _wait_entry(system, job["id"])
        assert entry["submitted_by"] == name and entry["client"] == "127.0.0.1"
        assert entry["host"] == "127.0.0.1" and entry["driver"] == "paramiko"
        assert entry["lines"] == [f"echo out-{marker}", "echo second"]
        assert entry["kind"] == "command" and entry["mode"] == "full"
        assert entry["results"][0]["exit_status"] == 0
        assert f"out-{marker}" in entry["results"][0]["output"]
        assert entry["duration"] is not None and entry["duration"] >= 0

        found = system.get("/audit", params={"submitted_by": name, "q": f"OUT-{marker}"})
        assert [e["job_id"] for e in found.json()["items"]] == [job["id"]]
        assert system.get("/audit", params={"q": f"nothing-{marker}"}).json()["items"] == []
        with httpx.Client(base_url=controller_url, headers={"X-API-KEY": reader["key"]}) as c:
            assert c.get("/audit").status_code == 403
        with httpx.Client(base_url=controller_url, headers={"X-API-KEY": auditor["key"]}) as c:
            assert c.get(f"/audit/{job['id']}").status_code == 200
        store = (tmp_session / "audit.db").read_bytes()
        for suffix in ("-wal", ""):
            path = tmp_session / f"audit.db{suffix}"
            if path.exists():
                store += path.read_bytes()
        assert f"out-{marker}".encode() in store  # the scan reads what is there
        assert password.encode() not in store
    finally:
        for key in (made, reader, auditor):
            system.delete(f"/keys/{key['name']}")


def test_a_failed_job_and_bad_queries(system: httpx.Client) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "port": 1, "username": "u", "password": "p"},
        "command": "true",
    }
    job = run(system, body)
    assert job["status"] == "failed"
    entry = _wait_entry(system, job["id"], status="failed")
    assert entry["error_type"] == "connection" and entry["port"] == 1
    bad_cursor = system.get("/audit", params={"before": "not-a-cursor"})
    assert bad_cursor.status_code == 422 and "earlier page" in bad_cursor.json()["detail"]
    assert system.get("/audit", params={"limit": 0}).status_code == 422
    assert system.get("/audit/no-such-job").status_code == 404
    metrics = system.get("/metrics").text
    assert "netpulse_audit_stream_max_length 200000.0" in metrics
    assert "netpulse_audit_stream_length" in metrics and "netpulse_audit_pending" in metrics


def _settings(tmp_path: Path, redis_url: str, **audit: Any) -> Settings:
    return Settings(
        redis={"url": redis_url},
        data_dir=tmp_path,
        server={"api_key": "k" * 24},
        audit=audit,
    )


def _submitted(job_id: str, host: str = "10.9.9.9") -> dict[str, str]:
    return stream.submitted(
        job_id,
        mode=AuditMode.FULL,
        meta={"host": host, "submitted_by": "robot", "driver": "netmiko"},
        queue="FifoQ",
        kind="command",
        lines=["show version"],
        port=22,
        client="127.0.0.1",
    )


def _ended(job_id: str, output: str = "IOS") -> dict[str, str]:
    return stream.ended(
        job_id,
        mode=AuditMode.FULL,
        max_output_bytes=1000,
        status="finished",
        started_at=1.0,
        ended_at=2.5,
        retval=[{"command": "show version", "stdout": output, "exit_status": 0}],
        error=None,
    )


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Redis]]:
    server = RedisServer(data_dir=tmp_path / "redis", appendonly=False)
    url = server.start()
    conn = Redis.from_url(url)
    try:
        yield url, conn
    finally:
        conn.close()
        server.stop()


def _archiver_process(env: dict[str, str], tmp_path: Path, log: str) -> subprocess.Popen[bytes]:
    return processes.start(["worker", "audit", "--name", "archiver-a"], env, tmp_path / log)


def test_an_archiver_killed_and_restarted_loses_nothing(
    netpulse_env: dict[str, str], own_redis: tuple[str, Redis], tmp_path: Path
) -> None:
    url, conn = own_redis
    env = {
        **netpulse_env,
        "NETPULSE_REDIS__URL": url,
        "NETPULSE_DATA_DIR": str(tmp_path),
        "NETPULSE_AUDIT__BATCH_SIZE": "50",
    }
    ids = [f"job-{n:04d}" for n in range(600)]
    archiver = _archiver_process(env, tmp_path, "audit-1.log")
    db = AuditDatabase(_settings(tmp_path, url))
    try:
        for job_id in ids[:300]:
            stream.add(conn, _submitted(job_id), 10_000)
            stream.add(conn, _ended(job_id), 10_000)

        def archived() -> int:
            if not db.has_schema():
                return 0
            with db.engine.connect() as c:
                return int(c.execute(select(func.count()).select_from(audit_jobs)).scalar() or 0)

        processes.wait_until(lambda: archived() > 0, 30, "the first batch")
        os.kill(archiver.pid, signal.SIGKILL)
        archiver.wait(10)
        for job_id in ids[300:]:
            stream.add(conn, _submitted(job_id), 10_000)
            stream.add(conn, _ended(job_id), 10_000)
        assert archived() < len(ids)  # the rest waits in the stream
        archiver = _archiver_process(env, tmp_path, "audit-2.log")
        processes.wait_until(lambda: archived() == len(ids), 60, "every job archived")
        processes.wait_until(lambda: conn.xlen(stream.STREAM) == 0, 30, "the stream emptied")
        page = search(db, AuditQuery(limit=1000))
        assert {e.job_id for e in page.items} == set(ids)
        assert all(e.status == "finished" and e.results for e in page.items)
    finally:
        processes.stop(archiver)
        db.dispose()


def _postgres_or_fail() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"the PostgreSQL tests need a server on 127.0.0.1:5432 that trusts the user root "
            f"({exc}); start one with `service postgresql start` (Debian's postgresql package)"
        )


def test_postgresql_store_down_then_up_loses_nothing(
    netpulse_env: dict[str, str], own_redis: tuple[str, Redis], tmp_path: Path
) -> None:
    admin = _postgres_or_fail()
    name = f"np_audit_{uuid.uuid4().hex[:10]}"
    url, conn = own_redis
    store = f"postgresql://root@127.0.0.1:5432/{name}"
    env = {
        **netpulse_env,
        "NETPULSE_REDIS__URL": url,
        "NETPULSE_DATA_DIR": str(tmp_path),
        "NETPULSE_AUDIT__URL": store,
    }
    # The database does not exist yet: the store is down for the archiver.
    archiver = _archiver_process(env, tmp_path, "audit-pg.log")
    try:
        for n in range(40):
            stream.add(conn, _submitted(f"pg-{n}", host=f"10.0.0.{n % 4}"), 10_000)
            stream.add(conn, _ended(f"pg-{n}", output=f"line {n}"), 10_000)
        processes.wait_until(
            lambda: "is not reachable" in (tmp_path / "audit-pg.log").read_text(),
            30,
            "the archiver to say the store is down",
        )
        assert conn.xlen(stream.STREAM) == 80  # kept while the store is down
        admin.execute(f'CREATE DATABASE "{name}"')
        processes.wait_until(lambda: conn.xlen(stream.STREAM) == 0, 60, "the backlog archived")
        db = AuditDatabase(_settings(tmp_path, url, url=store))
        try:
            page = search(db, AuditQuery(host="10.0.0.1", limit=100))
            assert len(page.items) == 10 and all(e.host == "10.0.0.1" for e in page.items)
            first = search(db, AuditQuery(limit=15))
            rest = search(db, AuditQuery(limit=100, before=first.next))
            assert len(first.items) == 15 and len(rest.items) == 25
            assert {e.job_id for e in first.items}.isdisjoint(e.job_id for e in rest.items)
            entry = get(db, "pg-7")
            assert entry is not None and entry.results and entry.results[0].output == "line 7"
            assert entry.duration == 1.5
            hit = search(db, AuditQuery(q="LINE 13"))
            assert [e.job_id for e in hit.items] == ["pg-13"]
        finally:
            db.dispose()
    finally:
        processes.stop(archiver)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_modes_retention_and_the_cap_warning(
    own_redis: tuple[str, Redis], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, conn = own_redis
    settings = _settings(tmp_path, url, mode="metadata", stream_max_len=1000, batch_size=1000)
    db = AuditDatabase(settings)
    db.upgrade()
    archiver = Archiver(conn, db, settings, name="in-test")
    conn.xgroup_create(stream.STREAM, stream.GROUP, id="0", mkstream=True)
    for n in range(850):
        stream.add(conn, _submitted(f"m-{n}"), 10_000)
    with caplog.at_level(logging.WARNING, logger="netpulse.audit.archiver"):
        archiver._maintain()
    assert "850 records of its cap of 1000" in caplog.text
    stream.add(conn, _ended("m-1", output="secret-ish config"), 10_000)
    while archiver.step():
        pass
    entry = get(db, "m-1")
    assert entry is not None and entry.mode == AuditMode.METADATA
    assert entry.results is not None and entry.results[0].output is None  # metadata: none
    assert entry.results[0].exit_status == 0

    old = datetime.now(UTC) - timedelta(days=400)
    with db.engine.begin() as connection:
        connection.execute(
            audit_jobs.insert(),
            {"job_id": "ancient", "submitted_at": old, "status": "finished", "mode": "full"},
        )
    assert archiver.prune() == 1
    assert get(db, "ancient") is None and get(db, "m-2") is not None
    db.dispose()


def test_unreadable_records_do_not_block_the_rest(
    own_redis: tuple[str, Redis], tmp_path: Path
) -> None:
    url, conn = own_redis
    settings = _settings(tmp_path, url)
    db = AuditDatabase(settings)
    db.upgrade()
    archiver = Archiver(conn, db, settings, name="in-test")
    conn.xgroup_create(stream.STREAM, stream.GROUP, id="0", mkstream=True)
    conn.xadd(stream.STREAM, {"kind": "submitted", "job": "bad", "at": "x", "data": "{"})
    stream.add(conn, _submitted("good"), 10_000)
    assert archiver.step() == 2
    assert get(db, "good") is not None and get(db, "bad") is None
    assert conn.xlen(stream.STREAM) == 0
    assert json.loads(json.dumps(get(db, "good").model_dump(mode="json")))["host"] == "10.9.9.9"
    db.dispose()

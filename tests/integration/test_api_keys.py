"""Scoped API keys against the running controller: every route of the OpenAPI document walked
with a key of each scope, jobs that change a device need `config`, `submitted_by` recorded,
revocation at once, keys stored only as digests, and the `netpulse key` command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis import Redis

from netpulse.api.auth import OPEN_PATHS
from tests.integration.helpers import run, ssh_args
from tests.support.receiver import Receiver

SCOPES = ("read", "exec", "config", "admin")

#: Each operation and the scopes that may call it: this test's own table, so a route added
#: without a scope, or with another than intended, fails here.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("post", "/device/exec"): {"exec", "config"},
    ("post", "/device/bulk"): {"exec", "config"},
    ("post", "/device/test"): {"exec"},
    ("get", "/jobs/{job_id}"): {"read"},
    ("delete", "/jobs/{job_id}"): {"exec"},
    ("get", "/jobs"): {"read"},
    ("delete", "/jobs"): {"exec"},
    ("get", "/jobs/{job_id}/webhook-deliveries"): {"read"},
    ("get", "/workers"): {"read"},
    ("delete", "/workers"): {"admin"},
    ("delete", "/workers/{name}"): {"admin"},
    ("get", "/system/stats"): {"read"},
    ("get", "/metrics"): {"read"},
    ("get", "/webhooks/deliveries"): {"read"},
    ("get", "/webhooks/deliveries/{delivery_id}"): {"read"},
    ("post", "/webhooks/deliveries/{delivery_id}/redeliver"): {"admin"},
    ("post", "/webhooks/recover"): {"admin"},
    ("get", "/webhooks/signing-keys"): {"read"},
    ("get", "/webhooks/event-types"): {"read"},
    ("get", "/audit"): {"audit"},
    ("get", "/audit/{job_id}"): {"audit"},
    ("get", "/webhooks/endpoints"): {"read"},
    ("post", "/webhooks/endpoints"): {"admin"},
    ("get", "/webhooks/endpoints/{endpoint_id}"): {"read"},
    ("patch", "/webhooks/endpoints/{endpoint_id}"): {"admin"},
    ("delete", "/webhooks/endpoints/{endpoint_id}"): {"admin"},
    ("get", "/storage/fetch/{file_id}"): {"read"},
    ("post", "/template/render"): {"exec"},
    ("post", "/template/render/{name}"): {"exec"},
    ("post", "/template/parse"): {"exec"},
    ("post", "/template/parse/{name}"): {"exec"},
    ("put", "/credentials/{name}"): {"admin"},
    ("delete", "/credentials/{name}"): {"admin"},
    ("get", "/credentials"): {"admin"},
    ("get", "/keys"): {"admin"},
    ("post", "/keys"): {"admin"},
    ("delete", "/keys/{name}"): {"admin"},
    ("get", "/detached-tasks"): {"read"},
    ("get", "/detached-tasks/{task_id}"): {"read"},
    ("delete", "/detached-tasks/{task_id}"): {"exec"},
    ("delete", "/detached-tasks"): {"admin"},
    ("post", "/detached-tasks/discover"): {"exec"},
}

#: Query values that keep a call that is allowed harmless on the shared system (nothing
#: matches them): the walk must not stop the workers or cancel other tests' jobs.
HARMLESS_QUERY = {
    ("delete", "/workers"): {"queue": "no-such-queue"},
    ("delete", "/jobs"): {"queue": "no-such-queue"},
}


def _make_key(api: httpx.Client, scopes: list[str]) -> dict[str, Any]:
    reply = api.post("/keys", json={"name": f"t-{uuid.uuid4().hex[:12]}", "scopes": scopes})
    assert reply.status_code == 201, reply.text
    return reply.json()


@pytest.fixture(scope="module")
def keys(api: httpx.Client) -> Iterator[dict[str, str]]:
    """One key per scope, by scope; revoked afterwards."""
    made = {scope: _make_key(api, [scope]) for scope in SCOPES}
    yield {scope: key["key"] for scope, key in made.items()}
    for key in made.values():
        assert api.delete(f"/keys/{key['name']}").status_code == 204


def _as(controller_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=controller_url, headers={"X-API-KEY": key}, timeout=60)


def test_every_route_says_its_scopes_and_refuses_keys_without_them(
    api: httpx.Client, controller_url: str, keys: dict[str, str]
) -> None:
    document = api.get("/openapi.json").json()
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        if path not in OPEN_PATHS
        for method, operation in item.items()
    }
    assert set(operations) == set(EXPECTED), "a route was added or removed: classify it"
    for (method, path), operation in operations.items():
        assert set(operation["x-scopes"]) == EXPECTED[(method, path)], (method, path)

    for scope, key in keys.items():
        with _as(controller_url, key) as client:
            for (method, path), allowed in EXPECTED.items():
                url = path.replace("{", "").replace("}", "")  # job_id -> "job_id", etc.
                reply = client.request(
                    method.upper(),
                    url,
                    params=HARMLESS_QUERY.get((method, path)),
                    json={} if method in ("post", "put") else None,
                )
                if scope == "admin" or scope in allowed:
                    assert reply.status_code != 403, (scope, method, path, reply.text)
                    assert reply.status_code < 500, (scope, method, path, reply.text)
                else:
                    assert reply.status_code == 403, (scope, method, path, reply.text)
                    detail = reply.json()["detail"]
                    assert all(repr(s) in detail for s in allowed), detail
                    assert f"{method.upper()} {url}" in detail


def test_a_wrong_key_is_refused_before_any_scope_is_considered(controller_url: str) -> None:
    for key in ("npk_" + "x" * 43, "not-a-key", ""):
        with _as(controller_url, key) as client:
            reply = client.get("/jobs")
            assert reply.status_code == 403
            assert "missing or wrong API key" in reply.json()["detail"]


def test_exec_runs_commands_but_changing_the_device_needs_config(
    system: httpx.Client, controller_url: str, keys: dict[str, str], sshd: Any
) -> None:
    command = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": "echo hi"}
    change = {**command, "command": None, "config": ["echo changed"]}
    upload = {
        **command,
        "command": None,
        "file_transfer": {"operation": "download", "remote_path": "/etc/hostname"},
    }
    with _as(controller_url, keys["exec"]) as exec_key:
        assert exec_key.post("/device/exec", json=command).status_code == 201
        for body in (change, upload):
            refused = exec_key.post("/device/exec", json=body)
            assert refused.status_code == 403, refused.text
            assert "'config'" in refused.json()["detail"]
        bulk = {
            "driver": "paramiko",
            "connection_args": {k: v for k, v in ssh_args(sshd).items() if k != "host"},
            "command": "true",
            "devices": [{"host": sshd.host}, {"host": sshd.host, "config": ["true"]}],
        }
        refused = exec_key.post("/device/bulk", json=bulk)
        assert refused.status_code == 403 and "'config'" in refused.json()["detail"]
    with _as(controller_url, keys["config"]) as config_key:
        assert config_key.post("/device/exec", json=upload).status_code == 201
        refused = config_key.post("/device/exec", json=command)
        assert refused.status_code == 403 and "'exec'" in refused.json()["detail"]
    with _as(controller_url, keys["read"]) as read_key:
        refused = read_key.post("/device/exec", json=command)
        assert refused.status_code == 403
        assert "lacks the 'exec' or 'config' scope" in refused.json()["detail"]
        assert "(it has: read)" in refused.json()["detail"]


def test_each_job_records_the_key_that_submitted_it(
    system: httpx.Client,
    controller_url: str,
    keys: dict[str, str],
    sshd: Any,
    receiver: Receiver,
) -> None:
    made = _make_key(system, ["exec", "read"])
    try:
        body = {
            "driver": "paramiko",
            "connection_args": ssh_args(sshd),
            "command": "echo who",
            "webhook": {"url": receiver.url("/who")},
        }
        with _as(controller_url, made["key"]) as client:
            job = run(client, body)
        assert job["status"] == "finished", job
        assert job["submitted_by"] == made["name"]
        [event] = receiver.wait_for("/who", timeout=30)
        assert event.json()["submitted_by"] == made["name"]
        by_settings_key = run(system, {**body, "webhook": None})
        assert by_settings_key["submitted_by"] == "default"
    finally:
        system.delete(f"/keys/{made['name']}")


def test_a_revoked_key_is_refused_at_once_and_keys_are_kept_only_as_digests(
    api: httpx.Client, controller_url: str, redis_url: str
) -> None:
    made = _make_key(api, ["read"])
    key = made["key"]
    listed = api.get("/keys").json()
    assert {"name": made["name"], "scopes": ["read"], "hint": key[-4:]}.items() <= next(
        k for k in listed if k["name"] == made["name"]
    ).items()
    assert key not in api.get("/keys").text

    redis = Redis.from_url(redis_url)
    stored = b"".join(
        field + value
        for name in (b"netpulse:api-keys", b"netpulse:api-key-digests")
        for field, value in redis.hgetall(name).items()
    )
    assert key.encode() not in stored
    assert hashlib.sha256(key.encode()).hexdigest().encode() in stored

    with _as(controller_url, key) as client:
        assert client.get("/jobs").status_code == 200
        assert api.delete(f"/keys/{made['name']}").status_code == 204
        assert client.get("/jobs").status_code == 403
    assert api.delete(f"/keys/{made['name']}").status_code == 404


def test_key_names_and_scopes_are_checked(api: httpx.Client) -> None:
    made = _make_key(api, ["read"])
    try:
        again = api.post("/keys", json={"name": made["name"], "scopes": ["exec"]})
        assert again.status_code == 409 and "revoke it first" in again.json()["detail"]
    finally:
        api.delete(f"/keys/{made['name']}")
    for body in (
        {"name": "has space", "scopes": ["read"]},
        {"name": "ok-name", "scopes": []},
        {"name": "ok-name", "scopes": ["root"]},
    ):
        assert api.post("/keys", json=body).status_code == 422, body
    default = api.post("/keys", json={"name": "default", "scopes": ["read"]})
    assert default.status_code == 422 and "'default'" in default.json()["detail"]


def test_the_key_command_makes_lists_and_revokes_keys(
    netpulse_env: dict[str, str], controller_url: str
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "netpulse", "key", *args],
            env=netpulse_env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = cli("create", name, "--scope", "read", "--scope", "exec")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("npk_") and "shown only now" in made.stderr
    listed = cli("list")
    assert f"{name}\texec,read\t" in listed.stdout and key not in listed.stdout
    with _as(controller_url, key) as client:
        assert client.get("/jobs").status_code == 200
        assert client.get("/credentials").status_code == 403
        assert cli("revoke", name).returncode == 0
        assert client.get("/jobs").status_code == 403
    gone = cli("revoke", name)
    assert gone.returncode == 1 and "no API key named" in gone.stderr + gone.stdout
    wrong = cli("create", name, "--scope", "root")
    assert wrong.returncode == 2

"""Idempotent submission: a retried `POST /device/exec` or `/device/bulk` with the same
`Idempotency-Key` gets the first reply and queues nothing; another body with the same key is
refused; keys are per API key."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.helpers import ssh_args


def _jobs_running(api: httpx.Client, marker: str) -> list[str]:
    """Ids of the jobs whose command holds ``marker`` (every state)."""
    return [
        j["id"]
        for j in api.get("/jobs", params={"limit": 10000}).json()
        if marker in " ".join(j.get("command") or [])
    ]


def test_a_retry_with_the_same_key_gets_the_first_reply_and_queues_nothing(
    system: httpx.Client, sshd: Any
) -> None:
    marker = uuid.uuid4().hex
    body = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": f"echo {marker}"}
    headers = {"Idempotency-Key": f"retry-{marker}"}
    first = system.post("/device/exec", json=body, headers=headers)
    again = system.post("/device/exec", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    system.get(f"/jobs/{first.json()['id']}", params={"wait": 30})
    assert _jobs_running(system, marker) == [first.json()["id"]]

    other = system.post("/device/exec", json={**body, "command": "echo other"}, headers=headers)
    assert other.status_code == 422 and "another request body" in other.json()["detail"]
    without = system.post("/device/exec", json=body)
    assert without.status_code == 201 and without.json()["id"] != first.json()["id"]


def test_keys_are_kept_per_api_key(system: httpx.Client, controller_url: str, sshd: Any) -> None:
    marker = uuid.uuid4().hex
    body = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": f"echo {marker}"}
    headers = {"Idempotency-Key": "shared-by-accident"}
    made = system.post("/keys", json={"name": f"idem-{marker[:8]}", "scopes": ["exec"]}).json()
    try:
        mine = system.post("/device/exec", json=body, headers=headers)
        with httpx.Client(base_url=controller_url, headers={"X-API-KEY": made["key"]}) as other:
            theirs = other.post("/device/exec", json=body, headers=headers)
        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]
    finally:
        system.delete(f"/keys/{made['name']}")


def test_a_bulk_retry_returns_the_same_jobs(system: httpx.Client, sshd: Any) -> None:
    marker = uuid.uuid4().hex
    args = {k: v for k, v in ssh_args(sshd).items() if k != "host"}
    body = {
        "driver": "paramiko",
        "connection_args": args,
        "command": f"echo {marker}",
        "devices": [{"host": sshd.host}, {"host": sshd.host}],
    }
    headers = {"Idempotency-Key": f"bulk-{marker}"}
    first = system.post("/device/bulk", json=body, headers=headers).json()
    again = system.post("/device/bulk", json=body, headers=headers).json()
    ids = [j["id"] for j in first["succeeded"]]
    assert len(ids) == 2 and [j["id"] for j in again["succeeded"]] == ids
    for job_id in ids:
        system.get(f"/jobs/{job_id}", params={"wait": 30})
    assert sorted(_jobs_running(system, marker)) == sorted(ids)


def test_a_key_that_is_not_printable_ascii_is_refused(system: httpx.Client, sshd: Any) -> None:
    body = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": "true"}
    reply = system.post("/device/exec", json=body, headers={"Idempotency-Key": "has space"})
    assert reply.status_code == 422 and "Idempotency-Key" in reply.json()["detail"]

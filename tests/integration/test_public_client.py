"""The public client (`netpulse-sdk` 0.4) against the running system, through its own methods
(not raw HTTP): what a team moving from the original NetPulse calls every day."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import netpulse_sdk
import pytest

from netpulse.runtime.ports import free_port
from tests.conftest import API_KEY, NODE_NAME
from tests.integration.helpers import device, run, ssh_args, submit, wait_job, wait_started
from tests.support import processes


@pytest.fixture
def client(system: httpx.Client, controller_url: str) -> Iterator[Any]:
    with netpulse_sdk.NetPulseClient(base_url=controller_url, api_key=API_KEY) as sdk:
        yield sdk


def test_list_workers_parses_fifo_workers_and_the_node(client: Any) -> None:
    workers = client.list_workers()
    kinds = {w.name: getattr(w, "kind", None) for w in workers}
    assert kinds.get(NODE_NAME) == "node"
    assert "fifo" in kinds.values()
    node = next(w for w in workers if w.name == NODE_NAME)
    assert node.birth_at and node.birth_at[:4].isdigit()  # an ISO time, as the client expects


def test_a_failed_connection_test_keeps_its_message(client: Any) -> None:
    port = free_port()
    result = client.test_connection(
        "127.0.0.1",
        connection_args={
            "device_type": "cisco_ios",
            "username": "u",
            "password": "p",
            "port": port,
        },
        driver="netmiko",
    )
    assert result.ok is False
    assert result.error.startswith(f"127.0.0.1:{port}"), result.error
    assert result.error_type == "connection"


def test_a_successful_connection_test(client: Any, lab: dict) -> None:
    args = device(lab, "cisco_ios").connection_args()
    host = args.pop("host")
    result = client.test_connection(host, connection_args=args, driver="netmiko")
    assert result.ok is True and result.error is None
    assert result.prompt.endswith((">", "#"))


def test_list_jobs_by_node_gives_that_nodes_jobs_only(
    client: Any, system: httpx.Client, sshd: Any
) -> None:
    body = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": "true"}
    pinned = run(system, {**body, "queue_strategy": "pinned"})
    fifo = run(system, {**body, "queue_strategy": "fifo"})
    on_node = {job.id for job in client.list_jobs(node=NODE_NAME)}
    assert pinned["id"] in on_node
    assert fifo["id"] not in on_node
    assert client.list_jobs(node="no-such-node") == []


def test_system_stats_have_the_originals_types(system: httpx.Client) -> None:
    stats = system.get("/system/stats").json()
    assert stats["status"] == "online"
    assert isinstance(stats["uptime_seconds"], int)
    assert isinstance(stats["self_healing"]["total_triggers"], int)


def test_delete_workers_by_host_drains_nodes_and_never_touches_fifo_workers(
    client: Any, system: httpx.Client, sshd: Any
) -> None:
    body = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": "true"}
    run(system, {**body, "queue_strategy": "pinned"})  # the node now holds this host
    fifo_before = {w.name for w in client.list_workers() if getattr(w, "kind", "") == "fifo"}
    # The only live node is kept (draining it would strand its devices): nothing is stopped.
    assert client.delete_workers(host=ssh_args(sshd)["host"]) == []
    after = client.list_workers()
    assert {w.name for w in after if getattr(w, "kind", "") == "fifo"} == fifo_before
    assert next(w for w in after if w.name == NODE_NAME).status == "alive"


def test_run_renders_a_string_command_the_client_sends_as_a_list(client: Any, sshd: Any) -> None:
    args = ssh_args(sshd)
    host = args.pop("host")
    job = client.run(
        devices=host,
        command="echo {{ word }}",
        driver="paramiko",
        connection_args=args,
        rendering={"name": "jinja2", "context": {"word": "rendered"}},
    )
    job.wait()
    [result] = job.results()
    assert result.ok, result
    assert result.command == "echo rendered" and result.stdout.strip() == "rendered"


def test_a_list_payload_is_the_template_with_its_lines_joined(
    system: httpx.Client, sshd: Any
) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": ["echo {{ a }}", "echo {{ b }}"],
        "rendering": {"name": "jinja2", "context": {"a": "one", "b": "two"}},
    }
    job = run(system, body)
    assert job["status"] == "finished", job
    assert [r["stdout"].strip() for r in job["result"]["retval"]] == ["one", "two"]


def test_test_connections_reports_each_device(client: Any, lab: dict) -> None:
    args = device(lab, "cisco_ios").connection_args()
    host = args.pop("host")
    results = client.test_connections([host, host], connection_args=args, driver="netmiko")
    assert [(r.ok, r.host, r.error) for r in results] == [(True, host, None)] * 2
    [down] = client.test_connections(
        ["127.0.0.1"], connection_args={**args, "port": free_port()}, driver="netmiko"
    )
    assert down.ok is False and isinstance(down.error, str) and "127.0.0.1" in down.error


def test_render_and_parse_templates_through_the_client(client: Any) -> None:
    rendered = client.render_template(
        "hostname {{ name }}\n{% for v in vlans %}vlan {{ v }}\n{% endfor %}",
        {"name": "core-1", "vlans": [10, 20]},
    )
    assert isinstance(rendered, str)
    assert rendered.split() == ["hostname", "core-1", "vlan", "10", "vlan", "20"]
    parsed = client.parse_template(
        "interface Gi0/1\n description uplink\n",
        name="ttp",
        template="interface {{ name }}\n description {{ description }}",
    )
    assert "uplink" in str(parsed) and "Gi0/1" in str(parsed)


def test_list_jobs_filters_by_status(client: Any, sshd: Any) -> None:
    args = ssh_args(sshd)
    host = args.pop("host")
    job = client.run(devices=host, command="echo listed", driver="paramiko", connection_args=args)
    job.wait()
    finished = client.list_jobs(status="finished")
    assert any(j.id == job.id for j in finished)
    assert all(j.status == "finished" for j in finished)
    assert not any(j.id == job.id for j in client.list_jobs(status="queued"))


def test_fields_accepted_but_not_acted_on_are_said(system: httpx.Client, sshd: Any) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": "true",
        "audit_mode": "full",
    }
    reply = system.post("/device/exec", json=body)
    assert reply.status_code == 201, reply.text
    notices = reply.json()["notices"]
    assert [n for n in notices if n.startswith("audit_mode is accepted and ignored")]
    assert system.get(f"/jobs/{reply.json()['id']}").json()["notices"] == notices
    plain = system.post("/device/exec", json={**body, "audit_mode": None})
    assert plain.json()["notices"] is None
    # push_interval means something now (detached tasks): without detach it is refused.
    alone = system.post("/device/exec", json={**body, "push_interval": 5})
    assert alone.status_code == 422 and "detach: true" in alone.text


def test_cancel_jobs_by_host_cancels_what_waits_and_cancel_job_stops_what_runs(
    client: Any, system: httpx.Client, sshd: Any
) -> None:
    body = {"driver": "paramiko", "connection_args": ssh_args(sshd), "queue_strategy": "pinned"}
    running = submit(system, {**body, "command": "sleep 60"})
    wait_started(system, running["id"])
    waiting = submit(system, {**body, "command": "echo never"})  # behind it, same device
    assert client.get_job(waiting["id"]).status == "queued"

    assert client.cancel_jobs(host=sshd.host) == [waiting["id"]]
    assert client.cancel_job(running["id"]) is True
    assert wait_job(system, running["id"])["status"] == "stopped"
    assert client.get_job(waiting["id"]).status == "canceled"


def test_get_job_gives_the_clients_job_with_its_results(client: Any, sshd: Any) -> None:
    args = ssh_args(sshd)
    host = args.pop("host")
    job = client.run(devices=host, command="echo fetched", driver="paramiko", connection_args=args)
    job.wait()
    again = client.get_job(job.id)
    assert again.status == "finished"
    [result] = again.results()
    assert result.ok and result.stdout.strip() == "fetched"


def test_delete_worker_stops_a_fifo_worker_and_the_pool_replaces_it(client: Any) -> None:
    fifo = sorted(w.name for w in client.list_workers() if getattr(w, "kind", "") == "fifo")
    assert client.delete_worker(fifo[0]) is True

    def replaced() -> bool:
        now = {w.name for w in client.list_workers() if getattr(w, "kind", "") == "fifo"}
        return fifo[0] not in now and len(now) == len(fifo)

    processes.wait_until(replaced, 30, "the pool to replace the stopped worker")


def test_delete_worker_of_the_only_node_is_refused_with_the_reason(client: Any) -> None:
    with pytest.raises(netpulse_sdk.NetPulseError) as refused:
        client.delete_worker(NODE_NAME)
    assert "only live node" in str(refused.value)
    assert next(w for w in client.list_workers() if w.name == NODE_NAME).status == "alive"


def test_a_connection_test_with_a_wrong_password_says_authentication(
    client: Any, lab: dict
) -> None:
    args = device(lab, "cisco_ios").connection_args()
    host = args.pop("host")
    result = client.test_connection(
        host, connection_args={**args, "password": "wrong"}, driver="netmiko"
    )
    assert result.ok is False and isinstance(result.error, str) and result.error
    assert result.error_type == "authentication"

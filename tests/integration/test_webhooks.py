"""The webhook system end to end: job callbacks -> outbox -> delivery service -> receivers."""

from __future__ import annotations

import base64
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from netpulse_sdk.result import WebhookEvent
from redis import Redis
from rq import Worker
from standardwebhooks import Webhook

from netpulse.runtime.ports import free_port
from tests.conftest import SIGNING_SECRET
from tests.integration.helpers import device, run, ssh_args, submit, wait_job
from tests.support import processes
from tests.support.receiver import Receiver


def paramiko_job(sshd: Any, command: str, webhook: dict[str, Any], **extra: Any) -> dict:
    return {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": command,
        "webhook": webhook,
        **extra,
    }


def deliveries(api: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    reply = api.get(f"/jobs/{job_id}/webhook-deliveries")
    assert reply.status_code == 200, reply.text
    return reply.json()


def wait_delivery_state(api: httpx.Client, job_id: str, state: str, timeout: float = 20) -> dict:
    return processes.wait_until(
        lambda: next((d for d in deliveries(api, job_id) if d["state"] == state), None),
        timeout,
        f"delivery of job {job_id} to become {state}",
    )


def verify(received: Any, secret: str = SIGNING_SECRET) -> dict:
    headers = {k.lower(): v for k, v in received.headers.items()}
    return Webhook(secret).verify(received.body, headers)


def test_success_event_is_signed_and_parses_as_the_client_model(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    job = run(system, paramiko_job(sshd, "echo hello", {"url": receiver.url()}))
    [got] = receiver.wait_for("/hook")
    assert got.method == "POST"
    payload = verify(got)
    event = WebhookEvent.model_validate(payload)
    assert event.id == job["id"]
    assert event.event_type == "job.completed" and event.status == "finished" and event.final
    assert event.result["type"] == "successful"
    assert event.result["retval"][0]["stdout"].strip() == "hello"
    assert event.device == {"host": sshd.host}
    assert got.headers["User-Agent"].startswith("NetPulse-Webhook/")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["webhook-id"] == "msg_" + job["id"].replace("-", "")


def test_failure_event_carries_the_error(system: httpx.Client, receiver: Receiver) -> None:
    port = free_port()
    body = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "port": port, "username": "x"},
        "command": "true",
        "webhook": {"url": receiver.url()},
    }
    job = run(system, body)
    assert job["status"] == "failed"
    [got] = receiver.wait_for("/hook")
    payload = verify(got)
    assert payload["event_type"] == "job.failed" and payload["status"] == "failed"
    assert payload["result"]["type"] == "failed"
    assert f"127.0.0.1:{port}" in payload["result"]["error"]["message"]


def test_text_format_puts_output_in_one_string(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    run(system, paramiko_job(sshd, "echo plain", {"url": receiver.url(), "format": "text"}))
    [got] = receiver.wait_for("/hook")
    assert got.json()["result"].strip() == "plain"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_each_method(system: httpx.Client, sshd: Any, receiver: Receiver, method: str) -> None:
    run(system, paramiko_job(sshd, "true", {"url": receiver.url(), "method": method}))
    [got] = receiver.wait_for("/hook")
    assert got.method == method
    verify(got)


def test_headers_cookies_and_basic_auth_reach_the_receiver_and_stay_secret(
    system: httpx.Client, sshd: Any, receiver: Receiver, tmp_session: Path
) -> None:
    webhook = {
        "url": receiver.url(),
        "headers": {"X-Team": "neteng", "Authorization-Token": "tok-SECRET-123"},
        "cookies": {"session": "cookie-SECRET-456"},
        "auth": ["hookuser", "pw-SECRET-789"],
    }
    job = run(system, paramiko_job(sshd, "true", webhook))
    [got] = receiver.wait_for("/hook")
    assert got.headers["X-Team"] == "neteng"
    assert got.headers["Authorization-Token"] == "tok-SECRET-123"
    assert "session=cookie-SECRET-456" in got.headers["Cookie"]
    expected = base64.b64encode(b"hookuser:pw-SECRET-789").decode()
    assert got.headers["Authorization"] == f"Basic {expected}"
    wait_delivery_state(system, job["id"], "succeeded")
    shown = [
        system.get(f"/jobs/{job['id']}").text,
        system.get(f"/jobs/{job['id']}/webhook-deliveries").text,
        system.get("/webhooks/deliveries").text,
        got.body.decode(),
    ]
    shown += [p.read_text(errors="replace") for p in tmp_session.glob("*.log")]
    for text in shown:
        for secret in ("tok-SECRET-123", "cookie-SECRET-456", "pw-SECRET-789"):
            assert secret not in text


def test_webhook_failure_never_changes_the_job(system: httpx.Client, sshd: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    job = run(system, paramiko_job(sshd, "echo fine", {"url": dead, "max_retries": 0}))
    assert job["status"] == "finished" and job["result"]["type"] == 1
    delivery = wait_delivery_state(system, job["id"], "failed")
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] is None and attempt["error"]
    assert system.get(f"/jobs/{job['id']}").json()["status"] == "finished"


def test_500_is_retried_and_the_second_attempt_arrives_with_the_same_id(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    receiver.behave("/hook", statuses=[500, 200])
    webhook = {"url": receiver.url(), "retry_intervals": [0.5]}
    job = run(system, paramiko_job(sshd, "true", webhook))
    first, second = receiver.wait_for("/hook", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.at - first.at >= 0.35  # 0.5 s minus the 20 % jitter
    verify(second)
    delivery = wait_delivery_state(system, job["id"], "succeeded")
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]
    assert delivery["attempt_log"][0]["remote_ip"] == "127.0.0.1"


def test_410_stops_at_once(system: httpx.Client, sshd: Any, receiver: Receiver) -> None:
    receiver.behave("/hook", statuses=[410])
    job = run(system, paramiko_job(sshd, "true", {"url": receiver.url(), "retry_intervals": [0.1]}))
    delivery = wait_delivery_state(system, job["id"], "failed")
    assert len(delivery["attempt_log"]) == 1
    assert len(receiver.on("/hook")) == 1


def test_429_retry_after_is_honoured(system: httpx.Client, sshd: Any, receiver: Receiver) -> None:
    receiver.behave("/hook", statuses=[429, 200], headers={"Retry-After": "2"})
    webhook = {"url": receiver.url(), "retry_intervals": [0.1]}
    run(system, paramiko_job(sshd, "true", webhook))
    first, second = receiver.wait_for("/hook", 2)
    assert second.at - first.at >= 1.9


def test_redirect_is_a_failure_and_not_followed(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    receiver.behave("/hook", statuses=[302], headers={"Location": receiver.url("/elsewhere")})
    webhook = {"url": receiver.url(), "max_retries": 0}
    job = run(system, paramiko_job(sshd, "true", webhook))
    delivery = wait_delivery_state(system, job["id"], "failed")
    assert delivery["attempt_log"][0]["status_code"] == 302
    assert "redirect" in delivery["attempt_log"][0]["error"]
    assert receiver.on("/elsewhere") == []


def test_hanging_receiver_times_out(system: httpx.Client, sshd: Any, receiver: Receiver) -> None:
    receiver.behave("/hook", delay=30)
    webhook = {"url": receiver.url(), "timeout": 1, "max_retries": 0}
    job = run(system, paramiko_job(sshd, "true", webhook))
    delivery = wait_delivery_state(system, job["id"], "failed")
    assert "timed out" in delivery["attempt_log"][0]["error"]


def test_retries_are_exhausted_then_failed(system: httpx.Client, sshd: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    webhook = {"url": dead, "max_retries": 2, "retry_intervals": [0.2]}
    job = run(system, paramiko_job(sshd, "true", webhook))
    delivery = wait_delivery_state(system, job["id"], "failed")
    assert len(delivery["attempt_log"]) == 3


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "[::1]", "0.0.0.0", "[::ffff:169.254.169.254]"]
)
def test_ssrf_guard_refuses_without_connecting(system: httpx.Client, sshd: Any, host: str) -> None:
    webhook = {"url": f"http://{host}:{free_port()}/hook", "max_retries": 3}
    job = run(system, paramiko_job(sshd, "true", webhook))
    delivery = wait_delivery_state(system, job["id"], "failed")
    [attempt] = delivery["attempt_log"]
    assert "SSRF" in attempt["error"] and attempt["status_code"] is None
    assert attempt["remote_ip"] is None


def test_per_request_secret_signs_instead_of_the_server_secret(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    from netpulse.webhooks.signing import generate_secret

    secret = generate_secret()
    job = run(system, paramiko_job(sshd, "true", {"url": receiver.url(), "secret": secret}))
    [got] = receiver.wait_for("/hook")
    verify(got, secret)
    assert secret not in system.get(f"/jobs/{job['id']}/webhook-deliveries").text


def test_redeliver_sends_the_same_event_again(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    job = run(system, paramiko_job(sshd, "true", {"url": receiver.url()}))
    delivery = wait_delivery_state(system, job["id"], "succeeded")
    reply = system.post(f"/webhooks/deliveries/{delivery['id']}/redeliver")
    assert reply.status_code == 202
    first, second = receiver.wait_for("/hook", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert system.post("/webhooks/deliveries/dlv_nope/redeliver").status_code == 404


def test_recover_redelivers_failed_deliveries_since_a_time(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    since = time.time() - 1
    receiver.behave("/hook", statuses=[500, 200])
    job = run(system, paramiko_job(sshd, "true", {"url": receiver.url(), "max_retries": 0}))
    wait_delivery_state(system, job["id"], "failed")
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(since))
    listed = system.get("/webhooks/deliveries", params={"status": "failed", "since": iso}).json()
    assert job["id"] in {d["job_id"] for d in listed}
    reply = system.post("/webhooks/recover", json={"since": iso})
    assert reply.status_code == 202 and reply.json()["count"] >= 1
    receiver.wait_for("/hook", 2)
    wait_delivery_state(system, job["id"], "succeeded")


def test_custom_caller_from_an_entry_point_is_used(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    receiver.behave("/hook", statuses=[409, 200])
    webhook = {"name": "recording", "url": receiver.url()}
    job = run(system, paramiko_job(sshd, "true", webhook))
    _, second = receiver.wait_for("/hook", 2)
    assert second.headers["X-Recording"] == "yes"
    assert second.json() == {
        "caller": "recording",
        "job_id": job["id"],
        "job_status": "finished",
        "host": sshd.host,
        "event_type": "job.completed",
        "attempt": 2,
    }
    wait_delivery_state(system, job["id"], "succeeded")


def test_exactly_one_final_event_per_job(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    job = run(system, paramiko_job(sshd, "true", {"url": receiver.url()}))
    wait_delivery_state(system, job["id"], "succeeded")
    assert len(deliveries(system, job["id"])) == 1
    assert len(receiver.on("/hook")) == 1


def test_execution_timeout_gives_a_failed_event_naming_the_timeout(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    run(system, paramiko_job(sshd, "sleep 20", {"url": receiver.url()}, execution_timeout=1))
    [got] = receiver.wait_for("/hook")
    payload = got.json()
    assert payload["event_type"] == "job.failed"
    assert payload["result"]["error"]["type"] == "timeout"


def _wait_started(api: httpx.Client, job_id: str) -> None:
    processes.wait_until(
        lambda: api.get(f"/jobs/{job_id}").json()["status"] == "started", 20, "job start"
    )


def test_stopping_a_running_job_gives_a_stopped_event(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    created = submit(system, paramiko_job(sshd, "sleep 30", {"url": receiver.url()}))
    _wait_started(system, created["id"])
    assert system.delete(f"/jobs/{created['id']}").status_code == 200
    job = wait_job(system, created["id"])
    assert job["status"] == "stopped"
    assert job["result"]["type"] == 3
    [got] = receiver.wait_for("/hook")
    assert got.json()["event_type"] == "job.stopped"


def _horse_pid(redis: Redis, job_id: str) -> int | None:
    """The work-horse is the child process of the worker running the job."""
    for worker in Worker.all(connection=redis):
        if worker.get_current_job_id() == job_id and worker.pid:
            children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
            # The work-horse leads its own process group (RQ calls setpgrp in it); other
            # children (RQ's scheduler) do not.
            horses = [int(c) for c in children if os.getpgid(int(c)) == int(c)]
            if horses:
                return horses[0]
    return None


def test_killed_work_horse_gives_a_failed_event(
    system: httpx.Client, sshd: Any, receiver: Receiver, redis: Redis
) -> None:
    created = submit(system, paramiko_job(sshd, "sleep 30", {"url": receiver.url()}))
    _wait_started(system, created["id"])
    worker_pids = {w.pid for w in Worker.all(connection=redis)}
    pid = processes.wait_until(lambda: _horse_pid(redis, created["id"]), 10, "the work-horse")
    assert pid not in worker_pids
    os.kill(pid, signal.SIGKILL)
    job = wait_job(system, created["id"])
    assert job["status"] == "failed"
    [got] = receiver.wait_for("/hook")
    payload = got.json()
    assert payload["event_type"] == "job.failed"
    assert payload["result"]["error"]["type"] == "worker_killed"
    assert "signal 9" in payload["result"]["error"]["message"]


def test_undelivered_events_survive_a_delivery_service_restart(
    system: httpx.Client, sshd: Any, receiver: Receiver, delivery_service: Any
) -> None:
    delivery_service.stop()
    try:
        job = run(system, paramiko_job(sshd, "echo kept", {"url": receiver.url()}))
        assert deliveries(system, job["id"])[0]["state"] == "pending"
        assert receiver.on("/hook") == []
    finally:
        delivery_service.start()
    [got] = receiver.wait_for("/hook", timeout=30)
    assert got.json()["id"] == job["id"]


def test_metrics_count_attempts_and_backlog(system: httpx.Client, sshd: Any, receiver: Receiver):
    run(system, paramiko_job(sshd, "true", {"url": receiver.url()}))
    receiver.wait_for("/hook")
    text = system.get("/metrics").text
    assert 'netpulse_webhook_attempts_total{outcome="success"}' in text
    assert "netpulse_webhook_pending" in text
    assert "netpulse_webhook_attempt_latency_seconds_bucket" in text


def test_netmiko_job_event_names_the_device(system: httpx.Client, lab: dict, receiver: Receiver):
    dev = device(lab, "cisco_ios")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "command": "show clock",
        "webhook": {"url": receiver.url()},
    }
    run(system, body)
    payload = receiver.wait_for("/hook")[0].json()
    assert payload["device"] == {"host": dev.host, "device_type": "cisco_ios"}
    assert payload["command"] == ["show clock"]


def test_bulk_sends_one_event_per_device(system: httpx.Client, sshd: Any, receiver: Receiver):
    body = {
        "driver": "paramiko",
        "connection_args": {"username": sshd.username, "key_filename": str(sshd.key_filename)},
        "command": "echo bulk",
        "webhook": {"url": receiver.url()},
        "devices": [
            {"host": sshd.host, "port": sshd.port},
            {"host": "127.0.0.1", "port": sshd.port, "command": "echo second"},
        ],
    }
    reply = system.post("/device/bulk", json=body)
    assert reply.status_code == 201, reply.text
    jobs = reply.json()["succeeded"]
    assert len(jobs) == 2
    got = receiver.wait_for("/hook", 2)
    assert {r.json()["id"] for r in got} == {j["id"] for j in jobs}
    outputs = sorted(r.json()["result"]["retval"][0]["stdout"].strip() for r in got)
    assert outputs == ["bulk", "second"]


def test_cancelled_queued_job_gets_a_canceled_event(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    # The device's one pinned slot is busy, so the next job waits behind it.
    blocker = submit(
        system,
        paramiko_job(sshd, "sleep 3", {"url": receiver.url("/other")}, queue_strategy="pinned"),
    )
    waiting = submit(
        system, paramiko_job(sshd, "echo no", {"url": receiver.url()}, queue_strategy="pinned")
    )
    listed = system.get("/jobs", params={"status": "queued"}).json()
    assert waiting["id"] in {j["id"] for j in listed}
    assert system.delete(f"/jobs/{waiting['id']}").status_code == 200
    [got] = receiver.wait_for("/hook")
    payload = got.json()
    assert payload["event_type"] == "job.canceled" and payload["status"] == "canceled"
    assert payload["result"]["error"]["type"] == "canceled"
    wait_job(system, blocker["id"])


def test_job_started_is_sent_only_to_webhooks_that_ask_for_it(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    asked = {"url": receiver.url("/started"), "events": ["job.started"]}
    job = run(system, paramiko_job(sshd, "echo begun", asked))
    got = receiver.wait_for("/started", count=2, timeout=30)
    by_type = {g.json()["event_type"]: g for g in got}
    assert set(by_type) == {"job.started", "job.completed"}
    started = by_type["job.started"].json()
    assert (started["id"], started["final"], started["status"]) == (job["id"], False, "started")
    assert started["started_at"] and started["command"] == ["echo begun"]
    assert "result" not in started
    assert verify(by_type["job.started"])["event_type"] == "job.started"
    assert (
        by_type["job.started"].headers["webhook-id"]
        != by_type["job.completed"].headers["webhook-id"]
    )

    run(system, paramiko_job(sshd, "echo quiet", {"url": receiver.url("/not-asked")}))
    [only] = receiver.wait_for("/not-asked", count=1, timeout=30)
    assert only.json()["event_type"] == "job.completed"
    bad = system.post(
        "/device/exec",
        json=paramiko_job(sshd, "true", {"url": receiver.url("/x"), "events": ["job.bogus"]}),
    )
    assert bad.status_code == 422


def test_a_webhook_without_output_never_sees_device_output(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    secret_text = "device-output-that-must-not-leave"
    command = "printf '%s-%s\\n' device-output that-must-not-leave"  # the output is not in it
    hook = {"url": receiver.url("/no-output"), "include_output": False}
    job = run(system, paramiko_job(sshd, command, hook))
    [got] = receiver.wait_for("/no-output", timeout=30)
    event = got.json()
    assert secret_text not in got.body.decode()
    assert event["status"] == "finished" and event["job_url"] == f"/jobs/{job['id']}"
    assert event["result"]["retval"] == [{"command": command, "exit_status": 0}]
    assert secret_text in system.get(f"/jobs/{job['id']}").json()["result"]["retval"][0]["stdout"]

    failing = {**paramiko_job(sshd, "true", hook)}
    failing["connection_args"] = {**failing["connection_args"], "port": 1}
    failed = run(system, failing)
    assert failed["status"] == "failed"
    events = receiver.wait_for("/no-output", count=2, timeout=30)
    error = events[-1].json()["result"]["error"]
    assert error == {"type": failed["result"]["error"]["type"]}

"""Detached tasks on a real OpenSSH host: launched by a job that returns at once, followed by
the follower process (`netpulse worker detached`), their logs pushed to a real receiver in
byte ranges, one final event each; killed through the API; surviving a killed follower."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import netpulse_sdk
import pytest

from tests.conftest import API_KEY, ProcessHandle
from tests.integration.helpers import run, ssh_args
from tests.support import processes
from tests.support.receiver import Receiver


def detached_job(sshd: Any, command: str, path: str, receiver: Receiver, **extra: Any) -> dict:
    return {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": command,
        "detach": True,
        "push_interval": 5,
        "webhook": {"url": receiver.url(path)},
        **extra,
    }


def wait_final(api: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        reply = api.get(f"/detached-tasks/{task_id}").json()
        return reply if reply["completed"] else None

    return processes.wait_until(ended, timeout, f"detached task {task_id} to end")


def pushes_and_final(receiver: Receiver, path: str) -> tuple[list[dict], list[dict]]:
    """The task's log pushes and final events received, one per ``webhook-id`` (a receiver
    de-duplicates on it), pushes in byte order. (The launching job's own ``job.completed``
    goes to the same webhook and is left out.)"""
    pushes: dict[str, dict] = {}
    finals: dict[str, dict] = {}
    for got in receiver.on(path):
        event = got.json()
        if not event["event_type"].startswith("detached."):
            continue
        (finals if event["final"] else pushes)[got.headers["webhook-id"]] = event
    return sorted(pushes.values(), key=lambda e: e["offset"]), list(finals.values())


def assert_contiguous(pushes: list[dict]) -> str:
    offset = 0
    for push in pushes:
        assert push["event_type"] == "detached.log_push"
        assert push["offset"] == offset, f"gap or overlap at {offset}: {push['offset']}"
        assert push["next_offset"] - push["offset"] == len(push["output"].encode())
        offset = push["next_offset"]
    return "".join(p["output"] for p in pushes)


def test_a_task_starts_at_once_its_log_is_pushed_in_order_and_it_completes(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    command = "for i in 1 2 3 4; do echo line $i; sleep 1; done"
    started = time.monotonic()
    job = run(system, detached_job(sshd, command, "/dt-ok", receiver))
    assert job["status"] == "finished", job
    assert time.monotonic() - started < 4, "the job waited for the task"
    task_id = job["task_id"]
    [row] = job["result"]["retval"]
    assert row["metadata"]["task_id"] == task_id and row["metadata"]["pid"] > 0

    end = wait_final(system, task_id)
    assert end["status"] == "completed" and end["exit_code"] == 0 and not end["is_running"]
    assert end["output"] == "line 1\nline 2\nline 3\nline 4\n"
    rest = system.get(f"/detached-tasks/{task_id}", params={"offset": 7}).json()
    assert rest["output"] == "line 2\nline 3\nline 4\n" and rest["offset"] == 7

    processes.wait_until(lambda: pushes_and_final(receiver, "/dt-ok")[1], 30, "the final event")
    [final] = pushes_and_final(receiver, "/dt-ok")[1]
    assert final["event_type"] == "detached.completed" and final["exit_code"] == 0
    assert final["task_id"] == task_id and final["output"].endswith("line 4\n")
    pushes, _ = pushes_and_final(receiver, "/dt-ok")
    assert len(pushes) >= 2, "the log came in one push: the follower did not follow"
    assert assert_contiguous(pushes) == "line 1\nline 2\nline 3\nline 4\n"
    listed = {t["task_id"]: t for t in system.get("/detached-tasks").json()}
    assert listed[task_id]["status"] == "completed"
    assert listed[task_id]["connection_args"]["host"] == sshd.host
    assert "key_filename" not in listed[task_id]["connection_args"]


def test_a_task_that_exits_non_zero_sends_one_detached_failed(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    job = run(system, detached_job(sshd, "echo oops; exit 4", "/dt-fail", receiver))
    end = wait_final(system, job["task_id"])
    assert (end["status"], end["exit_code"]) == ("failed", 4)
    assert end["error"]["type"] == "exit_status"
    processes.wait_until(lambda: pushes_and_final(receiver, "/dt-fail")[1], 30, "the final event")
    pushes, [final] = pushes_and_final(receiver, "/dt-fail")
    assert final["event_type"] == "detached.failed" and final["exit_code"] == 4
    assert assert_contiguous(pushes) == "oops\n"


def test_a_task_killed_through_the_api_stops_on_the_host_and_is_said_killed(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    job = run(system, detached_job(sshd, "echo begun; sleep 300", "/dt-kill", receiver))
    task_id = job["task_id"]
    pid = job["result"]["retval"][0]["metadata"]["pid"]
    processes.wait_until(
        lambda: system.get(f"/detached-tasks/{task_id}").json()["output"], 30, "first bytes"
    )
    reply = system.delete(f"/detached-tasks/{task_id}")
    assert reply.status_code == 200 and reply.json()["status"] == "killing"
    end = wait_final(system, task_id, timeout=30)
    assert end["status"] == "killed" and end["error"]["type"] == "killed"
    assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), "still running"
    home = Path(os.path.expanduser(f"~{sshd.username}"))
    assert not (home / ".netpulse" / "tasks" / task_id).exists(), "its directory is left"
    processes.wait_until(lambda: pushes_and_final(receiver, "/dt-kill")[1], 30, "the final event")
    [final] = pushes_and_final(receiver, "/dt-kill")[1]
    assert final["event_type"] == "detached.failed" and final["error"]["type"] == "killed"
    forgotten = system.delete(f"/detached-tasks/{task_id}")
    assert forgotten.json()["forgotten"] is True
    assert system.get(f"/detached-tasks/{task_id}").status_code == 404


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_killed_follower_loses_no_byte_and_no_final_event(
    system: httpx.Client, sshd: Any, receiver: Receiver, detached_follower: ProcessHandle
) -> None:
    command = "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.25; done"
    job = run(system, detached_job(sshd, command, "/dt-survive", receiver))
    task_id = job["task_id"]
    receiver.wait_for("/dt-survive", count=1, timeout=30)  # the follower pushed once
    assert detached_follower.process is not None
    detached_follower.process.send_signal(signal.SIGKILL)
    detached_follower.process.wait()
    detached_follower.process = None
    detached_follower.start()

    end = wait_final(system, task_id, timeout=90)
    assert end["status"] == "completed"
    processes.wait_until(
        lambda: pushes_and_final(receiver, "/dt-survive")[1], 30, "the final event"
    )
    pushes, finals = pushes_and_final(receiver, "/dt-survive")
    assert len(finals) == 1 or len({f["id"] for f in finals}) == 1
    expected = "".join(f"tick {i}\n" for i in range(40))
    assert assert_contiguous(pushes) == expected


def test_bad_requests_are_refused_with_a_sentence(system: httpx.Client, sshd: Any) -> None:
    plain = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": "true"}
    no_detach = system.post("/device/exec", json={**plain, "push_interval": 5})
    assert no_detach.status_code == 422 and "detach: true" in no_detach.text
    too_fast = system.post("/device/exec", json={**plain, "detach": True, "push_interval": 1})
    assert too_fast.status_code == 422
    netmiko = {
        "driver": "netmiko",
        "connection_args": {"device_type": "cisco_ios", "host": "127.0.0.1", "username": "u"},
        "command": "show clock",
        "detach": True,
    }
    refused = system.post("/device/exec", json=netmiko)
    assert refused.status_code == 422 and "cannot start detached tasks" in refused.text
    config = system.post(
        "/device/exec", json={**plain, "command": None, "config": ["x"], "detach": True}
    )
    assert config.status_code == 422
    escaping = system.post("/device/exec", json={**plain, "detach": True, "task_id": "../x"})
    assert escaping.status_code == 422 and "task_id" in escaping.text
    assert system.get("/detached-tasks/no-such-task").status_code == 404
    assert system.get("/detached-tasks/../../etc").status_code == 404
    assert system.get("/detached-tasks", params={"status": "odd"}).status_code == 422


def test_the_public_client_follows_kills_and_rediscovers_tasks(
    system: httpx.Client, controller_url: str, sshd: Any
) -> None:
    args = ssh_args(sshd)
    host = args.pop("host")
    with netpulse_sdk.NetPulseClient(base_url=controller_url, api_key=API_KEY) as client:
        job = client.run(
            devices=host,
            command="echo one; sleep 1; echo two",
            driver="paramiko",
            connection_args=args,
            detach=True,
        )
        job.wait()
        task_id = job.task_id
        assert task_id
        log = client.tail_detached_task(task_id, poll_interval=0.5)
        assert log == "one\ntwo\n"
        assert any(t.task_id == task_id for t in client.list_detached_tasks())

        long = client.run(
            devices=host, command="sleep 300", driver="paramiko", connection_args=args, detach=True
        )
        long.wait()
        assert client.get_detached_task(long.task_id).is_running
        # Forgotten by the server (as after a Redis that lost its data), found on the host.
        forgotten = system.delete("/detached-tasks").json()
        assert long.task_id in forgotten
        found = client.discover_detached_tasks(host, connection_args=args)
        assert long.task_id in {t.task_id for t in found}
        assert client.cancel_detached_task(long.task_id) is True
        end = wait_final(system, long.task_id, timeout=30)
        assert end["status"] == "killed"


@pytest.fixture(autouse=True)
def _follower_running(detached_follower: ProcessHandle) -> None:
    """A test that killed the follower started it again; make sure it is there."""
    if detached_follower.process is None:
        detached_follower.start()


def _kill_leftover(pid: int) -> None:
    """The host's task outlives what a test did to NetPulse (that is the point); stop it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def test_a_host_gone_longer_than_the_limit_fails_its_task(
    system: httpx.Client, receiver: Receiver
) -> None:
    from tests.support.sshd import OpenSSHServer

    with OpenSSHServer() as lonely:
        job = run(system, detached_job(lonely, "sleep 300", "/dt-lost", receiver))
        assert job["status"] == "finished", job
        pid = job["result"]["retval"][0]["metadata"]["pid"]
    try:  # the server is stopped; the task's process runs on
        end = wait_final(system, job["task_id"], timeout=60)
        assert end["status"] == "failed" and end["error"]["type"] == "host_unreachable"
        assert "could not be reached" in end["error"]["message"]
        processes.wait_until(
            lambda: pushes_and_final(receiver, "/dt-lost")[1], 30, "the final event"
        )
    finally:
        _kill_leftover(pid)


def test_a_task_whose_directory_vanished_fails_with_that_reason(
    system: httpx.Client, sshd: Any, receiver: Receiver
) -> None:
    import shutil

    job = run(system, detached_job(sshd, "sleep 300", "/dt-gone", receiver))
    assert job["status"] == "finished", job
    pid = job["result"]["retval"][0]["metadata"]["pid"]
    home = Path(os.path.expanduser(f"~{sshd.username}"))
    try:
        shutil.rmtree(home / ".netpulse" / "tasks" / job["task_id"])
        end = wait_final(system, job["task_id"], timeout=30)
        assert end["status"] == "failed" and end["error"]["type"] == "task_vanished"
    finally:
        _kill_leftover(pid)


def _stored_task(redis: Any, task_id: str) -> Any:
    """A running task stored as launch stores one (no host behind it: store tests only)."""
    from netpulse.detached import store
    from netpulse.detached.store import DetachedTask, TaskStatus

    task = DetachedTask(
        task_id=task_id,
        host="h",
        driver="paramiko",
        command=["x"],
        status=TaskStatus.RUNNING,
        created_at=time.time(),
        request="{}",
    )
    store.create(redis, task)
    return task


def test_the_kept_log_drops_its_oldest_half_past_the_cap_and_says_so(redis: Any) -> None:
    from netpulse.detached import store

    task = _stored_task(redis, "cap-test")
    try:
        for chunk in (b"a" * 3000, b"b" * 3000):
            store.write_ahead(redis, task, chunk, max_log_bytes=4096)
            task = store.get(redis, "cap-test")
            assert task is not None
        assert (task.offset, task.log_start) == (6000, 6000 - 2048)
        data, start, dropped = store.read_log(redis, task, 0)
        assert (start, dropped) == (3952, 3952)
        assert data == b"b" * 2048
        data, start, dropped = store.read_log(redis, task, 5000)
        assert (data, start, dropped) == (b"b" * 1000, 5000, 0)
    finally:
        store.forget(redis, task)


def test_a_task_for_a_host_that_cannot_be_reached_fails_at_launch(
    system: httpx.Client, receiver: Receiver
) -> None:
    from netpulse.runtime.ports import free_port

    body = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "port": free_port(), "username": "nobody"},
        "command": "sleep 1",
        "detach": True,
    }
    job = run(system, body)
    assert job["status"] == "failed" and job["result"]["error"]["type"] == "connection"
    assert not [t for t in system.get("/detached-tasks").json() if t["job_id"] == job["id"]]


def test_a_host_with_as_many_running_tasks_as_allowed_refuses_one_more(
    system: httpx.Client, sshd: Any, redis: Any, receiver: Receiver
) -> None:
    from netpulse.detached import store

    fillers = [f"filler-{i}" for i in range(20)]  # detached.max_tasks_per_host (default 20)
    redis.sadd(store.host_key(sshd.host), *fillers)
    try:
        job = run(system, detached_job(sshd, "sleep 1", "/dt-limit", receiver))
        assert job["status"] == "failed", job
        assert "detached.max_tasks_per_host" in job["result"]["error"]["message"]
    finally:
        redis.srem(store.host_key(sshd.host), *fillers)


def test_a_character_cut_in_two_by_a_read_is_pushed_whole_and_records_expire_after_the_end(
    system: httpx.Client, sshd: Any, receiver: Receiver, redis: Any
) -> None:
    from netpulse.detached import store

    command = r"printf '\303'; sleep 2; printf '\251\n'"  # é, its two bytes 2 s apart
    job = run(system, detached_job(sshd, command, "/dt-utf8", receiver))
    task_id = job["task_id"]
    assert redis.ttl(store.task_key(task_id)) == -1, "a running task's record expires"
    end = wait_final(system, task_id)
    assert end["status"] == "completed" and end["output"] == "é\n"
    processes.wait_until(lambda: pushes_and_final(receiver, "/dt-utf8")[1], 30, "the final event")
    pushes, _ = pushes_and_final(receiver, "/dt-utf8")
    assert assert_contiguous(pushes) == "é\n"
    retention = 7 * 86400  # detached.retention_seconds
    assert 0 < redis.ttl(store.task_key(task_id)) <= retention
    assert 0 < redis.ttl(store.log_key(task_id)) <= retention


def test_a_write_after_a_task_was_forgotten_recreates_nothing(redis: Any) -> None:
    from netpulse.detached import store

    task = _stored_task(redis, "late-write")
    store.write_ahead(redis, task, b"first", max_log_bytes=4096)
    with pytest.raises(store.TaskGone):  # the offset moved: this range was read already
        store.write_ahead(redis, task, b"first", max_log_bytes=4096)
    store.forget(redis, task)
    assert store.update(redis, "late-write", last_sync=time.time()) is False
    with pytest.raises(store.TaskGone):
        store.write_ahead(redis, task, b"late", max_log_bytes=4096)
    assert not redis.exists(store.task_key("late-write"), store.log_key("late-write"))
    assert store.get(redis, "late-write") is None

"""`netpulse detached` as a user runs it against the running system: tail --follow prints
the whole log once and exits with the task's outcome; list shows tasks; kill stops one;
errors are one sentence on stderr, never a traceback."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest

from netpulse.runtime.ports import free_port
from tests.conftest import API_KEY
from tests.integration.helpers import ssh_args


@pytest.fixture
def cli(netpulse_env: dict[str, str], controller_url: str) -> Any:
    env = {
        **netpulse_env,
        "NETPULSE_URL": controller_url,
        "NETPULSE_API_KEY": API_KEY,
    }

    def run(*args: str, timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "netpulse", "detached", *args],
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


def launch(system: httpx.Client, sshd: Any, command: str) -> str:
    body = {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": command,
        "detach": True,
        "push_interval": 5,
    }
    reply = system.post("/device/exec", json=body)
    assert reply.status_code == 201, reply.text
    job = system.get(f"/jobs/{reply.json()['id']}", params={"wait": 30}).json()
    assert job["status"] == "finished", job
    return str(job["task_id"])


def test_tail_follow_prints_the_whole_log_once_and_exits_0(
    system: httpx.Client, sshd: Any, cli: Any
) -> None:
    task_id = launch(system, sshd, "for i in 1 2 3 4; do echo line $i; sleep 1; done")
    done = cli("tail", task_id, "--follow", "--interval", "0.5")
    assert (done.returncode, done.stdout) == (0, "line 1\nline 2\nline 3\nline 4\n"), done
    assert system.get(f"/detached-tasks/{task_id}").json()["status"] == "completed"


def test_tail_follow_prints_a_character_whose_bytes_came_in_two_reads_whole(
    system: httpx.Client, sshd: Any, cli: Any
) -> None:
    # "é" is c3 a9: the follower reads c3 at once and a9 only after the sleep.
    task_id = launch(system, sshd, "printf '\\303'; sleep 6; printf '\\251\\n'")
    done = cli("tail", task_id, "--follow", "--interval", "0.5")
    assert (done.returncode, done.stdout) == (0, "é\n"), done


def test_a_failing_task_exits_1_with_its_error_and_is_listed(
    system: httpx.Client, sshd: Any, cli: Any
) -> None:
    task_id = launch(system, sshd, "echo oops; exit 3")
    done = cli("tail", task_id, "--follow", "--interval", "0.5")
    assert (done.returncode, done.stdout) == (1, "oops\n"), done
    assert "exited with status 3" in done.stderr and task_id in done.stderr

    listed = cli("list", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if task_id in line]
    assert row.split()[:5] == [task_id, sshd.host, "failed", "3", "5"]
    assert "echo oops; exit 3" in row
    running = cli("list", "--status", "running")
    assert task_id not in running.stdout


def test_ctrl_c_stops_following_then_kill_stops_the_task_and_tail_says_killed(
    system: httpx.Client, sshd: Any, cli: Any, netpulse_env: dict[str, str], controller_url: str
) -> None:
    task_id = launch(system, sshd, "echo begun; sleep 300")
    env = {**netpulse_env, "NETPULSE_URL": controller_url, "NETPULSE_API_KEY": API_KEY}
    following = subprocess.Popen(
        [sys.executable, "-m", "netpulse", "detached", "tail", task_id, "-f", "--interval", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        assert select.select([following.stdout], [], [], 30)[0], "no output from tail -f"
        assert following.stdout is not None and following.stdout.readline() == "begun\n"
        following.send_signal(signal.SIGINT)
        assert following.wait(timeout=30) == 130
    finally:
        following.kill()
        following.communicate()
    killed = cli("kill", task_id)
    assert (killed.returncode, killed.stdout.strip()) == (0, f"detached task {task_id}: killing")
    done = cli("tail", task_id, "--follow", "--interval", "0.5")
    assert (done.returncode, done.stdout) == (1, "begun\n"), done
    assert "killed" in done.stderr
    forgotten = cli("kill", task_id)
    assert "forgotten" in forgotten.stdout and forgotten.returncode == 0


def test_an_unknown_task_or_server_is_one_sentence_and_exit_1(
    system: httpx.Client, cli: Any
) -> None:
    for args in (
        ("tail", "no-such-task"),
        ("tail", "no-such-task", "-f"),
        ("kill", "no-such-task"),
    ):
        done = cli(*args)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.strip() == "404: no detached task 'no-such-task'"
    nobody = cli("list", NETPULSE_URL=f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1 and len(nobody.stderr.strip().splitlines()) == 1
    assert "cannot reach NetPulse" in nobody.stderr
    wrong_key = cli("list", NETPULSE_API_KEY="not-the-key")
    assert wrong_key.returncode == 1 and wrong_key.stderr.startswith("403: ")

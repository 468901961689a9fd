"""The paramiko driver on a Linux host (a real OpenSSH server): the original NetPulse's
`driver_args` for shells: environment, working directory, pseudo-terminal, stop on error."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.helpers import run, ssh_args


def job(sshd: Any, command: Any, **driver_args: Any) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": command,
        "driver_args": driver_args,
    }


def outputs(finished: dict[str, Any]) -> list[tuple[str, int]]:
    assert finished["status"] == "finished", finished
    return [(r["stdout"].strip(), r["exit_status"]) for r in finished["result"]["retval"]]


def test_environment_and_working_directory_apply_to_every_command(
    system: httpx.Client, sshd: Any
) -> None:
    body = job(
        sshd,
        ['echo "$GREETING $TARGET"', "pwd", "echo a; echo b | tr b c"],
        environment={"GREETING": "hello", "TARGET": "it's $HOME; rm -rf /"},
        working_directory="/tmp",
    )
    assert outputs(run(system, body)) == [
        ("hello it's $HOME; rm -rf /", 0),  # values are data, never shell code
        ("/tmp", 0),
        ("a\nc", 0),  # the whole command runs inside the directory and environment
    ]


def test_a_missing_working_directory_fails_the_command_with_the_shells_reason(
    system: httpx.Client, sshd: Any
) -> None:
    finished = run(system, job(sshd, "echo never", working_directory="/no/such/dir"))
    [result] = finished["result"]["retval"]
    assert result["exit_status"] != 0 and "never" not in result["stdout"]
    assert "/no/such/dir" in result["stderr"]


def test_stop_on_error_reports_the_rest_as_not_run(system: httpx.Client, sshd: Any) -> None:
    finished = run(system, job(sshd, ["echo one", "exit 4", "echo three"], stop_on_error=True))
    assert outputs(finished) == [("one", 0), ("", 4), ("", -1)]
    assert "not run" in finished["result"]["retval"][2]["stderr"]
    without = run(system, job(sshd, ["exit 4", "echo three"]))
    assert outputs(without) == [("", 4), ("three", 0)]  # the default runs every command


def test_get_pty_gives_the_command_a_terminal(system: httpx.Client, sshd: Any) -> None:
    check = "if [ -t 1 ]; then echo tty; else echo notty; fi"
    assert outputs(run(system, job(sshd, check, get_pty=True))) == [("tty", 0)]
    assert outputs(run(system, job(sshd, check))) == [("notty", 0)]


def test_an_environment_name_that_is_not_an_identifier_is_refused(api: httpx.Client) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "username": "u"},
        "command": "true",
        "driver_args": {"environment": {"A;rm": "x"}},
    }
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422
    assert "environment" in reply.text

"""The paramiko driver's shell on a real OpenSSH server: sudo (password on stdin only),
answers to interactive prompts (``expect_map``) and scripts (``script_content``)."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.helpers import run, ssh_args
from tests.support.sshd import OpenSSHServer

SUDO_USER = "netpulse-sudo"
SUDO_PASSWORD = "s3cret-" + secrets.token_hex(8)
SUDOERS = Path(f"/etc/sudoers.d/netpulse-test-{SUDO_USER}")


@pytest.fixture(scope="module")
def sudo_host() -> Iterator[OpenSSHServer]:
    """An account with a password that sudo asks for (a `sudoers.d` rule, checked by
    `visudo -c`), behind its own sshd."""
    with OpenSSHServer(username=SUDO_USER, password=SUDO_PASSWORD) as server:
        rule = f"{SUDO_USER} ALL=(ALL:ALL) ALL\nDefaults:{SUDO_USER} !lecture\n"
        SUDOERS.write_text(rule)
        SUDOERS.chmod(0o440)
        try:
            check = subprocess.run(["visudo", "-cf", str(SUDOERS)], capture_output=True)
            assert check.returncode == 0, check.stderr
            yield server
        finally:
            SUDOERS.unlink(missing_ok=True)


def job(server: Any, command: Any = None, **driver_args: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "driver": "paramiko",
        "connection_args": ssh_args(server),
        "driver_args": driver_args,
    }
    if command is not None:
        body["command"] = command
    return body


def rows(finished: dict[str, Any]) -> list[dict[str, Any]]:
    assert finished["status"] == "finished", finished
    return list(finished["result"]["retval"])


def test_sudo_runs_as_root_with_the_password_on_stdin_only(
    system: httpx.Client, sudo_host: OpenSSHServer
) -> None:
    finished = run(
        system,
        job(
            sudo_host,
            ["id -u", "ps -eo args", "cat /etc/shadow >/dev/null && echo read"],
            sudo=True,
            sudo_password=SUDO_PASSWORD,
        ),
    )
    whoami, processes, shadow = rows(finished)
    assert (whoami["stdout"].strip(), whoami["exit_status"]) == ("0", 0)
    assert processes["exit_status"] == 0 and "sudo" in processes["stdout"]
    assert shadow["stdout"].strip() == "read"
    # Not in any command line of the host (ps ran while sudo was running), nor the result.
    assert SUDO_PASSWORD not in json.dumps(finished)


def test_a_wrong_sudo_password_fails_the_command_at_once(
    system: httpx.Client, sudo_host: OpenSSHServer
) -> None:
    finished = run(system, job(sudo_host, "id -u", sudo=True, sudo_password="wrong"))
    [row] = rows(finished)
    assert row["exit_status"] != 0 and row["stdout"].strip() != "0"
    assert "incorrect password" in row["stderr"] or "try again" in row["stderr"]


def test_sudo_without_a_password_does_not_wait_for_one(
    system: httpx.Client, sudo_host: OpenSSHServer
) -> None:
    [row] = rows(run(system, job(sudo_host, "id -u", sudo=True)))
    assert row["exit_status"] != 0
    assert "password is required" in row["stderr"]


def test_a_terminal_echoing_the_sudo_password_shows_it_masked(
    system: httpx.Client, sudo_host: OpenSSHServer
) -> None:
    finished = run(
        system,
        job(sudo_host, "id -u", sudo=True, sudo_password=SUDO_PASSWORD, get_pty=True),
    )
    [row] = rows(finished)
    assert row["stdout"].split()[-1] == "0"
    assert SUDO_PASSWORD not in json.dumps(finished)


def test_expect_map_answers_prompts_in_turn(system: httpx.Client, sshd: Any) -> None:
    command = "printf 'Continue? [y/N] '; read a; printf 'Name: '; read b; echo \"answers $a $b\""
    finished = run(
        system, job(sshd, command, expect_map={r"Continue\? \[y/N\]": "y", "Name:": "core-1"})
    )
    [row] = rows(finished)
    assert row["exit_status"] == 0
    assert row["stdout"].strip().endswith("answers y core-1")


def test_without_expect_map_a_prompt_reads_end_of_input(system: httpx.Client, sshd: Any) -> None:
    [row] = rows(run(system, job(sshd, "printf 'Continue? '; read a || echo eof")))
    assert row["stdout"].strip().endswith("eof")  # the command never waits for input


def test_an_expect_map_prompt_that_is_not_a_regex_is_refused(api: httpx.Client) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "username": "u"},
        "command": "true",
        "driver_args": {"expect_map": {"[unclosed": "y"}},
    }
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422
    assert "expect_map" in reply.text and "[unclosed" in reply.text


def test_a_script_is_uploaded_run_with_its_interpreter_and_removed(
    system: httpx.Client, sshd: Any
) -> None:
    script = (
        "import os, sys\nprint('python', sys.argv[0], oct(os.stat(sys.argv[0]).st_mode & 0o777))\n"
    )
    finished = run(system, job(sshd, script_content=script, script_interpreter="python3"))
    [row] = rows(finished)
    assert row["exit_status"] == 0, row
    assert row["command"] == "script_content (python3)"
    word, path, mode = row["stdout"].split()
    assert (word, mode) == ("python", "0o600")  # a private file
    [check] = rows(run(system, job(sshd, f"test -e {path}; echo $?")))
    assert check["stdout"].strip() == "1"  # removed after the run


def test_a_script_runs_under_the_shell_options_and_keeps_its_exit_status(
    system: httpx.Client, sudo_host: OpenSSHServer
) -> None:
    script = 'echo "$(id -u) in $(pwd) with $COLOUR"\nexit 3\n'
    [row] = rows(
        run(
            system,
            job(
                sudo_host,
                script_content=script,
                sudo=True,
                sudo_password=SUDO_PASSWORD,
                working_directory="/tmp",
                environment={"COLOUR": "green"},
            ),
        )
    )
    assert (row["stdout"].strip(), row["exit_status"]) == ("0 in /tmp with green", 3)


def test_a_script_with_a_command_or_an_interpreter_alone_is_refused(api: httpx.Client) -> None:
    base = {"driver": "paramiko", "connection_args": {"host": "127.0.0.1", "username": "u"}}
    both = api.post(
        "/device/exec", json={**base, "command": "ls", "driver_args": {"script_content": "ls"}}
    )
    assert both.status_code == 422 and "script_content" in both.text
    alone = api.post(
        "/device/exec",
        json={**base, "command": "ls", "driver_args": {"script_interpreter": "bash"}},
    )
    assert alone.status_code == 422 and "without script_content" in alone.text
    lone_password = api.post(
        "/device/exec",
        json={**base, "command": "ls", "driver_args": {"sudo_password": "x"}},
    )
    assert lone_password.status_code == 422 and "without sudo" in lone_password.text
    assert "x" not in lone_password.json().get("detail", [{}])[0].get("input", "")


def test_a_script_is_rendered_with_the_request_context(system: httpx.Client, sshd: Any) -> None:
    body = job(sshd, script_content="echo '{{ greeting }}, {{ site }}'")
    body["rendering"] = {"context": {"greeting": "hello", "site": "ams1"}}
    [row] = rows(run(system, body))
    assert row["stdout"].strip() == "hello, ams1"
    bad = system.post("/device/exec", json={**body, "rendering": {"context": {}}})
    # An undefined variable is a 422 naming it, as for a rendered command.
    assert bad.status_code == 422 and "greeting" in bad.text

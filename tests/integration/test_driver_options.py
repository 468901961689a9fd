"""Driver options are allowlisted (issue 10, part 1): through HTTP, against the session's
real controller and workers.

A client option that is not on its driver's list is refused with 422 naming the option and
the driver, and nothing is queued; an option naming a file on the worker host is accepted only
inside the device files directory (`drivers.files_dir`, the temporary directory in these
tests: tests/conftest.py), and `session_log` never.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DEVICE_FILES_DIR
from tests.integration.helpers import run, ssh_args_for

FILES_DIR = Path(DEVICE_FILES_DIR)
#: A host nothing listens on: validation must not need a device.
NOWHERE = {"host": "127.0.0.1", "port": 1, "username": "u", "password": "p"}


#: Options netpulse-sdk sends for netmiko: on the allowlist.
SDK_CONNECTION_ARGS = {
    "timeout": 30,
    "conn_timeout": 10,
    "auth_timeout": 10,
    "banner_timeout": 15,
    "global_delay_factor": 1,
    "fast_cli": False,
}
SDK_DRIVER_ARGS = {
    "read_timeout": 20,
    "strip_prompt": True,
    "strip_command": True,
    "cmd_verify": False,
    "use_textfsm": False,
}


def queued_ids(api: httpx.Client) -> set[str]:
    """The ids of every job the API lists now. Compared as sets: older jobs expire (their
    result_ttl) while a test runs, so a count could drop although nothing was queued."""
    return {job["id"] for job in api.get("/jobs", params={"limit": 10000}).json()}


def refusal(reply: httpx.Response) -> str:
    """The 422's messages, in one string."""
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    if isinstance(detail, str):
        return detail
    return " | ".join(str(item["msg"]) for item in detail)


def netmiko_job(connection_args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "driver": "netmiko",
        "connection_args": {"device_type": "linux", **connection_args},
        "command": "echo hello",
        **extra,
    }


def refused_exec(api: httpx.Client, body: dict[str, Any]) -> str:
    before = queued_ids(api)
    message = refusal(api.post("/device/exec", json=body))
    assert not queued_ids(api) - before, "a refused job was queued"
    return message


# --- session_log: never --------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["pinned", "fifo"])
def test_session_log_is_refused_and_writes_no_file(
    system: httpx.Client, sshd: Any, tmp_path: Path, strategy: str
) -> None:
    log = tmp_path / f"session-{strategy}.log"  # inside the files directory, even so
    args = {**ssh_args_for(sshd, "netmiko"), "session_log": str(log)}
    message = refused_exec(system, netmiko_job(args, queue_strategy=strategy))
    assert "connection_args.session_log" in message and "netmiko" in message
    time.sleep(1.5)  # long enough for a worker to have logged in, had the job been queued
    assert not log.exists()


def test_session_log_in_napalm_optional_args_is_refused(system: httpx.Client) -> None:
    body = {
        "driver": "napalm",
        "connection_args": {
            **NOWHERE,
            "device_type": "ios",
            "optional_args": {"session_log": "/tmp/netpulse-napalm-session.log"},
        },
        "command": "get_facts",
    }
    message = refused_exec(system, body)
    assert "connection_args.optional_args.session_log" in message and "napalm" in message


# --- ssh_config_file: inside the files directory only, and nothing of the file leaks ------


def _first_line(path: str) -> str:
    return Path(path).read_text().splitlines()[0]


@pytest.mark.parametrize("system_file", ["/etc/passwd", "/etc/hostname"])
def test_ssh_config_file_outside_is_refused_and_leaks_nothing(
    system: httpx.Client, sshd: Any, system_file: str
) -> None:
    leaked = _first_line(system_file)
    args = {**ssh_args_for(sshd, "netmiko"), "ssh_config_file": system_file}
    message = refused_exec(system, netmiko_job(args, queue_strategy="fifo"))
    assert "connection_args.ssh_config_file" in message and "netmiko" in message
    assert "files_dir" in message
    assert leaked not in message
    # /device/test connects at once, in the controller: refused before that too.
    reply = system.post("/device/test", json={"driver": "netmiko", "connection_args": args})
    assert "ssh_config_file" in refusal(reply)
    assert leaked not in reply.text


def test_ssh_config_file_through_dotdot_or_symlink_is_refused(
    system: httpx.Client, tmp_path: Path
) -> None:
    link = tmp_path / "looks-inside"
    link.symlink_to("/etc/passwd")
    dotdot = str(FILES_DIR / "x" / ".." / ".." / "etc" / "passwd")
    for path in (str(link), dotdot):
        args = {**NOWHERE, "ssh_config_file": path}
        message = refused_exec(system, netmiko_job(args, queue_strategy="fifo"))
        assert "connection_args.ssh_config_file" in message
        assert _first_line("/etc/passwd") not in message


# --- unknown options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("driver", "extra"),
    [
        ("netmiko", {"device_type": "linux"}),
        ("paramiko", {}),
        ("napalm", {"device_type": "ios"}),
        ("pyeapi", {}),
    ],
)
def test_unknown_connection_option_is_refused_naming_it_and_the_driver(
    system: httpx.Client, driver: str, extra: dict[str, Any]
) -> None:
    body = {
        "driver": driver,
        "queue_strategy": "fifo",
        "connection_args": {**NOWHERE, **extra, "frobnicate": True},
        "command": "show version",
    }
    message = refused_exec(system, body)
    assert "connection_args.frobnicate" in message
    assert f"{driver} driver" in message


def test_only_the_unknown_option_is_named_beside_the_sdk_options(system: httpx.Client) -> None:
    body = netmiko_job(
        {**NOWHERE, **SDK_CONNECTION_ARGS, "secret": "s", "frobnicate": 1},
        queue_strategy="fifo",
        driver_args={**SDK_DRIVER_ARGS, "expect_string": "#", "delay_factor": 1},
    )
    message = refused_exec(system, body)
    assert "connection_args.frobnicate" in message
    assert message.count("connection_args.") == 1 and "driver_args." not in message


@pytest.mark.parametrize("driver", ["netmiko", "paramiko", "napalm", "pyeapi"])
def test_unknown_driver_arg_is_refused(system: httpx.Client, driver: str) -> None:
    extra = {"netmiko": {"device_type": "linux"}, "napalm": {"device_type": "ios"}}
    body = {
        "driver": driver,
        "queue_strategy": "fifo",
        "connection_args": {**NOWHERE, **extra.get(driver, {})},
        "driver_args": {"frobnicate": 1},
        "command": "show version",
    }
    message = refused_exec(system, body)
    assert "driver_args.frobnicate" in message and f"{driver} driver" in message


@pytest.mark.parametrize(
    ("driver", "option", "reason"),
    [
        ("netmiko", "allow_agent", "agent"),
        ("paramiko", "allow_agent", "agent"),
        ("netmiko", "sock_telnet", "proxy"),
    ],
)
def test_options_refused_on_purpose_say_why(
    system: httpx.Client, driver: str, option: str, reason: str
) -> None:
    value: Any = {"host": "10.0.0.1", "port": 3128} if option == "sock_telnet" else True
    extra = {"device_type": "linux"} if driver == "netmiko" else {}
    body = {"driver": driver, "connection_args": {**NOWHERE, **extra, option: value}}
    message = refused_exec(system, {**body, "command": "true", "queue_strategy": "fifo"})
    assert f"connection_args.{option}" in message and reason in message


def test_wrong_type_is_refused_naming_the_option(system: httpx.Client) -> None:
    body = {"driver": "paramiko", "connection_args": {**NOWHERE, "timeout": "soon"}}
    message = refused_exec(system, {**body, "command": "true"})
    assert "connection_args.timeout" in message and "paramiko" in message


def test_bulk_refuses_shared_options_and_lists_bad_devices(system: httpx.Client) -> None:
    before = queued_ids(system)
    shared = {
        "driver": "paramiko",
        "queue_strategy": "fifo",
        "command": "true",
        "connection_args": {"username": "u", "password": "p", "session_log": "/tmp/x.log"},
        "devices": [{"host": "127.0.0.1", "port": 1}],
    }
    assert "session_log" in refusal(system.post("/device/bulk", json=shared))
    per_device = {
        **shared,
        "connection_args": {"username": "u", "password": "p", "port": 1},
        "devices": [{"host": "127.0.0.1", "key_filename": "/etc/shadow"}],
    }
    reply = system.post("/device/bulk", json=per_device)
    assert reply.status_code == 201, reply.text
    result = reply.json()
    assert result["succeeded"] == []
    [failure] = result["failed"]
    assert "connection_args.key_filename" in failure["reason"]
    assert not queued_ids(system) - before


# --- key files: inside the files directory works, outside is refused ----------------------


@pytest.mark.parametrize("driver", ["paramiko", "netmiko"])
def test_key_file_relative_to_the_files_dir_logs_in(
    system: httpx.Client, sshd: Any, driver: str
) -> None:
    args = ssh_args_for(sshd, driver)
    option = "key_filename" if driver == "paramiko" else "key_file"
    relative = Path(args[option]).resolve().relative_to(FILES_DIR)
    body = {
        "driver": driver,
        "connection_args": {**args, option: str(relative)},
        "command": "echo key-login",
    }
    if driver == "netmiko":  # and what netpulse-sdk sends passes and works
        body["connection_args"].update(SDK_CONNECTION_ARGS)
        body["driver_args"] = SDK_DRIVER_ARGS
    job = run(system, body)
    assert job["status"] == "finished", job
    assert job["result"]["retval"][0]["stdout"].strip() == "key-login"


@pytest.fixture
def key_outside(sshd: Any) -> Any:
    """A copy of the test server's (valid) client key, outside the files directory."""
    home = Path.home().resolve()
    if home.is_relative_to(FILES_DIR):
        pytest.skip("the home directory is inside the files directory")
    copy = home / f".netpulse-test-key-{uuid.uuid4().hex}"
    shutil.copyfile(sshd.key_filename, copy)
    copy.chmod(0o600)
    yield copy
    copy.unlink(missing_ok=True)


@pytest.mark.parametrize("driver", ["paramiko", "netmiko"])
def test_key_file_outside_the_files_dir_is_refused(
    system: httpx.Client, sshd: Any, key_outside: Path, driver: str
) -> None:
    args = ssh_args_for(sshd, driver)
    option = "key_filename" if driver == "paramiko" else "key_file"
    body = {
        "driver": driver,
        "queue_strategy": "fifo",
        "connection_args": {**args, option: str(key_outside)},
        "command": "echo should-not-run",
    }
    message = refused_exec(system, body)
    assert f"connection_args.{option}" in message and driver in message
    reply = system.post(
        "/device/test", json={"driver": driver, "connection_args": body["connection_args"]}
    )
    assert option in refusal(reply)


@pytest.mark.parametrize(
    ("driver", "connection_args", "driver_args", "option"),
    [
        (
            "netmiko",
            {"device_type": "linux", "alt_key_file": "/etc/ssh/ssh_known_hosts"},
            {},
            "alt_key_file",
        ),
        (
            "netmiko",
            {"device_type": "linux"},
            {"textfsm_template": "/etc/passwd"},
            "textfsm_template",
        ),
        ("napalm", {"device_type": "ios", "ssh_config_file": "/etc/passwd"}, {}, "ssh_config_file"),
        (
            "napalm",
            {"device_type": "junos", "optional_args": {"key_file": "/root/.ssh/id_rsa"}},
            {},
            "optional_args.key_file",
        ),
        ("pyeapi", {"cert_file": "/etc/ssl/private/server.pem"}, {}, "cert_file"),
        ("pyeapi", {"ca_file": "../../etc/passwd"}, {}, "ca_file"),
    ],
)
def test_every_path_option_is_confined(
    system: httpx.Client,
    driver: str,
    connection_args: dict[str, Any],
    driver_args: dict[str, Any],
    option: str,
) -> None:
    body = {
        "driver": driver,
        "queue_strategy": "fifo",
        "connection_args": {**NOWHERE, **connection_args},
        "driver_args": driver_args,
        "command": "show version",
    }
    message = refused_exec(system, body)
    where = "driver_args" if driver_args else "connection_args"
    assert f"{where}.{option}" in message and f"{driver} driver" in message

"""The napalm and pyeapi drivers end to end: API -> FIFO worker -> device -> result.

Devices:

* pyeapi talks to :class:`tests.support.eapi_server.EapiServer`, a real eAPI endpoint
  (JSON-RPC over HTTP/HTTPS) on loopback that keeps running and startup config.
* napalm ``ios`` talks to a FakeNOS cisco_ios device over SSH, with ``show version``,
  ``show hosts`` and ``show ip interface brief`` answering in the format napalm's ios
  parsers read, so every fact of ``get_facts`` is checked.
* napalm ``eos`` (config merge, diff, dry_run, commit) talks to the eAPI server. napalm's
  ios driver cannot be used for config against FakeNOS: its merge copies the candidate to
  flash by SCP (or by a TCL script) and diffs it with ``show archive config
  incremental-diffs``, none of which a FakeNOS device can serve. napalm's eos driver does
  the same through config sessions, which are plain eAPI commands.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from netpulse.lab.fleet import LabDevice, LabDeviceSpec, LabFleet
from netpulse.runtime.ports import free_port
from tests.integration.helpers import run
from tests.support.eapi_server import EapiServer

IOS_HOSTNAME = "np-ios-1"

# Shaped as napalm's ios get_facts parser reads it: "<host> uptime is", "Cisco IOS
# Software, ", "Processor board ID", "cisco <model> ... bytes of memory".
SHOW_VERSION = """Cisco IOS Software, CSR1000V Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), \
Version 16.9.4, RELEASE SOFTWARE (fc2)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2019 by Cisco Systems, Inc.

ROM: IOS-XE ROMMON
{hostname} uptime is 2 days, 3 hours, 4 minutes
System returned to ROM by reload
System image file is "bootflash:packages.conf"

cisco CSR1000V (VXE) processor (revision VXE) with 2392579K/3075K bytes of memory.
Processor board ID 9NPLAB00001
3 Gigabit Ethernet interfaces
32768K bytes of non-volatile configuration memory.

Configuration register is 0x2102"""

SHOW_HOSTS = """Default domain is lab.example
Name/address lookup uses domain service
Name servers are 255.255.255.255

Codes: UN - unknown, EX - expired, OK - OK, ?? - revalidate
       temp - temporary, perm - permanent
       NA - Not Applicable None - Not defined

Host                      Port  Flags      Age Type   Address(es)"""

SHOW_IP_INT_BRIEF = """\
Interface              IP-Address      OK? Method Status                Protocol
GigabitEthernet1       127.0.0.11      YES NVRAM  up                    up
GigabitEthernet2       unassigned      YES NVRAM  administratively down down
Loopback0              10.255.0.1      YES manual up                    up"""

_EXEC = ["{base_prompt}>", "{base_prompt}#"]


def _show_version(device: Any, base_prompt: str, current_prompt: str, command: str) -> str:
    return SHOW_VERSION.format(hostname=base_prompt)


NAPALM_IOS_COMMANDS: dict[str, dict[str, Any]] = {
    "show version": {"output": _show_version, "prompt": _EXEC, "help": "napalm get_facts"},
    "show hosts": {"output": SHOW_HOSTS, "prompt": _EXEC, "help": "napalm get_facts"},
    "show ip interface brief": {
        "output": SHOW_IP_INT_BRIEF,
        "prompt": _EXEC,
        "help": "napalm get_facts",
    },
}


@pytest.fixture(scope="module")
def napalm_ios() -> Iterator[LabDevice]:
    """A FakeNOS IOS router answering what napalm's ios get_facts sends."""
    spec = LabDeviceSpec(IOS_HOSTNAME, "cisco_ios", extra_commands=NAPALM_IOS_COMMANDS)
    with LabFleet([spec]) as fleet:
        yield fleet.device(IOS_HOSTNAME)


@pytest.fixture
def eapi() -> Iterator[EapiServer]:
    """A fresh eAPI switch (plain http) per test: config tests change its state."""
    with EapiServer() as server:
        yield server


def pyeapi_body(server: EapiServer, **extra: Any) -> dict[str, Any]:
    args = server.connection_args(**extra.pop("connection_args", {}))
    return {"driver": "pyeapi", "connection_args": args, "queue_strategy": "fifo", **extra}


def napalm_eos_args(server: EapiServer, **overrides: Any) -> dict[str, Any]:
    return {"device_type": "eos", **server.connection_args(timeout=10), **overrides}


def napalm_ios_args(dev: LabDevice, **overrides: Any) -> dict[str, Any]:
    return {**dev.connection_args(), "device_type": "ios", "timeout": 20, **overrides}


def napalm_body(args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"driver": "napalm", "connection_args": args, "queue_strategy": "fifo", **extra}


def finished(job: dict[str, Any]) -> list[dict[str, Any]]:
    assert job["status"] == "finished", job
    assert job["result"]["type"] == 1, job
    return job["result"]["retval"]


# --- pyeapi ---------------------------------------------------------------------------------


def test_pyeapi_show_version_is_parsed(system: httpx.Client, eapi: EapiServer) -> None:
    job = run(system, pyeapi_body(eapi, command="show version"))
    [item] = finished(job)
    assert job["queue"] == "FifoQ"
    assert item["exit_status"] == 0
    assert item["parsed"]["version"] == "4.30.1F"
    assert item["parsed"]["modelName"] == "vEOS-lab"
    assert '"modelName": "vEOS-lab"' in item["stdout"]
    assert item["metadata"]["driver"] == "pyeapi"


def test_pyeapi_text_encoding_returns_cli_text(system: httpx.Client, eapi: EapiServer) -> None:
    body = pyeapi_body(eapi, command="show running-config", driver_args={"encoding": "text"})
    [item] = finished(run(system, body))
    assert "interface Ethernet1" in item["stdout"]
    assert item["parsed"] is None


def test_pyeapi_over_https_by_default(system: httpx.Client) -> None:
    with EapiServer(tls=True) as server:
        args = server.connection_args()
        del args["transport"]  # https is the default; the certificate is self-signed
        body = {"driver": "pyeapi", "connection_args": args, "command": "show hostname"}
        [item] = finished(run(system, body))
    assert item["parsed"] == {"hostname": "eos-lab", "fqdn": "eos-lab.lab.example"}


def test_pyeapi_rejected_command_finishes_with_nonzero_exit(
    system: httpx.Client, eapi: EapiServer
) -> None:
    body = pyeapi_body(eapi, command=["show hostname", "bogus command", "show version"])
    first, bad, last = finished(run(system, body))
    assert first["exit_status"] == 0 and first["parsed"]["hostname"] == "eos-lab"
    assert bad["command"] == "bogus command"
    assert bad["exit_status"] != 0
    assert "invalid command" in bad["stderr"] and "bogus command" in bad["stderr"]
    assert bad["metadata"]["eapi_error_code"] == 1002
    assert last["exit_status"] == 0  # eAPI stops at the error; the driver runs the rest
    assert last["parsed"]["version"] == "4.30.1F"


def test_pyeapi_config_and_save(system: httpx.Client, eapi: EapiServer) -> None:
    lines = ["interface Ethernet1", "description netpulse"]
    job = run(system, pyeapi_body(eapi, config=lines, save=True))
    items = finished(job)
    assert [i["command"] for i in items] == [*lines, "save"]
    assert all(i["exit_status"] == 0 for i in items), items
    assert eapi.state.running["interface Ethernet1"] == ["description netpulse"]
    assert eapi.state.startup["interface Ethernet1"] == ["description netpulse"]
    assert "write memory" in eapi.commands_received()


def test_pyeapi_rejected_config_line_stops_the_push(system: httpx.Client, eapi: EapiServer) -> None:
    lines = ["interface Ethernet2", "description first", "bogus line", "description never"]
    items = finished(run(system, pyeapi_body(eapi, config=lines, save=True)))
    assert [i["command"] for i in items] == lines  # no save after a rejected line
    assert [i["exit_status"] for i in items] == [0, 0, 1, -1]
    assert "invalid command" in items[2]["stderr"]
    assert items[3]["stderr"] == "not run: line 3 was rejected"
    assert "write memory" not in eapi.commands_received()
    assert eapi.state.startup["interface Ethernet2"] == []


def test_pyeapi_wrong_password_fails_as_authentication(
    system: httpx.Client, eapi: EapiServer
) -> None:
    body = pyeapi_body(eapi, command="show version", connection_args={"password": "not-it"})
    job = run(system, body)
    assert job["status"] == "failed"
    assert job["result"]["type"] == 2
    assert job["result"]["error"]["type"] == "authentication"
    assert f"127.0.0.1:{eapi.port}" in job["result"]["error"]["message"]
    assert "not-it" not in str(job)


def test_pyeapi_closed_port_fails_as_connection(system: httpx.Client) -> None:
    port = free_port()
    body = {
        "driver": "pyeapi",
        "connection_args": {"host": "127.0.0.1", "port": port, "username": "a", "password": "b"},
        "command": "show version",
    }
    job = run(system, body)
    assert job["status"] == "failed"
    assert job["result"]["error"]["type"] == "connection"
    assert f"127.0.0.1:{port} refused" in job["result"]["error"]["message"]


def test_pyeapi_bad_encoding_is_422(system: httpx.Client, eapi: EapiServer) -> None:
    reply = system.post(
        "/device/exec",
        json=pyeapi_body(eapi, command="show version", driver_args={"encoding": "xml"}),
    )
    assert reply.status_code == 422, reply.text
    assert "encoding" in reply.text


# --- napalm ---------------------------------------------------------------------------------


def test_napalm_ios_get_facts_is_parsed(system: httpx.Client, napalm_ios: LabDevice) -> None:
    [item] = finished(run(system, napalm_body(napalm_ios_args(napalm_ios), command="get_facts")))
    facts = item["parsed"]
    assert facts["hostname"] == IOS_HOSTNAME
    assert facts["fqdn"] == f"{IOS_HOSTNAME}.lab.example"
    assert facts["vendor"] == "Cisco"
    assert facts["model"] == "CSR1000V"
    assert facts["serial_number"] == "9NPLAB00001"
    assert facts["os_version"].startswith("CSR1000V Software")
    assert facts["uptime"] == 2 * 86400 + 3 * 3600 + 4 * 60
    assert facts["interface_list"] == ["GigabitEthernet1", "GigabitEthernet2", "Loopback0"]
    assert f'"hostname": "{IOS_HOSTNAME}"' in item["stdout"]
    assert item["metadata"]["getter"] == "get_facts"


def test_napalm_ios_cli_and_unknown_getter(system: httpx.Client, napalm_ios: LabDevice) -> None:
    body = napalm_body(
        napalm_ios_args(napalm_ios), command=["show clock", "show bogus", "get_nothing"]
    )
    clock, bogus, getter = finished(run(system, body))
    assert clock["exit_status"] == 0 and clock["stdout"].strip()
    assert bogus["exit_status"] != 0 and "Invalid input" in bogus["stderr"]
    assert getter["exit_status"] != 0 and "no getter 'get_nothing'" in getter["stderr"]
    assert "get_facts" in getter["stderr"]  # lists the getters there are


def test_napalm_eos_get_facts_over_eapi(system: httpx.Client, eapi: EapiServer) -> None:
    [item] = finished(run(system, napalm_body(napalm_eos_args(eapi), command="get_facts")))
    assert item["parsed"]["hostname"] == "eos-lab"
    assert item["parsed"]["vendor"] == "Arista"
    assert item["parsed"]["interface_list"] == ["Ethernet1", "Ethernet2", "Management1"]


def test_napalm_dry_run_returns_diff_and_changes_nothing(
    system: httpx.Client, eapi: EapiServer
) -> None:
    before = {k: list(v) for k, v in eapi.state.running.items()}
    lines = ["interface Ethernet1", "description planned"]
    body = napalm_body(napalm_eos_args(eapi), config=lines, dry_run=True)
    [item] = finished(run(system, body))
    assert item["exit_status"] == 0
    assert "+   description planned" in item["stdout"]
    assert item["metadata"]["dry_run"] is True
    assert item["metadata"]["committed"] is False
    assert item["metadata"]["changed"] is True
    assert eapi.state.running == before
    assert eapi.state.sessions == {}  # the candidate was discarded
    assert not any(c.endswith(" commit") for c in eapi.commands_received())


def test_napalm_commit_applies_and_saves(system: httpx.Client, eapi: EapiServer) -> None:
    lines = ["interface Ethernet2", "description committed"]
    [item] = finished(run(system, napalm_body(napalm_eos_args(eapi), config=lines)))
    assert item["exit_status"] == 0
    assert "+   description committed" in item["stdout"]
    assert item["metadata"]["committed"] is True
    assert eapi.state.running["interface Ethernet2"] == ["description committed"]
    assert eapi.state.startup["interface Ethernet2"] == ["description committed"]
    assert eapi.state.sessions == {}


def test_napalm_rejected_config_is_discarded(system: httpx.Client, eapi: EapiServer) -> None:
    before = {k: list(v) for k, v in eapi.state.running.items()}
    lines = ["interface Ethernet1", "bogus setting"]
    [item] = finished(run(system, napalm_body(napalm_eos_args(eapi), config=lines)))
    assert item["exit_status"] != 0
    assert "refused the config" in item["stderr"] and "bogus setting" in item["stderr"]
    assert eapi.state.running == before
    assert eapi.state.sessions == {}


@pytest.mark.parametrize(
    "args, message",
    [
        ({"host": "127.0.0.1"}, "device_type is required"),
        ({"host": "127.0.0.1", "device_type": "nosuch"}, "napalm has no driver 'nosuch'"),
    ],
)
def test_napalm_bad_device_type_is_422(system: httpx.Client, args: dict, message: str) -> None:
    reply = system.post("/device/exec", json=napalm_body(args, command="get_facts"))
    assert reply.status_code == 422, reply.text
    assert message in reply.text


# --- POST /device/test ----------------------------------------------------------------------


def device_test(api: httpx.Client, driver: str, args: dict[str, Any]) -> dict[str, Any]:
    reply = api.post("/device/test", json={"driver": driver, "connection_args": args})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["latency"] > 0
    assert body["result"]["driver"] == driver
    return body


def test_device_test_pyeapi_reports_version(system: httpx.Client, eapi: EapiServer) -> None:
    body = device_test(system, "pyeapi", eapi.connection_args())
    assert body["success"] is True, body
    assert body["error"] is None
    assert body["result"]["version"] == "4.30.1F"
    assert body["result"]["model"] == "vEOS-lab"


def test_device_test_napalm_reports_facts(system: httpx.Client, napalm_ios: LabDevice) -> None:
    body = device_test(system, "napalm", napalm_ios_args(napalm_ios))
    assert body["success"] is True, body
    assert body["result"]["hostname"] == IOS_HOSTNAME
    assert body["result"]["os_version"].startswith("CSR1000V Software")


def test_device_test_napalm_eos_over_eapi(system: httpx.Client, eapi: EapiServer) -> None:
    body = device_test(system, "napalm", napalm_eos_args(eapi))
    assert body["success"] is True, body
    assert body["result"]["hostname"] == "eos-lab"


@pytest.mark.parametrize("driver", ["pyeapi", "napalm"])
def test_device_test_closed_port_says_refused(system: httpx.Client, driver: str) -> None:
    port = free_port()
    args = {"host": "127.0.0.1", "port": port, "username": "a", "password": "b"}
    if driver == "napalm":
        args["device_type"] = "ios"
    body = device_test(system, driver, args)
    assert body["success"] is False
    assert body["error_type"] == "connection"
    assert f"127.0.0.1:{port} refused the TCP connection" in body["error"]


def test_device_test_pyeapi_wrong_password(system: httpx.Client, eapi: EapiServer) -> None:
    body = device_test(system, "pyeapi", eapi.connection_args(password="wrong-pw"))
    assert body["success"] is False
    assert body["error_type"] == "authentication"
    assert "wrong-pw" not in str(body)


def test_device_test_napalm_wrong_password(system: httpx.Client, napalm_ios: LabDevice) -> None:
    body = device_test(system, "napalm", napalm_ios_args(napalm_ios, password="wrong-pw"))
    assert body["success"] is False
    assert body["error_type"] == "authentication"
    assert "wrong-pw" not in str(body)


def test_device_test_napalm_eos_wrong_password(system: httpx.Client, eapi: EapiServer) -> None:
    body = device_test(system, "napalm", napalm_eos_args(eapi, password="wrong-pw"))
    assert body["success"] is False
    assert body["error_type"] == "authentication"


def test_device_test_pyeapi_silent_endpoint_times_out(system: httpx.Client) -> None:
    with socket.socket() as silent:  # accepts TCP connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        args = {"host": "127.0.0.1", "port": port, "transport": "http", "timeout": 1}
        body = device_test(system, "pyeapi", {**args, "username": "a", "password": "b"})
    assert body["success"] is False
    assert body["error_type"] == "timeout"
    assert f"127.0.0.1:{port} did not answer within 1 s" in body["error"]


def test_device_test_pyeapi_untrusted_certificate(system: httpx.Client) -> None:
    with EapiServer(tls=True) as server:
        body = device_test(system, "pyeapi", server.connection_args(verify=True))
    assert body["success"] is False
    assert body["error_type"] == "connection"
    assert "TLS certificate is not trusted" in body["error"]


def test_napalm_commit_confirm_commits_with_a_timer_and_does_not_save(
    system: httpx.Client, eapi: EapiServer
) -> None:
    lines = ["interface Ethernet2", "description on trial"]
    body = napalm_body(napalm_eos_args(eapi), config=lines, driver_args={"revert_in": 300})
    [item] = finished(run(system, body))
    assert item["exit_status"] == 0, item
    assert item["metadata"]["revert_in"] == 300 and item["metadata"]["pending_confirm"] is True
    assert any(c.endswith(" commit timer 00:05:00") for c in eapi.commands_received())
    assert eapi.state.running["interface Ethernet2"] == ["description on trial"]
    assert eapi.state.startup["interface Ethernet2"] == []  # saved only once confirmed
    assert len(eapi.state.pending_commits) == 1


@pytest.mark.parametrize(
    ("device_type", "driver_args", "words"),
    [
        ("eos", {"message": "change 42"}, "napalm eos takes no commit message"),
        ("nxos_ssh", {"revert_in": 300}, "napalm nxos_ssh has no commit-confirm"),
        ("junos", {"revert_in": 90}, "whole minutes"),
    ],
)
def test_napalm_commit_options_the_platform_lacks_are_refused(
    api: httpx.Client, device_type: str, driver_args: dict[str, Any], words: str
) -> None:
    body = napalm_body(
        {"device_type": device_type, "host": "127.0.0.1", "username": "u", "password": "p"},
        config=["hostname x"],
        driver_args=driver_args,
    )
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422 and words in reply.text, reply.text


def test_napalm_commit_message_needs_a_config(api: httpx.Client) -> None:
    body = napalm_body(
        {"device_type": "junos", "host": "127.0.0.1", "username": "u", "password": "p"},
        command="get_facts",
        driver_args={"message": "why"},
    )
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422 and "apply to a config" in reply.text

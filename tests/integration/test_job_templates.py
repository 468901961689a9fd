"""`rendering` and `parsing` inside jobs, through the real controller, workers and devices."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.helpers import device, run, ssh_args

IFACES = r"""Value IFACE (\S+)
Value STATE (up|down)

Start
  ^${IFACE} ${STATE} -> Record
"""


def ssh(sshd: Any, command: Any, **extra: Any) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": command,
        **extra,
    }


def test_rendered_config_is_what_runs_and_what_results_show(system: httpx.Client, lab: dict):
    dev = device(lab, "arista_eos")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "config": {"vlans": [10, 20]},
        "rendering": {
            "name": "jinja2",
            "template": "{% for v in vlans %}vlan {{ v }}\n name users-{{ v }}\n{% endfor %}",
        },
        "enable_mode": True,
    }
    job = run(system, body)
    assert job["status"] == "finished", job
    assert job["command"] == ["vlan 10", " name users-10", "vlan 20", " name users-20"]
    assert [r["command"] for r in job["result"]["retval"]] == job["command"]


def test_undefined_variable_is_a_422_naming_it(api: httpx.Client, lab: dict) -> None:
    dev = device(lab, "arista_eos")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "config": "ntp server {{ ntp_server }}",
        "rendering": {"name": "jinja2", "context": {}},
    }
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422
    assert "ntp_server" in reply.json()["detail"]


def test_unknown_parser_is_a_422(api: httpx.Client, sshd: Any) -> None:
    reply = api.post("/device/exec", json=ssh(sshd, "true", parsing={"name": "regexp-magic"}))
    assert reply.status_code == 422 and "textfsm" in reply.text


def test_outputs_are_parsed_and_a_mismatch_keeps_the_raw_output(
    system: httpx.Client, sshd: Any
) -> None:
    commands = ["printf 'eth0 up\\neth1 down\\n'", "echo nothing to see"]
    job = run(system, ssh(sshd, commands, parsing={"name": "textfsm", "template": IFACES}))
    assert job["status"] == "finished", job
    parsed, unparsed = job["result"]["retval"]
    assert parsed["parsed"] == [
        {"IFACE": "eth0", "STATE": "up"},
        {"IFACE": "eth1", "STATE": "down"},
    ]
    assert unparsed["parsed"] is None
    assert unparsed["stdout"].strip() == "nothing to see"
    assert unparsed["metadata"]["parse_error"]


def test_ntc_template_lookup_by_platform_and_command(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "cisco_ios")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "command": "show version",
        "enable_mode": True,
        "parsing": {"name": "textfsm"},
    }
    job = run(system, body)
    [item] = job["result"]["retval"]
    assert item["exit_status"] == 0
    assert isinstance(item["parsed"], list) and item["parsed"], item
    assert "VERSION" in {k.upper() for k in item["parsed"][0]}

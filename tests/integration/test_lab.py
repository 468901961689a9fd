"""The test lab itself: simulated devices driven by netmiko, a private Redis, a real sshd.

Everything runs on 127.0.0.1. Fixtures are local to this module (module scope) so the
file can run on its own; the session-wide ones live in tests/conftest.py.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest
import redis
from netmiko import ConnectHandler
from netmiko.base_connection import BaseConnection

from netpulse.lab import INVALID_INPUT, LabDeviceSpec, LabFleet, default_specs
from netpulse.runtime.ports import listening_ports
from netpulse.runtime.redis_server import RedisServer
from tests.support.sshd import OpenSSHServer

pytestmark = pytest.mark.timeout(120)

RECORDED: list[str] = []


def _record(device: object, base_prompt: str, current_prompt: str, command: str) -> str:
    """A FakeNOS command output function: remember what the device received."""
    RECORDED.append(command)
    return f"recorded on {base_prompt}"


@pytest.fixture(scope="module")
def fleet() -> Iterator[LabFleet]:
    extra = LabDeviceSpec(
        "ios-rec",
        "cisco_ios",
        extra_commands={"show recorder": {"output": _record, "prompt": "{base_prompt}#"}},
    )
    with LabFleet([*default_specs(), extra]) as running:
        yield running


Connect = Callable[[str], BaseConnection]


@pytest.fixture
def connect(fleet: LabFleet) -> Iterator[Connect]:
    """Open netmiko sessions by device name; all are disconnected after the test."""
    sessions: list[BaseConnection] = []

    def _connect(name: str) -> BaseConnection:
        session = ConnectHandler(**fleet.device(name).connection_args())
        sessions.append(session)
        return session

    yield _connect
    for session in sessions:
        session.disconnect()


def test_fleet_starts_every_device_on_its_own_port(fleet: LabFleet) -> None:
    devices = fleet.devices
    assert [d.name for d in devices] == ["ios-1", "ios-2", "eos-1", "junos-1", "linux-1", "ios-rec"]
    ports = {d.port for d in devices}
    assert len(ports) == len(devices)
    assert ports <= listening_ports("127.0.0.1")
    assert all(d.host == "127.0.0.1" for d in devices)
    assert fleet.device("eos-1").connection_args() == {
        "device_type": "arista_eos",
        "host": "127.0.0.1",
        "port": fleet.device("eos-1").port,
        "username": "admin",
        "password": "admin",
        "secret": "admin",
    }


@pytest.mark.parametrize(
    ("name", "command", "expected"),
    [
        ("ios-1", "show version", "Cisco IOS"),
        ("eos-1", "show version", "Hardware MAC address"),
        ("junos-1", "show version", "JUNOS"),
        ("linux-1", "uname -a", "Linux linux-1"),
    ],
)
def test_netmiko_enable_and_show(connect: Connect, name: str, command: str, expected: str) -> None:
    session = connect(name)
    assert session.find_prompt().startswith(name)
    session.enable()
    if session.device_type != "juniper_junos":  # Junos has no enable mode
        assert session.check_enable_mode()
    assert expected in session.send_command(command)


def test_cisco_config_set_and_save(connect: Connect) -> None:
    session = connect("ios-2")
    session.enable()
    output = session.send_config_set(["interface Gi0/1", "description uplink"])
    assert "ios-2(config-if)#description uplink" in output
    assert "Invalid" not in output
    assert session.find_prompt() == "ios-2#"
    assert "[OK]" in session.save_config()


def test_bogus_config_line_is_rejected(connect: Connect) -> None:
    session = connect("ios-1")
    session.enable()
    output = session.send_config_set(["interface Gi0/2", "bogus command", "description ok"])
    assert INVALID_INPUT in output
    assert output.count("% Invalid input") == 1
    assert session.find_prompt() == "ios-1#"


def test_cisco_unknown_exec_command(connect: Connect) -> None:
    session = connect("ios-1")
    assert session.send_command("show nonsense") == INVALID_INPUT


def test_junos_config_commit(connect: Connect) -> None:
    session = connect("junos-1")
    output = session.send_config_set(
        ["set interfaces ge-0/0/0 description uplink"], exit_config_mode=False
    )
    assert "Invalid" not in output
    assert session.check_config_mode()
    assert "commit complete" in session.commit()
    session.exit_config_mode()
    assert session.find_prompt() == "junos-1>"


def test_extra_command_function_sees_the_command(connect: Connect) -> None:
    RECORDED.clear()
    session = connect("ios-rec")
    session.enable()
    assert session.send_command("show recorder") == "recorded on ios-rec"
    assert RECORDED == ["show recorder"]


def test_many_devices_start_fast_with_distinct_hostnames() -> None:
    many = LabFleet.many(platform="cisco_ios", count=20)
    started = time.monotonic()
    devices = many.start()
    try:
        assert time.monotonic() - started < 10
        assert len({d.port for d in devices}) == 20
        assert devices[0].name == "cisco-ios-01" and devices[-1].name == "cisco-ios-20"
        for device in (devices[0], devices[-1]):
            session = ConnectHandler(**device.connection_args())
            try:
                assert session.find_prompt() == f"{device.name}>"
            finally:
                session.disconnect()
    finally:
        stopping = time.monotonic()
        many.stop()
    assert time.monotonic() - stopping < 5
    assert not {d.port for d in devices} & listening_ports("127.0.0.1")


def test_lab_refuses_non_loopback_address() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        LabFleet(host="0.0.0.0")


def test_redis_appendonly_data_survives_restart(tmp_path: Path) -> None:
    server = RedisServer(data_dir=tmp_path, appendonly=True)
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        client.set("netpulse:durable", "yes")
        client.close()
        server.stop()
        assert server.start() == url
        client = redis.Redis.from_url(url)
        assert client.get("netpulse:durable") == b"yes"
        client.close()
    finally:
        server.stop()
    assert (tmp_path / "appendonlydir").is_dir()


def test_redis_server_not_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="redis-server not found on PATH"):
        RedisServer().start()


@pytest.fixture(scope="module")
def openssh() -> Iterator[OpenSSHServer]:
    with OpenSSHServer() as server:
        yield server


def test_openssh_exec_returns_output_and_exit_status(openssh: OpenSSHServer) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    key_type, key_b64 = openssh.host_public_key.split()[:2]
    client.get_host_keys().add(
        f"[{openssh.host}]:{openssh.port}",
        key_type,
        paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64)),
    )
    client.connect(**openssh.connect_kwargs(), timeout=10)
    try:
        _, stdout, _ = client.exec_command("echo hi; exit 3", timeout=10)
        assert stdout.read().decode().strip() == "hi"
        assert stdout.channel.recv_exit_status() == 3
    finally:
        client.close()

"""How the paramiko driver logs in to a real OpenSSH server: keys given as text (RSA,
Ed25519, ECDSA, with a passphrase), a jump host, keepalive, compression, the SSH agent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.integration.helpers import run, ssh_args
from tests.support.netns import PrivateNetwork
from tests.support.sshd import OpenSSHServer

PASSPHRASE = b"correct horse"


def key_pair(kind: str, fmt: serialization.PrivateFormat) -> tuple[str, str]:
    """(private key text encrypted with PASSPHRASE, OpenSSH public line)."""
    key: Any
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(PASSPHRASE)
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def with_key(server: Any, **options: Any) -> dict[str, Any]:
    args = {"host": server.host, "port": server.port, "username": server.username, **options}
    return {"driver": "paramiko", "connection_args": args, "command": "echo in"}


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        ("rsa", serialization.PrivateFormat.TraditionalOpenSSL),  # "BEGIN RSA PRIVATE KEY"
        ("ecdsa", serialization.PrivateFormat.PKCS8),
        ("ed25519", serialization.PrivateFormat.OpenSSH),
    ],
)
def test_a_key_given_as_text_logs_in(
    system: httpx.Client, sshd: OpenSSHServer, kind: str, fmt: serialization.PrivateFormat
) -> None:
    private, public = key_pair(kind, fmt)
    sshd.authorize(public)
    finished = run(system, with_key(sshd, pkey=private, passphrase=PASSPHRASE.decode()))
    assert finished["status"] == "finished", finished
    assert finished["result"]["retval"][0]["stdout"].strip() == "in"


def test_an_encrypted_key_without_its_passphrase_fails_with_a_reason(
    system: httpx.Client, sshd: OpenSSHServer
) -> None:
    private, public = key_pair("ed25519", serialization.PrivateFormat.OpenSSH)
    sshd.authorize(public)
    finished = run(system, with_key(sshd, pkey=private))
    assert finished["status"] == "failed"
    error = finished["result"]["error"]
    assert error["type"] == "authentication" and "no passphrase" in error["message"]
    wrong = run(system, with_key(sshd, pkey=private, passphrase="wrong"))
    assert wrong["status"] == "failed" and "pkey" in wrong["result"]["error"]["message"]
    assert "correct horse" not in str(wrong) and "BEGIN" not in str(wrong)


def test_compression_is_negotiated_when_asked(api: httpx.Client, sshd: OpenSSHServer) -> None:
    def compression(**options: Any) -> Any:
        body = with_key(sshd, key_filename=sshd.key_filename, **options)
        del body["command"]
        reply = api.post("/device/test", json=body)
        assert reply.status_code == 200 and reply.json()["success"], reply.text
        return reply.json()["result"]["compression"]

    assert compression(compress=True, keepalive=5) == "zlib@openssh.com"
    assert compression() == "none"


def test_the_ssh_agent_is_refused_unless_the_server_allows_it(api: httpx.Client) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "username": "u", "allow_agent": True},
        "command": "true",
    }
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422
    assert "allow_ssh_agent" in reply.text


@pytest.fixture(scope="module")
def behind_jump_host() -> Iterator[tuple[OpenSSHServer, OpenSSHServer]]:
    """(jump host, target): both in a namespace of the test's own; the jump host listens
    on the veth address (reachable from here), the target on the namespace's loopback
    (reachable only from inside, that is through the jump host)."""
    with PrivateNetwork() as net:
        jump = OpenSSHServer(host=net.inside_address, netns=net.name)
        target = OpenSSHServer(host="127.0.0.1", netns=net.name)
        with jump, target:
            yield jump, target


def through(jump: OpenSSHServer, target: OpenSSHServer, **proxy: Any) -> dict[str, Any]:
    body = {
        "driver": "paramiko",
        "connection_args": {
            **ssh_args(target),
            "proxy_host": jump.host,
            "proxy_port": jump.port,
            **proxy,
        },
        "command": ["hostname -I || true", "echo $SSH_CONNECTION"],
    }
    return body


def test_a_host_reachable_only_through_the_jump_host_is_reached(
    system: httpx.Client, behind_jump_host: tuple[OpenSSHServer, OpenSSHServer]
) -> None:
    jump, target = behind_jump_host
    direct = run(system, {**through(jump, target), "connection_args": ssh_args(target)})
    assert direct["status"] == "failed"  # 127.0.0.1 here is not the namespace's loopback

    finished = run(system, through(jump, target, proxy_key_filename=jump.key_filename))
    assert finished["status"] == "finished", finished
    addresses, connection = (r["stdout"].split() for r in finished["result"]["retval"])
    assert jump.host in addresses  # the commands ran inside the namespace
    assert connection[0] == "127.0.0.1"  # coming from its loopback: the jump host's channel


def test_the_jump_hosts_key_can_be_given_as_text(
    system: httpx.Client, behind_jump_host: tuple[OpenSSHServer, OpenSSHServer]
) -> None:
    jump, target = behind_jump_host
    private, public = key_pair("rsa", serialization.PrivateFormat.OpenSSH)
    jump.authorize(public)
    finished = run(
        system,
        through(jump, target, proxy_pkey=private, proxy_passphrase=PASSPHRASE.decode()),
    )
    assert finished["status"] == "finished", finished


def test_a_jump_host_that_refuses_the_login_is_named(
    system: httpx.Client, behind_jump_host: tuple[OpenSSHServer, OpenSSHServer]
) -> None:
    jump, target = behind_jump_host
    finished = run(system, through(jump, target, proxy_password="nope"))
    assert finished["status"] == "failed"
    error = finished["result"]["error"]
    assert error["type"] == "authentication"
    assert f"jump host {jump.host}:{jump.port}" in error["message"]


def test_proxy_options_without_a_proxy_host_are_refused(api: httpx.Client) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "username": "u", "proxy_port": 2222},
        "command": "true",
    }
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422 and "without proxy_host" in reply.text


def test_keepalive_sends_ssh_keepalives_on_an_idle_session(
    sshd: OpenSSHServer, netpulse_env: dict[str, str]
) -> None:
    """In process, against the real server: the idle session's transport sends paramiko's
    keepalive global requests at the interval asked (and none without the option)."""
    import threading

    from netpulse.models.request import ConnectionArgs
    from netpulse.plugins.drivers.paramiko.driver import ParamikoDriver

    def keepalives_within(seconds: float, **options: Any) -> int:
        args = ConnectionArgs.model_validate({**ssh_args(sshd), **options})
        driver = ParamikoDriver(args)
        driver.connect()
        try:
            assert driver.client is not None
            transport = driver.client.get_transport()
            assert transport is not None
            sent = threading.Event()
            count = 0
            original = transport.global_request

            def recording(kind: str, *rest: Any, **kw: Any) -> Any:
                nonlocal count
                if kind == "keepalive@lag.net":
                    count += 1
                    sent.set()
                return original(kind, *rest, **kw)

            transport.global_request = recording  # type: ignore[method-assign]
            sent.wait(seconds)
            return count
        finally:
            driver.disconnect()

    assert keepalives_within(5, keepalive=1) >= 1
    assert keepalives_within(2.5) == 0

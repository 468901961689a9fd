"""How the paramiko driver logs in: keys given as text, and the jump host.

A jump host is a first SSH session (to ``proxy_host``) whose ``direct-tcpip`` channel to
the target carries the second one, as ``ssh -J`` does: the target needs to be reachable
from the jump host only, and nothing runs on the jump host.
"""

from __future__ import annotations

import io
from typing import Any

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

#: The paramiko key class of each key type cryptography reads.
_KEY_CLASSES: tuple[tuple[type, type[paramiko.PKey]], ...] = (
    (rsa.RSAPrivateKey, paramiko.RSAKey),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
)


class UnusableKey(ValueError):
    """The key text is not a private key we can use (the sentence names the field)."""


def private_key(text: str, passphrase: str | None, field: str) -> paramiko.PKey:
    """The private key in ``text`` (PEM: PKCS#1, SEC1, PKCS#8, or OpenSSH format; RSA,
    ECDSA or Ed25519), decrypted with ``passphrase``.

    cryptography reads every format (paramiko alone misses encrypted PKCS#8); the key is
    handed to paramiko in OpenSSH format, in memory only.
    """
    data = text.strip().encode()
    password = passphrase.encode() if passphrase else None
    load = (
        serialization.load_ssh_private_key
        if b"OPENSSH PRIVATE KEY" in data
        else serialization.load_pem_private_key
    )
    try:
        try:
            key = load(data, password)
        except TypeError:  # a passphrase for a key that has none: read it without
            if password is None:
                raise
            key = load(data, None)
    except TypeError:
        raise UnusableKey(
            f"connection_args.{field} is encrypted and no passphrase was given"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise UnusableKey(
            f"connection_args.{field} is not an RSA, ECDSA or Ed25519 private key that the "
            "passphrase given opens (PEM or OpenSSH format)"
        ) from None
    for crypto_type, paramiko_type in _KEY_CLASSES:
        if isinstance(key, crypto_type):
            openssh = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            return paramiko_type.from_private_key(io.StringIO(openssh.decode()))
    raise UnusableKey(
        f"connection_args.{field} is a {type(key).__name__}: only RSA, ECDSA and Ed25519 keys"
    )


def host_key_policy(options: dict[str, Any]) -> paramiko.MissingHostKeyPolicy:
    if options.get("host_key_policy") == "reject":
        return paramiko.RejectPolicy()
    return paramiko.AutoAddPolicy()


def open_jump(
    options: dict[str, Any], target: tuple[str, int], username: str | None, timeout: float
) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    """Log in to the jump host and open a channel from it to ``target``.

    The jump host's login: ``proxy_username`` (default: the target's), ``proxy_password``,
    ``proxy_pkey`` or ``proxy_key_filename`` (with ``proxy_passphrase``). The caller owns
    the client returned and closes it after the target session.
    """
    jump = paramiko.SSHClient()
    jump.load_system_host_keys()
    jump.set_missing_host_key_policy(host_key_policy(options))
    pkey = None
    if options.get("proxy_pkey"):
        pkey = private_key(options["proxy_pkey"], options.get("proxy_passphrase"), "proxy_pkey")
    try:
        jump.connect(
            hostname=options["proxy_host"],
            port=int(options.get("proxy_port") or 22),
            username=options.get("proxy_username") or username,
            password=options.get("proxy_password"),
            pkey=pkey,
            key_filename=options.get("proxy_key_filename"),
            passphrase=options.get("proxy_passphrase"),
            timeout=timeout,
            auth_timeout=timeout,
            banner_timeout=timeout,
            look_for_keys=False,
            allow_agent=bool(options.get("allow_agent")),
            compress=bool(options.get("compress")),
        )
        transport = jump.get_transport()
        if transport is None:
            raise paramiko.SSHException("the jump host closed the session")
        channel = transport.open_channel("direct-tcpip", target, ("127.0.0.1", 0), timeout=timeout)
    except BaseException:
        jump.close()
        raise
    return jump, channel
